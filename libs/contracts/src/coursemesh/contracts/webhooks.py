"""The public events coursemesh sends to the webhook endpoints an organization registers.

Their own contract, versioned apart from the internal events they are built from: a field is
added, never renamed or removed; a breaking change is a new type name. JSON field names are
camelCase, as everywhere in the public API. Every delivery's body is a :class:`WebhookMessage`:
``{"type": "...", "timestamp": "...", "data": {...}}`` (the Standard Webhooks convention).
"""

from __future__ import annotations

import inspect
import uuid
from datetime import date, datetime
from typing import Any

import msgspec

__all__ = [
    "EVENT_TYPES",
    "CourseCompletedData",
    "CourseStartedData",
    "CustomCourseData",
    "EnrollmentData",
    "LeadCreatedData",
    "PaymentData",
    "RegenDecidedData",
    "TestData",
    "WebhookMessage",
    "WorkoutCompletedData",
    "schemas",
]


class _Data(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    pass


class EnrollmentData(_Data, frozen=True, kw_only=True, rename="camel"):
    """``enrollment.activated`` (the buyer may follow the course) and ``enrollment.revoked``
    (access ended: ``cause`` says by what, ``reason`` why, when staff gave one)."""

    entitlement_id: uuid.UUID
    organization_id: uuid.UUID
    course_id: uuid.UUID
    user_id: str
    status: str
    previous_status: str | None
    cause: str
    reason: str | None
    payment_id: uuid.UUID | None
    changed_at: datetime


class PaymentData(_Data, frozen=True, kw_only=True, rename="camel"):
    """``payment.completed``, ``payment.failed`` (``failureReason``) and ``payment.refunded``
    (``amountInCents`` is the amount refunded). Exactly one of ``entitlementId`` (a course) and
    ``customCoursePurchaseId`` (a custom course) is set."""

    payment_id: uuid.UUID
    organization_id: uuid.UUID
    user_id: str
    entitlement_id: uuid.UUID | None
    custom_course_purchase_id: uuid.UUID | None
    amount_in_cents: int
    currency: str
    provider: str
    failure_reason: str | None = None
    at: datetime


class LeadCreatedData(_Data, frozen=True, kw_only=True, rename="camel"):
    """``lead.created``: a buyer who is not a member became a lead of the organization."""

    lead_id: uuid.UUID
    organization_id: uuid.UUID
    user_id: str
    email: str | None
    source: str
    created_at: datetime


class CourseStartedData(_Data, frozen=True, kw_only=True, rename="camel"):
    """``course.started``: the learner chose a start date (again, after a restart)."""

    entitlement_id: uuid.UUID
    organization_id: uuid.UUID
    course_id: uuid.UUID
    user_id: str
    start_date: date
    restart_count: int


class CourseCompletedData(_Data, frozen=True, kw_only=True, rename="camel"):
    """``course.completed``: every workout of the curriculum is done."""

    entitlement_id: uuid.UUID
    organization_id: uuid.UUID
    course_id: uuid.UUID
    user_id: str
    completed_at: datetime


class WorkoutCompletedData(_Data, frozen=True, kw_only=True, rename="camel"):
    """``workout.completed``: one workout of one day marked done."""

    entitlement_id: uuid.UUID
    organization_id: uuid.UUID
    course_id: uuid.UUID
    user_id: str
    workout_id: uuid.UUID
    day_offset: int
    completed_at: datetime


class CustomCourseData(_Data, frozen=True, kw_only=True, rename="camel"):
    """``custom_course.ready`` (generated, downloadable) and ``custom_course.updated`` (its data
    changed: ``reason``); ``checksum`` is the MD5 the mobile handshake compares."""

    custom_course_id: uuid.UUID
    organization_id: uuid.UUID
    user_id: str
    checksum: str
    file_size_bytes: int
    reason: str | None = None


class RegenDecidedData(_Data, frozen=True, kw_only=True, rename="camel"):
    """``regen_request.decided``: staff approved or rejected a buyer's regeneration request."""

    regen_request_id: uuid.UUID
    custom_course_id: uuid.UUID
    organization_id: uuid.UUID
    user_id: str
    audio_id: uuid.UUID
    decision: str
    note: str | None


class TestData(_Data, frozen=True, kw_only=True, rename="camel"):
    """``webhook.test``: sent on request from the endpoint's test action, to no other."""

    __test__ = False  # not a pytest test class

    endpoint_id: uuid.UUID
    organization_id: uuid.UUID
    message: str


#: Every public event type an endpoint may subscribe to, with the shape of its ``data``.
EVENT_TYPES: dict[str, type[_Data]] = {
    "enrollment.activated": EnrollmentData,
    "enrollment.revoked": EnrollmentData,
    "payment.completed": PaymentData,
    "payment.failed": PaymentData,
    "payment.refunded": PaymentData,
    "lead.created": LeadCreatedData,
    "course.started": CourseStartedData,
    "course.completed": CourseCompletedData,
    "workout.completed": WorkoutCompletedData,
    "custom_course.ready": CustomCourseData,
    "custom_course.updated": CustomCourseData,
    "regen_request.decided": RegenDecidedData,
}
TEST_EVENT_TYPE = "webhook.test"


class WebhookMessage(msgspec.Struct, frozen=True, kw_only=True):
    """A delivery's body."""

    type: str
    timestamp: datetime
    data: dict[str, Any]


def schemas() -> dict[str, Any]:
    """The JSON Schema of each public type's ``data``, by type name."""
    types = {**EVENT_TYPES, TEST_EVENT_TYPE: TestData}
    names = list(types)
    found, components = msgspec.json.schema_components([types[n] for n in names])
    for component in components.values():
        # CPython 3.13 strips docstring indentation when compiling; earlier versions keep it.
        if "description" in component:
            component["description"] = inspect.cleandoc(component["description"])
    return {
        "types": dict(zip(names, found, strict=True)),
        "components": components,
    }


def document() -> str:
    """``docs/webhook-events.json``: the schemas as committed (regenerate with
    ``uv run python -m coursemesh.contracts.webhooks --write``)."""
    import json

    return json.dumps(schemas(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    import sys
    from pathlib import Path

    target = Path("docs/webhook-events.json")
    if "--write" in sys.argv:
        target.write_text(document())
        print(f"wrote {target}")
    else:
        print(document(), end="")
