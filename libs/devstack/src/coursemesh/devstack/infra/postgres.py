"""PostgreSQL from the ``pgserver`` wheel, listening on 127.0.0.1:PORT, run as our own child."""

from __future__ import annotations

import asyncio
import atexit
import hashlib
import importlib.util
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import warnings
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from coursemesh.devstack.infra.base import Launcher
from coursemesh.devstack.process import DevstackError, ManagedProcess, pid_alive

T = TypeVar("T")
_SYSTEM_USER = "pgserver"
_binaries_opened = threading.Event()


def pg_bin_dir() -> Path:
    """``pginstall/bin`` of the ``pgserver`` wheel (found without importing pgserver)."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise DevstackError("the pgserver wheel is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _demotion(data_dir: Path) -> tuple[int, int] | None:
    """As root, PostgreSQL refuses to run: use pgserver's system user and give it the data dir."""
    if os.geteuid() != 0:
        return None
    with warnings.catch_warnings():  # importing pgserver warns about XDG_RUNTIME_DIR
        warnings.simplefilter("ignore")
        from pgserver.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

    entry = ensure_user_exists(_SYSTEM_USER)
    if entry is None:
        raise DevstackError(f"cannot create system user {_SYSTEM_USER!r}")
    bin_dir = pg_bin_dir()
    ensure_prefix_permissions(data_dir)
    if not _binaries_opened.is_set():
        readable = stat.S_IRGRP | stat.S_IROTH
        ensure_prefix_permissions(bin_dir)
        ensure_folder_permissions(bin_dir, readable | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(bin_dir.parent / "lib", readable)
        _binaries_opened.set()
    for path in [data_dir, *data_dir.rglob("*")]:
        os.chown(path, entry.pw_uid, entry.pw_gid, follow_symlinks=False)
    return entry.pw_uid, entry.pw_gid


_relocated: list[Path] = []


def _cluster_dir(data_dir: Path) -> Path:
    """Where the cluster really lives.

    As root, PostgreSQL runs as the ``pgserver`` user, which must traverse every parent of
    the data dir. pytest resets ``/tmp/pytest-of-<user>`` to mode 0700 whenever any session
    starts, which would lock that user out mid-run; so a cluster requested under it lives in
    ``$TMPDIR/coursemesh-pg/<hash>`` instead (a symlink at ``data_dir`` points there) and is
    deleted when this process exits.
    """
    under_pytest = any(p.name.startswith("pytest-of-") for p in data_dir.parents)
    if os.geteuid() != 0 or not under_pytest or (data_dir.is_dir() and not data_dir.is_symlink()):
        return data_dir.resolve()
    digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:16]
    real = Path(tempfile.gettempdir()) / "coursemesh-pg" / digest
    real.mkdir(parents=True, exist_ok=True)
    if not data_dir.is_symlink():
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        data_dir.symlink_to(real, target_is_directory=True)
    if not _relocated:
        atexit.register(_remove_relocated)
    _relocated.append(real)
    return real


