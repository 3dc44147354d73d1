"""Metrics on the running suite: every replica of every service serves ``GET /metrics``, the
Grafana dashboard in deploy/grafana only queries metrics the services really export, and the
gateway does not publish them."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from suite import Suite, problem

pytestmark = pytest.mark.e2e

DASHBOARD = Path(__file__).resolve().parents[1] / "deploy" / "grafana" / "coursemesh.json"
#: Every metric coursemesh defines starts with one of these (the rest are PromQL and labels).
PREFIXES = ("http_server_", "coursemesh_", "db_client_", "commerce_")


def queried_metrics(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: label matchers and grouping labels
    removed first, so a label such as ``db_client_connection_state`` is not taken for one."""
    bare = re.sub(r"\{[^}]*\}", "", expr)
    bare = re.sub(r"\b(by|without)\s*\([^)]*\)", "", bare)
    return {t for t in re.findall(r"[a-z_][a-z0-9_]*", bare) if t.startswith(PREFIXES)}


def dashboard_metrics() -> set[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    return set().union(*map(queried_metrics, exprs))


def test_the_dashboard_parser_keeps_metrics_and_drops_labels() -> None:
    expr = (
        'sum by (service_name) (db_client_connection_count{db_client_connection_state="used"})'
        " / sum by (service_name) (db_client_connection_max)"
    )
    assert queried_metrics(expr) == {"db_client_connection_count", "db_client_connection_max"}


def test_every_replica_exports_what_the_dashboard_queries(suite: Suite) -> None:
    urls: dict[str, list[str]] = {}
    for rp in suite.stack.replicas:
        url = getattr(rp, "url", None)
        if url is None:
            pytest.skip("this target does not publish the services' own ports")
        urls.setdefault(rp.spec.name, []).append(url)
    # A refused delivery is a webhook outcome too: commerce's counter gets a series.
    forged = suite.anon.post(
        f"/webhooks/payments/{uuid.uuid4()}",
        content=b'{"id":"evt_forged"}',
        headers={"content-type": "application/json", "webhook-id": "evt_forged"},
    )
    assert 400 <= forged.status_code < 500
    exported: set[str] = set()
    for service, replica_urls in urls.items():
        for url in replica_urls:
            scrape = httpx.get(f"{url}/metrics", timeout=10)
            assert scrape.status_code == 200, f"{service} {url}: {scrape.status_code}"
            names = {
                sample.name
                for family in text_string_to_metric_families(scrape.text)
                for sample in family.samples
            }
            assert "http_server_request_duration_seconds_count" in names, service
            assert "coursemesh_outbox_unpublished" in names, service
            exported |= names
    wanted = dashboard_metrics()
    assert len(wanted) >= 12
    assert wanted - exported == set()


def test_the_gateway_does_not_publish_metrics(suite: Suite) -> None:
    problem(suite.anon.get("/metrics"), 404, "ROUTE_NOT_FOUND")
