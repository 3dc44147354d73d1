"""Debian's Chromium for the tests of pages a person sees (the hosted payment page, say).

Browser test tools download a browser of their own, which this project's machines cannot
reach; Debian's ``chromium`` package can be installed from the distribution's mirror. The
tests find it (``COURSEMESH_CHROMIUM``, then ``chromium`` on ``PATH``) or install it with
``apt-get`` when they run as root, and drive it headless with Playwright.
"""

from __future__ import annotations

import os
import shutil
import subprocess
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
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = [apt, "install", "-y", "-q", "--no-install-recommends", _PACKAGE]
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    if done.returncode != 0:  # the package lists may be missing on a fresh machine
        subprocess.run(
            [apt, "update", "-q"], env=env, capture_output=True, timeout=900, check=False
        )
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=900, check=False
        )
    found = shutil.which("chromium")
    if done.returncode != 0 or not found:
        raise DevstackError(f"installing Debian's chromium failed:\n{done.stdout}\n{done.stderr}")
    return Path(found)
