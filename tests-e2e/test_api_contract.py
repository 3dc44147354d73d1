"""Every operation of every service's published contract, exercised through the gateway with
generated input (schemathesis over each service's ``/openapi/<service>.json``): no input gets a
5xx, and every answer is one the document declares (status code, content type, body schema).

Two passes per operation, each deterministic (Hypothesis derandomized) and bounded:

- ``positive``: input the document allows, with generated ids; the caller is a real user, so
  org-scoped calls mostly meet 403/404, which must be declared too;
- ``negative``: input the document forbids (wrong types, missing fields, bad formats), which
  must be refused with a declared 4xx, never a 5xx;

plus a ``grounded`` positive pass on the operations whose path names only things the caller
owns (their organization, its course and workouts), so that the success answers' bodies are
checked against their schemas as well.

Single topology: the contract is the code's, not the topology's.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from hypothesis.strategies import SearchStrategy
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import CheckFunction, not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from suite import Course, Suite, User

pytestmark = pytest.mark.e2e

AnyCase = Case[Any]
Operation = APIOperation[Any, Any, Any, Any]

#: The services whose documents the gateway serves at ``/openapi/<service>.json``.
SERVICES = ("catalog", "commerce", "learning", "custom-gen")
CHECKS: list[CheckFunction] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
#: Examples per operation and pass: enough to reach each operation's refusals, few enough that
#: the module stays a small share of the e2e run.
MAX_EXAMPLES = 8
#: Operations no generated request can meaningfully exercise, each with its reason. Kept short:
#: anything listed here is outside what this module vouches for.
EXCLUDED: Mapping[str, str] = {}
#: Operations with no negative pass: their one input is a free-form path segment (the sandbox
#: provider's session or account id), which any string is, so nothing can break the document.
UNNEGATABLE = frozenset(
    {
        "GET /pay/{session_id}",
        "POST /pay/{session_id}/pay",
        "POST /pay/{session_id}/decline",
        "GET /pay/accounts/{account_id}/onboarding",
        "POST /pay/accounts/{account_id}/onboarding",
    }
)


@dataclass
class Findings:
    """What the passes saw: requests per operation, and each distinct failure once."""

    calls: Counter[str] = field(default_factory=Counter)
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    failures: dict[tuple[str, str, str], str] = field(default_factory=dict)

    def record(
        self, case: AnyCase, response: Any, group: FailureGroup | None, pass_name: str
    ) -> None:
        label = case.operation.label
        self.calls[label] += 1
        self.statuses[pass_name, response.status_code] += 1
        if group is None:
            return
        for failure in group.exceptions:
            assert isinstance(failure, Failure)
            key = (label, type(failure).__name__, str(response.status_code))
            if key not in self.failures:
                self.failures[key] = (
                    f"{label} [{pass_name}] -> "
                    f"{response.status_code}: {failure.title}: {failure.message[:400]}\n"
                    f"    path={case.path_parameters} query={case.query} body={case.body!r}\n"
                    f"    body: {response.text[:300]!r}"
                )


def operations(suite: Suite) -> Iterator[Operation]:
    for service in SERVICES:
        schema = schemathesis.openapi.from_url(f"{suite.base_url}/openapi/{service}.json")
        for result in schema.get_all_operations():
            if isinstance(result, Err):
                raise AssertionError(f"{service}'s document: {result.err()}")
            operation = result.ok()
            if operation.label not in EXCLUDED:
                yield operation


def explore(
    strategy: SearchStrategy[AnyCase], send: Callable[[AnyCase], None], max_examples: int
) -> None:
    @settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def run(case: AnyCase) -> None:
        send(case)

    run()


def takes_input(operation: Operation) -> bool:
    """Whether the operation has anything a negative pass could make invalid."""
    located = (operation.path_parameters, operation.query, operation.headers, operation.cookies)
    return any(len(parameters) for parameters in located) or bool(list(operation.body))


def owned_ids(course: Course) -> dict[str, str]:
    """Path parameter values the caller owns, by the names the services' routes use."""
    return {
        "org_id": course.org_id,
        "organization_id": course.org_id,
        "course_id": course.course_id,
        "workout_id": course.workout_ids[0],
    }


def test_every_operation_keeps_to_its_document(suite: Suite) -> None:
    if suite.replicas != 1:
        pytest.skip("the contract is checked once, on the single-instance topology")
    started = time.monotonic()
    user: User = suite.user("contract")
    course = suite.course(price_cents=0, owner=user)
    known = owned_ids(course)
    auth = {"authorization": user.client.headers["authorization"]}
    findings = Findings()
    session = requests.Session()

    def sender(pass_name: str) -> Callable[[AnyCase], None]:
        def send(case: AnyCase) -> None:
            response = case.call(base_url=suite.base_url, session=session, headers=auth, timeout=30)
            try:
                case.validate_response(response, checks=CHECKS, headers=auth)
            except FailureGroup as group:
                findings.record(case, response, group, pass_name)
            else:
                findings.record(case, response, None, pass_name)

        return send

    labels: list[str] = []
    grounded: list[str] = []
    unnegatable: list[str] = []
    with session:
        for operation in operations(suite):
            labels.append(operation.label)
            explore(operation.as_strategy(), sender("positive"), MAX_EXAMPLES)
            if takes_input(operation):
                try:
                    negative = operation.as_strategy(generation_mode=GenerationMode.NEGATIVE)
                    explore(negative, sender("negative"), MAX_EXAMPLES)
                except Unsatisfiable:
                    unnegatable.append(operation.label)
            names = {p.name for p in operation.path_parameters}
            if names and names <= known.keys():
                grounded.append(operation.label)
                pinned = {name: known[name] for name in names}
                strategy = operation.as_strategy(path_parameters=pinned)
                explore(strategy, sender("grounded"), MAX_EXAMPLES)

    report = "\n".join(sorted(findings.failures.values()))
    assert not findings.failures, f"{len(findings.failures)} contract breaks:\n{report}"
    # every operation of every document was reached, under its own label
    assert len(labels) == len(set(labels)) >= 60, labels
    assert sorted(findings.calls) == sorted(labels), set(labels) ^ set(findings.calls)
    assert len(grounded) >= 20, grounded
    assert set(unnegatable) == UNNEGATABLE, set(unnegatable) ^ UNNEGATABLE
    # the caller's own resources answered with success bodies, which were checked as well
    print(
        f"{len(labels)} operations, {findings.calls.total()} requests, "
        f"{time.monotonic() - started:.1f}s: {sorted(findings.statuses.items())}"
    )
    succeeded = sum(n for (name, status), n in findings.statuses.items() if status < 300)
    assert succeeded >= 50, findings.statuses


def test_the_exclusions_are_few_and_named() -> None:
    assert len(EXCLUDED) <= 3, EXCLUDED
    assert len(UNNEGATABLE) <= 5, UNNEGATABLE
    for label, reason in EXCLUDED.items():
        method, _, path = label.partition(" ")
        assert method in {"GET", "POST", "PUT", "PATCH", "DELETE"}, label
        assert path.startswith("/"), label
        assert len(reason.split()) >= 5, f"{label}: say why it cannot be exercised"
