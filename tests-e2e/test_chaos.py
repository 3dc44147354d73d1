"""The chaos drill (``bench/chaos.py``, docs/chaos.md) at a small size, once per topology.

Each run starts its own stack (never the shared e2e one), loads it through the gateway for
``COURSEMESH_CHAOS_DURATION`` seconds (default 20) while one victim at a time is killed with
SIGKILL (at least one service replica, NATS and PostgreSQL per run) and the supervisor restarts
it, then audits every acknowledged write against the databases, the streams, the mail sink and
S3. The seed is printed; ``COURSEMESH_CHAOS_SEED=N`` replays the same kill plan and client mix
(the interleaving still depends on the machine). The run's data dir (logs included) stays under
pytest's ``tmp_path``.
"""

from __future__ import annotations

import json
import os
import random
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from targets import target_name

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # bench/ is a package at the repository root
    sys.path.insert(0, str(ROOT))

from bench.chaos import DrillConfig, render, row_of, run_one  # noqa: E402

pytestmark = pytest.mark.e2e

DURATION = float(os.environ.get("COURSEMESH_CHAOS_DURATION", "30"))
#: Projections must have converged this long after the last victim is back and the load is over.
#: What stays open last is asynchronous by design: webhook deliveries and receipts retried with
#: exponential backoff after the failures they met, a receipt whose sent mark a kill lost waits
#: its 60 s lease.
CONVERGENCE_DEADLINE = 110.0
ALL_TOPOLOGIES = {"single": 1, "replicas2": 2}
TOPOLOGIES = [
    name
    for name in os.environ.get("COURSEMESH_E2E_TOPOLOGIES", ",".join(ALL_TOPOLOGIES)).split(",")
    if name
]


def _seed() -> int:
    fixed = os.environ.get("COURSEMESH_CHAOS_SEED")
    return int(fixed) if fixed else random.SystemRandom().randrange(1, 2**31)


def _findings(report: dict[str, Any], category: str) -> list[str]:
    """The run's findings of ``category``, grouped by what they say, counted, with a few
    examples (request ids and times on the load's clock, to find them in the logs)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for f in report.get("findings") or []:
        if f["category"] == category:
            what = re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}", "<id>", f["what"])
            groups.setdefault(what, []).append(f["detail"])
    out = []
    for what, details in groups.items():
        examples = [
            f"request {d['call']['request_id']} at {d['call']['sent']:.2f}s"
            if "call" in d
            else json.dumps(d, default=str)[:300]
            for d in details[:3]
        ]
        out.append(f"{len(details)} x {what} (e.g. {'; '.join(examples)})")
    return out


@pytest.mark.timeout(480)
@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_chaos_drill(topology: str, tmp_path: Path) -> None:
    if target_name() != "embedded":
        pytest.skip("the chaos drill kills processes of its own embedded stack")
    replicas = ALL_TOPOLOGIES[topology]
    config = DrillConfig(
        replicas=replicas,
        duration=DURATION,
        clients=4,
        seed=_seed(),
        first_kill=1.0,
        gap=(0.5, 1.5),
        converge_timeout=120.0,
        max_custom=4,
    )
    print(f"chaos drill: seed {config.seed} ({topology}); replay with COURSEMESH_CHAOS_SEED")
    report = run_one(config, tmp_path / "chaos")
    print(render([row_of(report, 1)]))
    (tmp_path / "chaos-report.json").write_text(json.dumps(report, indent=2, default=str))
    where = (
        f"seed {config.seed}, {topology}; report {tmp_path / 'chaos-report.json'}, "
        f"logs {report.get('logs_dir')}"
    )

    failures: list[str] = []
    kinds = report.get("kills_by_category") or {}
    missing = [k for k in ("service", "nats", "postgres") if not kinds.get(k)]
    if missing:
        failures.append(f"no kill of {missing} within {DURATION:g}s of load: {report.get('kills')}")
    for category in ("drill_error", "crash_loop", "unexpected_exit", "stuck"):
        failures += [f"{category}: {x}" for x in _findings(report, category)]
    if report.get("drill_restarts"):
        failures.append(f"the supervisor did not restart {report['drill_restarts']}")
    if report.get("lost"):
        failures.append(f"lost effects: {report['lost']}: {_findings(report, 'lost')}")
    if report.get("duplicated"):
        # receipts count as a mailbox shows them: distinct Message-IDs (docs/chaos.md)
        failures.append(
            f"duplicated effects: {report['duplicated']}: {_findings(report, 'duplicated')}"
        )
    if report.get("phantom"):
        failures.append(f"effects nobody asked for: {_findings(report, 'phantom')}")
    conv = report.get("convergence_seconds")
    if conv is None or conv > CONVERGENCE_DEADLINE:
        failures.append(
            f"projections converged after {conv}s (deadline {CONVERGENCE_DEADLINE:g}s): "
            f"{report.get('gaps_left')}"
        )
    if _findings(report, "wrong_answer"):
        # e.g. a false 404 right after a write acknowledged around a NATS kill
        failures.append(f"wrong answers: {_findings(report, 'wrong_answer')}")
    if _findings(report, "unexplained_5xx"):
        failures.append(f"5xx outside every outage: {_findings(report, 'unexplained_5xx')}")
    assert not failures, f"chaos drill ({where}):\n- " + "\n- ".join(failures)
