"""Each embedded server starts, answers, and stops leaving no process behind."""

from __future__ import annotations

import asyncio
import smtplib
import uuid
from email.message import EmailMessage
from pathlib import Path

import asyncpg
import nats
import pytest

from coursemesh.devstack.infra import EmbeddedNats, EmbeddedPostgres, EmbeddedS3, EmbeddedSmtp
from coursemesh.devstack.process import DevstackError
from coursemesh.devstack.testing import assert_pids_gone as assert_gone


async def _select_one(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SELECT 1"))
    finally:
        await conn.close()


def test_postgres_answers_keeps_data_and_stops(tmp_path: Path) -> None:
    data = tmp_path / "pg"
    with EmbeddedPostgres(data) as pg:
        pid = pg.pid
        assert pg.sqlalchemy_url.startswith("postgresql+asyncpg://postgres@127.0.0.1:")
        assert pg.port not in (5432,)
        assert asyncio.run(_select_one(pg.url)) == 1
        url = pg.create_database("kept")
        assert url.endswith("/kept")
    assert_gone([pid])
    # warm restart on the same data dir: the database is still there
    with EmbeddedPostgres(data) as pg:
        assert asyncio.run(_select_one(pg.url.rsplit("/", 1)[0] + "/kept")) == 1
        second = pg.pid
    assert_gone([second])


async def _jetstream_roundtrip(url: str) -> tuple[int, bool | None]:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        await js.add_stream(name="DEVSTACK", subjects=["devstack.>"])
        msg_id = uuid.uuid4().hex
        first = await js.publish("devstack.hello", b"hi", headers={"Nats-Msg-Id": msg_id})
        again = await js.publish("devstack.hello", b"hi", headers={"Nats-Msg-Id": msg_id})
        assert again.seq == first.seq
        return first.seq, again.duplicate
    finally:
        await nc.close()


def test_nats_jetstream_publish_and_stop(tmp_path: Path) -> None:
    with EmbeddedNats(tmp_path / "nats") as server:
        pid = server.pid
        seq, duplicate = asyncio.run(_jetstream_roundtrip(server.url))
        assert seq == 1
        assert duplicate is True
    assert_gone([pid])


def test_s3_put_get_and_stop(tmp_path: Path) -> None:
    with EmbeddedS3(tmp_path / "s3") as server:
        pid = server.pid
        config = server.config
        assert config.region == "us-east-1"
        config.ensure_bucket("coursemesh-test")
        config.ensure_bucket("coursemesh-test")  # idempotent
        client = config.client()
        client.put_object(Bucket="coursemesh-test", Key="a/b.txt", Body=b"hello")
        body = client.get_object(Bucket="coursemesh-test", Key="a/b.txt")["Body"].read()
        assert body == b"hello"
    assert_gone([pid])


def test_smtp_writes_eml_files(tmp_path: Path) -> None:
    with EmbeddedSmtp(tmp_path / "mail") as server:
        pid = server.pid
        message = EmailMessage()
        message["From"] = "shop@example.com"
        message["To"] = "buyer@example.com"
        message["Subject"] = "Your receipt"
        message.set_content("Thanks for buying — €10")
        with smtplib.SMTP(server.host, server.port) as client:
            client.send_message(message, to_addrs=["buyer@example.com", "audit@example.com"])
        received = server.mailbox.wait_for(lambda m: m["Subject"] == "Your receipt", timeout=5)
        assert received["To"] == "buyer@example.com"
        assert "audit@example.com" in received["X-Envelope-To"]
        assert "€10" in received.get_content()
        assert len(list((tmp_path / "mail").glob("*.eml"))) == 1
        with pytest.raises(TimeoutError):
            server.mailbox.wait_for(lambda m: m["Subject"] == "other", timeout=0.2)
    assert_gone([pid])


def test_a_server_that_cannot_start_reports_its_log(tmp_path: Path) -> None:
    first = EmbeddedNats(tmp_path / "a").start()
    try:
        clash = EmbeddedNats(tmp_path / "b", port=first.port)
        with pytest.raises(DevstackError, match="exited with code"):
            clash.start(timeout=10)
        assert_gone([clash.pid])
    finally:
        first.stop()
