"""Fixtures live in ``commerce_support`` (importable by the tests too: pytest runs with
``--import-mode=importlib``, which does not put this directory on ``sys.path``)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from commerce_support import database_url, harness, identity, live, make_settings

__all__ = ["database_url", "harness", "identity", "live", "make_settings"]
