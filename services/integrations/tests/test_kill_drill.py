"""The sender SIGKILLed while a receiver holds one of its requests: after a restart every
delivery arrives, each with its one webhook id (at least once: the one in flight may come
twice), and the log shows every delivery delivered. The service runs as a real process
(uvicorn), as in production; events are applied through the real inbox and handlers."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import uuid
from pathlib import Path

import httpx
from integrations_support import ORG, OWNER, Receiver, World, entitlement

from coursemesh.chassis.db import Database
from coursemesh.chassis.testing import TestIdentity, wait_for
from coursemesh.devstack.ports import free_port
from coursemesh.devstack.process import ManagedProcess, wait_until

EVENTS = 12


def service(
    tmp_path: Path, n: int, database_url: str, nats_url: str, identity: TestIdentity, port: int
) -> ManagedProcess:
    env = {
        "INTEGRATIONS_DATABASE_URL": database_url,
        "INTEGRATIONS_NATS_URL": nats_url,
        "INTEGRATIONS_JWT_PUBLIC_KEY_FILE": str(identity.public_key_file),
        "INTEGRATIONS_JWT_ISSUER": identity.issuer,
        "INTEGRATIONS_CATCH_UP": "false",
        "INTEGRATIONS_ALLOW_LOOPBACK_ENDPOINTS": "true",
        "INTEGRATIONS_RETRY_SCALE": "0.001",
        # A killed sender's claims come back this soon.
        "INTEGRATIONS_LEASE_SECONDS": "2",
        "INTEGRATIONS_POLL_INTERVAL_SECONDS": "0.2",
        "INTEGRATIONS_LOG_FORMAT": "text",
    }
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "coursemesh.integrations.main:create_app",
        "--port",
        str(port),
        "--no-access-log",
    ]
    return ManagedProcess(
        f"integrations-{n}",
        argv,
        log_path=tmp_path / f"integrations-{n}.log",
        env={**os.environ, **env},
        stop_signal=signal.SIGKILL,
    )


async def test_a_sender_killed_mid_delivery_loses_nothing(
    tmp_path: Path,
    database_url: str,
    nats_url: str,
    identity: TestIdentity,
    db: Database,
    world: World,
    receiver: Receiver,
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}/organizations/{ORG}/webhook-endpoints"
    first = service(tmp_path, 1, database_url, nats_url, identity, port).start()
    try:
        wait_until(lambda: _live(port), timeout=60, what="integrations", process=first)
        async with httpx.AsyncClient(timeout=30) as http:
            created = await http.post(
                base,
                json={"url": receiver.url, "eventTypes": ["enrollment.activated"]},
                headers=identity.headers(OWNER),
            )
            assert created.status_code == 201, created.text
            endpoint = created.json()
        receiver.secrets.append(endpoint["secret"])
        receiver.hold = threading.Event()
        for _ in range(EVENTS):
            await world.event(entitlement(), uuid.uuid4())
        # the first request is in the receiver's hands: kill the sender now
        await asyncio.to_thread(receiver.holding.wait, 30)
        assert receiver.holding.is_set()
        first.stop()  # SIGKILL
    finally:
        first.stop()
    receiver.hold.set()
    second = service(tmp_path, 2, database_url, nats_url, identity, port).start()
    try:
        wait_until(lambda: _live(port), timeout=60, what="integrations", process=second)

        async def all_delivered() -> bool:
            async with httpx.AsyncClient(timeout=30) as http:
                page = await http.get(
                    f"{base}/{endpoint['id']}/deliveries",
                    params={"status": "delivered", "limit": 100},
                    headers=identity.headers(OWNER),
                )
            return bool(page.json()["total"] == EVENTS)

        await wait_for(all_delivered, timeout=60, interval=0.2, message="every delivery")
    finally:
        second.stop()
    ids = receiver.ids()
    assert len(set(ids)) == EVENTS  # every delivery arrived
    assert all(r.verified is not None for r in receiver.received)
    # at least once: only what was in flight at the kill may have come twice
    assert len(ids) - len(set(ids)) <= 1


def _live(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
