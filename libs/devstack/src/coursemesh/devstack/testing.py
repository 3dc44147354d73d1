"""Helpers for tests that start real processes: assert nothing is left behind."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

from coursemesh.devstack.process import pid_alive


def assert_pids_gone(pids: Iterable[int | None], timeout: float = 5.0) -> None:
    """Every PID has exited (zombies count as gone): no orphan is left behind."""
    deadline = time.monotonic() + timeout
    remaining = [p for p in pids if p is not None]
    while True:
        remaining = [p for p in remaining if pid_alive(p)]
        if not remaining or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    assert not remaining, f"processes still running: {remaining}"


def processes_with(marker: str) -> list[int]:
    """PIDs of live processes whose command line contains ``marker`` (Linux ``/proc``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline and pid_alive(int(entry.name)):
            found.append(int(entry.name))
    return found
