"""``make up`` time to ready: cold (fresh data dir: initdb, migrations) and warm (same data dir,
second start). Uses the same ``Stack`` as ``coursemesh up``."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import record
from coursemesh.devstack.stack import Stack


def _start_stop(data_dir: Path, fresh: bool) -> float:
    started = time.perf_counter()
    stack = Stack(data_dir=data_dir, fresh=fresh, log_level="WARNING").start()
    ready = time.perf_counter() - started
    stack.stop()
    return round(ready, 2)


def main(argv: list[str] | None = None) -> int:
    del argv
    with tempfile.TemporaryDirectory(prefix="bench-up-") as tmp:
        data = Path(tmp) / "data"
        result: dict[str, Any] = {
            "cold_seconds": _start_stop(data, fresh=True),
            "warm_seconds": _start_stop(data, fresh=False),
        }
    record("makeup", result)
    return 0
