"""Debian's Chromium for the tests of pages a person sees (the hosted payment page, say).

Browser test tools download a browser of their own, which this project's machines cannot
reach; Debian's ``chromium`` package can be installed from the distribution's mirror. The
tests find it (``COURSEMESH_CHROMIUM``, then ``chromium`` on ``PATH``) or install it with
``apt-get`` when they run as root, and drive it headless with Playwright.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from coursemesh.devstack.process import DevstackError

#: Headless, and nothing that phones home: on a machine without internet access Chromium's
#: background connections would only fail, many at a time, at every start.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",  # the tests may run as root, where Chromium refuses its sandbox
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

_PACKAGE = "chromium"
_LOCK_FILE = Path(tempfile.gettempdir()) / "coursemesh-chromium-install.lock"
#: apt's own wait for the dpkg lock held by another package manager run.
_APT_LOCK_WAIT = ["-o", "DPkg::Lock::Timeout=600"]


@contextlib.contextmanager
def _install_lock() -> Iterator[None]:
    with _LOCK_FILE.open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(held, fcntl.LOCK_UN)


def _apt_install(apt: str) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = [apt, *_APT_LOCK_WAIT, "install", "-y", "-q", "--no-install-recommends", _PACKAGE]
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    if done.returncode != 0:  # the package lists may be missing on a fresh machine
        subprocess.run(
            [apt, *_APT_LOCK_WAIT, "update", "-q"],
            env=env,
            capture_output=True,
            timeout=900,
            check=False,
        )
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=900, check=False
        )
    if done.returncode != 0:
        raise DevstackError(f"installing Debian's chromium failed:\n{done.stdout}\n{done.stderr}")


def chromium_path(*, install: bool = True) -> Path:
    """The Chromium binary to drive; installed from the distribution's packages if missing
    (as root, with ``apt-get``). Raises :class:`DevstackError` saying how to get one."""
    configured = os.environ.get("COURSEMESH_CHROMIUM")
    if configured:
        path = Path(configured)
        if not path.is_file():
            raise DevstackError(f"COURSEMESH_CHROMIUM={configured} is not a file")
        return path
    found = shutil.which("chromium")
    if found:
        return Path(found)
    apt = shutil.which("apt-get")
    if not install or apt is None or os.geteuid() != 0:
        raise DevstackError(
            "Chromium is needed for the browser tests: install Debian's `chromium` package"
            " (apt-get install chromium) or set COURSEMESH_CHROMIUM to a Chromium binary"
        )
    # Test jobs run side by side, and each may find Chromium missing on a fresh machine: one
    # installs while the others wait for it (and apt waits for any other dpkg user).
    with _install_lock():
        if shutil.which("chromium") is None:
            _apt_install(apt)
    found = shutil.which("chromium")
    if not found:
        raise DevstackError("installing Debian's chromium did not put `chromium` on PATH")
    return Path(found)