def _remove_relocated() -> None:
    for path in _relocated:
        shutil.rmtree(path, ignore_errors=True)


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on a fresh loop in a helper thread (safe inside a running
    loop, e.g. from a sync fixture used by async tests)."""
    result: list[T] = []
    error: list[BaseException] = []

    def _target() -> None:
        try:
            result.append(asyncio.run(coro))
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=_target, name="devstack-sync")
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


def _asyncpg_dsn(sqlalchemy_url: str) -> str:
    from sqlalchemy.engine import make_url

    url = make_url(sqlalchemy_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def with_database(sqlalchemy_url: str, name: str) -> str:
    """``sqlalchemy_url`` pointing at database ``name`` instead."""
    from sqlalchemy.engine import make_url

    return make_url(sqlalchemy_url).set(database=name).render_as_string(hide_password=False)


def create_database(sqlalchemy_url: str, name: str, *, exist_ok: bool = True) -> str:
    """Create database ``name`` on the server of ``sqlalchemy_url``; return its URL."""
    import asyncpg

    if not name.replace("_", "").isalnum():
        raise ValueError(f"unsafe database name {name!r}")

    async def _create() -> None:
        conn = await asyncpg.connect(_asyncpg_dsn(sqlalchemy_url))
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
            if exists and not exist_ok:
                raise DevstackError(f"database {name!r} already exists")
            if not exists:
                await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    run_sync(_create())
    return with_database(sqlalchemy_url, name)


def drop_database(sqlalchemy_url: str, name: str) -> None:
    """Drop database ``name`` (closing other sessions on it)."""
    import asyncpg

    if not name.replace("_", "").isalnum():
        raise ValueError(f"unsafe database name {name!r}")

    async def _drop() -> None:
        conn = await asyncpg.connect(_asyncpg_dsn(sqlalchemy_url))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    run_sync(_drop())


class EmbeddedPostgres(Launcher):
    """``initdb`` once into ``data_dir``, then run ``postgres`` on ``127.0.0.1:port``.

    Data survives restarts. Stop = SIGINT (fast shutdown) to the postmaster's PID.

    ``durable=True`` (every stack: ``make up``, the e2e suite, the chaos drill) keeps
    PostgreSQL's defaults, ``fsync`` and ``synchronous_commit`` on: a commit that answered
    survives a ``kill -9`` of the server (group commit shares one WAL flush among the commits
    waiting for it). ``durable=False`` (the throwaway server of the services' tests) turns both
    off, which makes the many ``CREATE DATABASE`` of a test run cheap.
    """

    name = "postgres"

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        log_path: Path | None = None,
        durable: bool = False,
    ) -> None:
        super().__init__(log_path or data_dir.parent / "postgres.log")
        self.durable = durable
        self.requested_dir = data_dir.absolute()
        self.data_dir = _cluster_dir(self.requested_dir)
        self.port = self._take_port(port)

    @property
    def url(self) -> str:
        """libpq-style URL (``postgresql://``)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def sqlalchemy_url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def create_database(self, name: str, *, exist_ok: bool = True) -> str:
        """Create database ``name``; return its SQLAlchemy URL."""
        return create_database(self.sqlalchemy_url, name, exist_ok=exist_ok)

    def _build(self) -> ManagedProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        ids = _demotion(self.data_dir)
        user, group = ids if ids else (None, None)
        bin_dir = pg_bin_dir()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb(bin_dir, user, group)
        self._check_not_running()
        argv = [
            str(bin_dir / "postgres"),
            "-D", str(self.data_dir),
            "-h", "127.0.0.1",
            "-p", str(self.port),
            "-c", "unix_socket_directories=",  # TCP only: no socket-path length limit
            "-c", f"synchronous_commit={'on' if self.durable else 'off'}",
            "-c", f"fsync={'on' if self.durable else 'off'}",
            "-c", "max_connections=200",
        ]  # fmt: skip
        return ManagedProcess(
            self.name,
            argv,
            log_path=self.log_path,
            env=_pg_env(),
            stop_signal=signal.SIGINT,
            stop_timeout=15.0,
            user=user,
            group=group,
        )

    def _initdb(self, bin_dir: Path, user: int | None, group: int | None) -> None:
        argv = [
            str(bin_dir / "initdb"),
            "-D", str(self.data_dir),
            "--auth=trust", "-U", "postgres", "-E", "utf8", "--no-sync",
        ]  # fmt: skip
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            env=_pg_env(),
            user=user,
            group=group,
            extra_groups=[] if user is not None else None,
            check=False,
        )
        if done.returncode != 0:
            raise DevstackError(f"initdb failed ({done.returncode}):\n{done.stdout}{done.stderr}")

    def _check_not_running(self) -> None:
        pid_file = self.data_dir / "postmaster.pid"
        if not pid_file.exists():
            return
        first = pid_file.read_text().splitlines()[:1]
        pid = int(first[0]) if first and first[0].strip().isdigit() else 0
        if pid and pid_alive(pid) and "postgres" in _comm(pid):
            raise DevstackError(
                f"another PostgreSQL (PID {pid}) already runs on {self.data_dir}; "
                f"stop it (kill -INT {pid}) or use another data dir"
            )

    def _answers(self) -> bool:
        # The pid file of *this* postmaster (a killed one leaves its own behind, saying "ready").
        lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        return len(lines) >= 8 and lines[0].strip() == str(self.pid) and lines[7].strip() == "ready"

    def listen_ports(self) -> list[int]:
        return [self.port]

    def describe(self) -> str:
        return f"PostgreSQL on port {self.port}"

    def info(self) -> dict[str, Any]:
        return {
            "url": self.sqlalchemy_url,
            "port": self.port,
            "data_dir": str(self.requested_dir),
            "pid": self.pid,
        }


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _pg_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    return env
