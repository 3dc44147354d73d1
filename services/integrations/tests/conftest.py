"""Fixtures of the integrations tests (in ``integrations_support``, importable under
``--import-mode=importlib``, which does not put this directory on ``sys.path``)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from integrations_support import (
    client,
    database_url,
    db,
    identity,
    idle_client,
    receiver,
    world,
)

__all__ = ["client", "database_url", "db", "identity", "idle_client", "receiver", "world"]
