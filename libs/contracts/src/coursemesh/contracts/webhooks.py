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


def examples() -> dict[str, Any]:
    """A delivery body of every public type, as a receiver gets it."""
    from coursemesh.contracts import examples as ex

    t = ex.EXAMPLE_TIME
    entitlement: dict[str, Any] = {
        "entitlement_id": ex.ENTITLEMENT,
        "organization_id": ex.ORG,
        "course_id": ex.COURSE,
        "user_id": ex.BUYER,
    }
    payment: dict[str, Any] = {
        "payment_id": ex.TRANSACTION,
        "organization_id": ex.ORG,
        "user_id": ex.BUYER,
        "entitlement_id": ex.ENTITLEMENT,
        "custom_course_purchase_id": None,
        "amount_in_cents": 4900,
        "currency": "EUR",
        "provider": "stripe",
        "at": t,
    }
    custom: dict[str, Any] = {
        "custom_course_id": ex.CUSTOM_COURSE,
        "organization_id": ex.ORG,
        "user_id": ex.BUYER,
        "checksum": ex.CHECKSUM,
        "file_size_bytes": 48391,
    }
    data: dict[str, _Data] = {
        "enrollment.activated": EnrollmentData(
            **entitlement,
            status="active",
            previous_status="pending",
            cause="payment_completed",
            reason=None,
            payment_id=ex.TRANSACTION,
            changed_at=t,
        ),
        "enrollment.revoked": EnrollmentData(
            **entitlement,
            status="revoked",
            previous_status="active",
            cause="staff_revoked",
            reason="Refunded on request",
            payment_id=ex.TRANSACTION,
            changed_at=t,
        ),
        "payment.completed": PaymentData(**payment),
        "payment.failed": PaymentData(**{**payment, "failure_reason": "card_declined"}),
        "payment.refunded": PaymentData(**payment),
        "lead.created": LeadCreatedData(
            lead_id=ex.LEAD,
            organization_id=ex.ORG,
            user_id=ex.BUYER,
            email="ann@example.com",
            source="course_purchase",
            created_at=t,
        ),
        "course.started": CourseStartedData(**entitlement, start_date=t.date(), restart_count=0),
        "course.completed": CourseCompletedData(**entitlement, completed_at=t),
        "workout.completed": WorkoutCompletedData(
            **entitlement, workout_id=ex.WORKOUT_A, day_offset=0, completed_at=t
        ),
        "custom_course.ready": CustomCourseData(**custom),
        "custom_course.updated": CustomCourseData(**custom, reason="audio_regenerated"),
        "regen_request.decided": RegenDecidedData(
            regen_request_id=ex.REGEN,
            custom_course_id=ex.CUSTOM_COURSE,
            organization_id=ex.ORG,
            user_id=ex.BUYER,
            audio_id=ex.AUDIO,
            decision="approved",
            note=None,
        ),
        TEST_EVENT_TYPE: TestData(
            endpoint_id=ex.ORG, organization_id=ex.ORG, message="A test event, sent on request."
        ),
    }
    return {
        kind: msgspec.to_builtins(
            WebhookMessage(type=kind, timestamp=t, data=msgspec.to_builtins(body))
        )
        for kind, body in data.items()
    }


def document() -> str:
    """``docs/webhook-events.json``: the schemas and an example of each type, as committed
    (regenerate with ``uv run python -m coursemesh.contracts.webhooks --write``)."""
    import json

    return json.dumps({**schemas(), "examples": examples()}, indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    import sys
    from pathlib import Path

    target = Path("docs/webhook-events.json")
    if "--write" in sys.argv:
        target.write_text(document())
        print(f"wrote {target}")
    else:
        print(document(), end="")
