"""The whole suite as real processes, started once per topology: single instances, then two
replicas of every service.

``COURSEMESH_E2E_TARGET`` picks what runs it (``targets.py``, docs/e2e.md):

- ``embedded`` (default): ``coursemesh.devstack.stack.Stack``, the code path of ``make up``;
- ``compose``: ``docker-compose.yml`` as project ``coursemesh-e2e`` (needs a Docker engine and
  the Compose v2 plugin; without them the run stops before any test, naming what is missing).

The stack fixture is session-scoped and parametrized, so pytest groups every journey under
one topology, stops that stack, then starts the next (one stack at a time).
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# --import-mode=importlib does not put this directory on sys.path: make targets.py importable.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from suite import Course, Suite
from targets import (
    TARGET_ENV,
    E2ETarget,
    compose_unavailable,
    run_compose,
    run_embedded,
    target_name,
)

from coursemesh.devstack.ports import free_port
from coursemesh.devstack.stack import Stack

#: The sandbox provider's webhook key the stack is configured with; tests derive each
#: organization's webhook secret from it exactly as docs/commerce.md says.
SANDBOX_WEBHOOK_KEY = "e2e-sandbox-" + secrets.token_hex(8)

ALL_TOPOLOGIES = {"single": 1, "replicas2": 2}
#: ``COURSEMESH_E2E_TOPOLOGIES=single`` (comma-separated) runs a subset; default: both.
TOPOLOGIES = {
    name: ALL_TOPOLOGIES[name]
    for name in os.environ.get("COURSEMESH_E2E_TOPOLOGIES", ",".join(ALL_TOPOLOGIES)).split(",")
    if name
}


@pytest.hookimpl(trylast=True)  # after -m / -k deselection: only the journeys that will run
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``COURSEMESH_E2E_TARGET=compose`` is an explicit opt-in: when a selected test needs the
    stack and Docker cannot run it, stop the whole run now, saying why, instead of erroring
    every journey after a timeout."""
    try:
        target = target_name()
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from exc
    if target != "compose" or not any("stack" in getattr(i, "fixturenames", ()) for i in items):
        return
    reason = compose_unavailable()
    if reason is not None:
        raise pytest.UsageError(
            f"{TARGET_ENV}=compose cannot run the e2e journeys: {reason}. "
            f"Unset {TARGET_ENV} (or set it to `embedded`) to use the embedded stack."
        )


@pytest.fixture(scope="session", params=list(TOPOLOGIES), ids=list(TOPOLOGIES))
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[E2ETarget]:
    replicas = TOPOLOGIES[request.param]
    extra_env = {
        "COMMERCE_SANDBOX_WEBHOOK_KEY": SANDBOX_WEBHOOK_KEY,
        "LEARNING_REMINDER_KEY": "e2e-reminders-" + secrets.token_hex(8),
        # a reminder that came due is mailed within a second, not the default half minute
        "LEARNING_REMINDER_INTERVAL_SECONDS": "1",
    }
    data_dir: Path = tmp_path_factory.mktemp(f"stack-{request.param}") / "data"
    if target_name() == "compose":
        reason = compose_unavailable()
        if reason is not None:  # the collection hook stops earlier; this guards direct use
            pytest.fail(f"{TARGET_ENV}=compose: {reason}", pytrace=False)
        with run_compose(data_dir, replicas=replicas, extra_env=extra_env) as composed:
            yield composed
        return
    with run_embedded(
        data_dir, gateway_port=free_port(), replicas=replicas, extra_env=extra_env
    ) as embedded:
        yield embedded


@pytest.fixture(scope="session")
def suite(stack: Stack) -> Iterator[Suite]:
    s = Suite(stack)
    yield s
    s.close()


@pytest.fixture
def free_course(suite: Suite) -> Course:
    return suite.course(price_cents=0, name="Free reset")


@pytest.fixture
def paid_course(suite: Suite) -> Course:
    return suite.course(price_cents=4900, name="Paid reset")
