"""Chromium installed once when test jobs side by side all find it missing."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from coursemesh.devstack import browser

# Stands in for apt-get: logs each run, takes a while (so the jobs overlap), then leaves a
# `chromium` next to itself, as the real package puts one on PATH.
_FAKE_APT = """#!/bin/sh
echo "$@" >> "{log}"
/bin/sleep 0.3
printf '#!/bin/sh\\n' > "{bin}/chromium"
/bin/chmod +x "{bin}/chromium"
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="the install path runs as root only")
def test_jobs_finding_chromium_missing_install_it_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "apt.log"
    apt = bin_dir / "apt-get"
    apt.write_text(_FAKE_APT.format(log=log, bin=bin_dir))
    apt.chmod(apt.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.delenv("COURSEMESH_CHROMIUM", raising=False)
    monkeypatch.setattr(browser, "_LOCK_FILE", tmp_path / "install.lock")
    found: list[Path] = []
    failed: list[BaseException] = []

    def job() -> None:
        try:
            found.append(browser.chromium_path())
        except BaseException as exc:
            failed.append(exc)

    jobs = [threading.Thread(target=job) for _ in range(3)]
    for j in jobs:
        j.start()
    for j in jobs:
        j.join(timeout=30)

    assert failed == []
    assert found == [bin_dir / "chromium"] * 3
    runs = log.read_text().splitlines()
    assert len(runs) == 1
    assert runs[0].startswith("-o DPkg::Lock::Timeout=")  # apt itself waits for other dpkg users
