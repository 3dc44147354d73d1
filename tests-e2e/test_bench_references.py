"""The benchmark's reference apps (``bench/reference.py``) do the work they stand for, under
every ASGI server the benchmark can run them with (``bench/servers.py``): a hot path's share of
a reference that failed, or did less than its kind of work, would mean nothing.

Each starts as the benchmark starts it (``bench.common.serve_app``) on a fresh database of the
session's PostgreSQL; the consumer runs as its own process, as in ``python -m bench http``.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # bench/ is a package at the repository root
    sys.path.insert(0, str(ROOT))

from bench.common import References, serve_app  # noqa: E402
from bench.reference import DSN_VARIABLE, count_projected, prepare  # noqa: E402
from bench.servers import SERVERS  # noqa: E402

DOCUMENT = b'{"days":[{"day":1,"items":["a","b"]}],"title":"[not a bracket]"}'


@pytest.mark.parametrize("server", SERVERS)
def test_reference_apps_do_their_work(server: str, fresh_database_url: str, tmp_path: Path) -> None:
    document_id = asyncio.run(prepare(fresh_database_url, DOCUMENT))
    with (
        serve_app(
            "bench.reference:create_app",
            server=server,
            env={DSN_VARIABLE: fresh_database_url},
            factory=True,
            log=tmp_path / "reference.log",
            ready_path="/health/live",
        ) as app,
        httpx.Client(base_url=app.url, timeout=10) as http,
    ):
        assert http.get("/public/ref/hello").json() == {"hello": "world"}

        stored = http.get(f"/public/ref/documents/{document_id}")
        assert stored.status_code == 200
        assert stored.headers["content-type"] == "application/json"
        assert stored.content == DOCUMENT  # the stored body, byte for byte
        assert http.get(f"/public/ref/documents/{uuid.uuid4()}").status_code == 404

        for _ in range(3):
            assert http.post("/public/ref/orders", json={}).status_code == 201
        # Written with their outbox rows; nothing projects them while no consumer runs.
        assert asyncio.run(count_projected(fresh_database_url)) == (3, 0)

        references = References(
            gateway_url=app.url,
            document_id=document_id,
            database_url=fresh_database_url,
            processes={},
            log_dir=tmp_path,
        )
        with references.consumer():
            # The consumer has caught up with the earlier orders before the load starts.
            assert asyncio.run(count_projected(fresh_database_url)) == (3, 3)
            assert "reference-consumer" in references.processes
            for _ in range(2):
                assert http.post("/public/ref/orders", json={}).status_code == 201
        # It stops only once every order is projected: the load's work is all in its figures.
        assert asyncio.run(count_projected(fresh_database_url)) == (5, 5)
        assert "reference-consumer" not in references.processes
