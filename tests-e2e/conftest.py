"""The whole suite as real processes (``coursemesh.devstack.stack.Stack``, the code path of
``make up``), started once per topology: single instances, then two replicas of every service.

The stack fixture is session-scoped and parametrized, so pytest groups every journey under
one topology, stops that stack, then starts the next (one stack in memory at a time).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from coursemesh.devstack.ports import free_port
from coursemesh.devstack.stack import Stack
from coursemesh.devstack.testing import assert_pids_gone

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


@pytest.fixture(scope="session", params=list(TOPOLOGIES), ids=list(TOPOLOGIES))
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    replicas = TOPOLOGIES[request.param]
    data_dir: Path = tmp_path_factory.mktemp(f"stack-{request.param}") / "data"
    running = Stack(
        data_dir=data_dir,
        gateway_port=free_port(),
        replicas=replicas,
        fresh=True,
        startup_timeout=180.0,
        extra_env={"COMMERCE_SANDBOX_WEBHOOK_KEY": SANDBOX_WEBHOOK_KEY},
    )
    running.start()
    pids = [child.pid for child in running.children() if child.pid is not None]
    try:
        yield running
        running.check()  # no child died while the journeys ran
    finally:
        running.stop()
        assert_pids_gone(pids)
