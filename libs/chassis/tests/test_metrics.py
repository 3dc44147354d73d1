"""Metrics on a real service app and a real database and bus: ``GET /metrics`` in Prometheus'
format, RED by route template, and the outbox, consumer and pool figures an operator watches."""

from __future__ import annotations

from pathlib import Path

from litestar import get, post
from litestar.params import FromPath
from litestar.testing import AsyncTestClient
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from coursemesh.chassis.app import create_service_app
from coursemesh.chassis.bus import Bus
from coursemesh.chassis.consumer import ConsumerRunner
from coursemesh.chassis.db import Database
from coursemesh.chassis.demo.service import PRODUCER, projector_subscriptions, set_counter
from coursemesh.chassis.errors import NotFound
from coursemesh.chassis.metrics import (
    UNMATCHED_ROUTE,
    ServiceState,
    metrics_endpoint,
    register,
    sample,
)
from coursemesh.chassis.settings import ServiceSettings
from coursemesh.chassis.testing import TestIdentity

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@get("/metered/{thing_id:int}")
async def thing(thing_id: FromPath[int]) -> dict[str, int]:
    if thing_id == 0:
        raise NotFound("No such thing", code="THING_NOT_FOUND")
    return {"id": thing_id}


@post("/metered")
async def make_thing() -> dict[str, str]:
    return {"status": "made"}


def parse(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    found = [v for (n, ls), v in samples.items() if n == name and wanted <= ls]
    assert len(found) == 1, f"{name} {labels}: {len(found)} samples"
    return found[0]


async def test_red_metrics_by_route_template_on_get_metrics(
    spine_db_url: str, nats_url: str, tmp_path: Path
) -> None:
    identity = TestIdentity(tmp_path / "keys")
    settings = ServiceSettings(
        database_url=spine_db_url,
        nats_url=nats_url,
        jwt_public_key_file=str(identity.public_key_file),
        db_pool_size=7,
    )
    app = create_service_app(PRODUCER, route_handlers=[thing, make_thing], settings=settings)
    async with AsyncTestClient(app) as client:
        before = parse((await client.get("/metrics")).text)
        for thing_id in (17, 23, 0):
            await client.get(f"/metered/{thing_id}")
        await client.post("/metered")
        await client.get("/no/such/route")
        scrape = await client.get("/metrics")
        assert scrape.status_code == 200
        assert scrape.headers["content-type"].startswith("text/plain; version=0.0.4")
        after = parse(scrape.text)
        openapi = (await client.get("/openapi.json")).json()

    def count(**labels: str) -> float:
        """Requests of this test only: the process may have served other apps before."""
        name = "http_server_request_duration_seconds_count"
        wanted = set(labels.items())
        earlier = sum(v for (n, ls), v in before.items() if n == name and wanted <= ls)
        return value(after, name, **labels) - earlier

    route = "/metered/{thing_id}"
    assert count(http_route=route, http_response_status_code="200") == 2  # ids 17 and 23
    assert count(http_route=route, http_response_status_code="404") == 1
    assert (
        count(http_route="/metered", http_request_method="POST", http_response_status_code="201")
        == 1
    )
    assert (
        count(
            http_route=UNMATCHED_ROUTE, http_request_method="GET", http_response_status_code="404"
        )
        == 1
    )
    assert not any("17" in dict(labels).get("http_route", "") for _, labels in after)
    assert not any(name.startswith("http_server_duration_milliseconds") for name, _ in after)
    # The histogram's buckets are in seconds, from a millisecond up.
    buckets = {
        dict(labels)["le"]
        for name, labels in after
        if name == "http_server_request_duration_seconds_bucket"
    }
    assert {"0.001", "0.1", "5.0", "+Inf"} <= buckets
    assert value(after, "db_client_connection_max") == 7
    used_and_idle = {
        dict(labels)["db_client_connection_state"]
        for name, labels in after
        if name == "db_client_connection_count"
    }
    assert used_and_idle == {"used", "idle"}
    assert "/metrics" not in openapi["paths"]  # an operator's endpoint, not the API's


async def test_outbox_and_consumer_figures_come_from_the_database_and_jetstream(
    producer_db: Database, projector_db: Database, bus: Bus
) -> None:
    (sub,) = projector_subscriptions()
    runner = ConsumerRunner(consumer="demometrics", db=projector_db, js=bus.js, subscription=sub)
    await runner.provision()
    # No publisher and no relay: the rows wait in the outbox, the consumer has not run.
    await set_counter(producer_db, "a", 1)
    await set_counter(producer_db, "b", 2)
    async with producer_db.reading() as conn:
        await conn.execute(
            f"UPDATE \"{producer_db.schema}\".outbox SET created_at = now() - interval '90 seconds'"
            " WHERE aggregate_id = 'a'"
        )
    await bus.js.publish("demo.counter.set.v1", b"not an event")
    state = ServiceState(producer_db, consumers=[runner])
    unregister = register(state)
    try:
        await sample(state, bus.js)
        runner.redelivered_total, runner.dead_lettered_total = 3, 1
        figures = parse(generate_latest(REGISTRY).decode())
    finally:
        unregister()
    assert value(figures, "coursemesh_outbox_unpublished") == 2
    assert 90 <= value(figures, "coursemesh_outbox_lag_seconds") < 600
    labels = {"stream": "DEMO", "consumer": "demometrics"}
    assert value(figures, "coursemesh_consumer_pending", **labels) == 1
    assert value(figures, "coursemesh_consumer_ack_pending", **labels) == 0
    assert value(figures, "coursemesh_consumer_redelivered_total", **labels) == 3
    assert value(figures, "coursemesh_consumer_dead_lettered_total", **labels) == 1
    after = parse(generate_latest(REGISTRY).decode())
    assert not any(name == "coursemesh_consumer_pending" for name, _ in after)  # unregistered


def test_the_metrics_endpoint_sits_next_to_the_traces_endpoint() -> None:
    assert (
        metrics_endpoint("http://otel-collector:4318/v1/traces")
        == "http://otel-collector:4318/v1/metrics"
    )
    assert metrics_endpoint("http://collector:4318/custom") is None
    assert metrics_endpoint(None) is None
