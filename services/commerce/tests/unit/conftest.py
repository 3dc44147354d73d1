"""Unit tests: the domain and the use cases against in-memory fakes of their ports (no
database, no bus, no network). ``commerce_fakes`` is importable from here (pytest runs with
``--import-mode=importlib``, which does not put this directory on ``sys.path``)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
