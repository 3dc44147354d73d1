"""Fixtures live in ``commerce_support`` (importable by the tests too: pytest runs with
``--import-mode=importlib``, which does not put this directory on ``sys.path``)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from commerce_support import database_url, harness, identity, live, make_settings
from stripe_support import fake_stripe_api, stripe_harness

__all__ = [
    "database_url",
    "fake_stripe_api",
    "harness",
    "identity",
    "live",
    "make_settings",
    "stripe_harness",
]
