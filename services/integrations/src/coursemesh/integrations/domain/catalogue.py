"""Which internal event becomes which public webhook event, with which ``data``: built only
from the internal contracts (never from another service's tables)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

from coursemesh.contracts import commerce, customgen, learning
from coursemesh.contracts.webhooks import (
    EVENT_TYPES,
    CourseCompletedData,
    CourseStartedData,
    CustomCourseData,
    EnrollmentData,
    LeadCreatedData,
    PaymentData,
    RegenDecidedData,
    WebhookMessage,
    WorkoutCompletedData,
)

#: The largest body sent; beyond it ``data`` is cut to its ids (see :func:`body_of`).
MAX_BODY_BYTES = 20_000


@dataclass(frozen=True, slots=True)
class PublicEvent:
    type: str
    organization_id: uuid.UUID
    data: msgspec.Struct


def _enrollment(p: commerce.EntitlementChangedV2) -> PublicEvent | None:
    kind = {"active": "enrollment.activated", "revoked": "enrollment.revoked"}.get(p.status)
    if kind is None or p.previous_status == p.status:  # pending, or a link refresh
        return None
    data = EnrollmentData(
        entitlement_id=p.entitlement_id,
        organization_id=p.organization_id,
        course_id=p.course_id,
        user_id=p.user_id,
        status=p.status,
        previous_status=p.previous_status,
        cause=p.cause,
        reason=p.reason,
        payment_id=p.source_payment_transaction_id,
        changed_at=p.changed_at,
    )
    return PublicEvent(kind, p.organization_id, data)


def _payment(
    kind: str,
    p: commerce.PaymentCompleted | commerce.PaymentFailed | commerce.PaymentRefunded,
    at: datetime,
    failure_reason: str | None = None,
) -> PublicEvent:
    data = PaymentData(
        payment_id=p.transaction_id,
        organization_id=p.organization_id,
        user_id=p.user_id,
        entitlement_id=p.entitlement_id,
        custom_course_purchase_id=p.custom_course_purchase_id,
        amount_in_cents=p.amount_in_cents,
        currency=p.currency,
        provider=p.provider,
        failure_reason=failure_reason,
        at=at,
    )
    return PublicEvent(kind, p.organization_id, data)


def public_event(payload: Any, custom_course_org: uuid.UUID | None = None) -> PublicEvent | None:
    """The public event an internal payload becomes, or None when it becomes none.
    ``custom_course_org``: the organization of the custom course the payload is about (its
    ready/updated events do not carry it)."""
    match payload:
        case commerce.EntitlementChangedV2():
            return _enrollment(payload)
        case commerce.PaymentCompleted():
            return _payment("payment.completed", payload, payload.completed_at)
        case commerce.PaymentFailed():
            return _payment("payment.failed", payload, payload.failed_at, payload.failure_reason)
        case commerce.PaymentRefunded():
            return _payment("payment.refunded", payload, payload.refunded_at)
        case commerce.LeadCreated():
            lead = LeadCreatedData(
                lead_id=payload.lead_id,
                organization_id=payload.organization_id,
                user_id=payload.user_id,
                email=payload.email,
                source=payload.source,
                created_at=payload.created_at,
            )
            return PublicEvent("lead.created", payload.organization_id, lead)
        case learning.CourseStarted():
            started = CourseStartedData(
                entitlement_id=payload.entitlement_id,
                organization_id=payload.organization_id,
                course_id=payload.course_id,
                user_id=payload.user_id,
                start_date=payload.start_date,
                restart_count=payload.restart_count,
            )
            return PublicEvent("course.started", payload.organization_id, started)
        case learning.CourseCompleted():
            completed = CourseCompletedData(
                entitlement_id=payload.entitlement_id,
                organization_id=payload.organization_id,
                course_id=payload.course_id,
                user_id=payload.user_id,
                completed_at=payload.completed_at,
            )
            return PublicEvent("course.completed", payload.organization_id, completed)
        case learning.WorkoutCompleted():
            workout = WorkoutCompletedData(
                entitlement_id=payload.entitlement_id,
                organization_id=payload.organization_id,
                course_id=payload.course_id,
                user_id=payload.user_id,
                workout_id=payload.workout_id,
                day_offset=payload.day_offset,
                completed_at=payload.completed_at,
            )
            return PublicEvent("workout.completed", payload.organization_id, workout)
        case customgen.CustomCourseReady() | customgen.CustomCourseUpdated():
            if custom_course_org is None:
                return None
            ready = isinstance(payload, customgen.CustomCourseReady)
            course = CustomCourseData(
                custom_course_id=payload.custom_course_id,
                organization_id=custom_course_org,
                user_id=payload.user_id,
                checksum=payload.checksum,
                file_size_bytes=payload.file_size_bytes,
                reason=None if ready else getattr(payload, "reason", None),
            )
            kind = "custom_course.ready" if ready else "custom_course.updated"
            return PublicEvent(kind, custom_course_org, course)
        case customgen.RegenRequestDecided():
            decided = RegenDecidedData(
                regen_request_id=payload.regen_request_id,
                custom_course_id=payload.custom_course_id,
                organization_id=payload.organization_id,
                user_id=payload.user_id,
                audio_id=payload.audio_id,
                decision=payload.decision,
                note=payload.note,
            )
            return PublicEvent("regen_request.decided", payload.organization_id, decided)
    return None


#: The ``data`` fields kept when a body would be larger than :data:`MAX_BODY_BYTES`.
_ID_FIELDS = ("Id", "status", "decision", "cause")


def body_of(event_type: str, data: msgspec.Struct | dict[str, Any], at: datetime) -> str:
    """The JSON body of a delivery. Past :data:`MAX_BODY_BYTES`, ``data`` keeps only its ids
    and states plus ``truncated: true``: the receiver reads the rest from the API."""
    built = msgspec.to_builtins(data)
    body = msgspec.json.encode(WebhookMessage(type=event_type, timestamp=at, data=built))
    if len(body) <= MAX_BODY_BYTES:
        return body.decode()
    kept = {k: v for k, v in built.items() if k.endswith(_ID_FIELDS) and len(str(v)) < 200}
    small = WebhookMessage(type=event_type, timestamp=at, data={**kept, "truncated": True})
    return msgspec.json.encode(small).decode()


def subscribed(event_types: list[str], event_type: str) -> bool:
    return event_type in event_types


def unknown_event_types(names: list[str]) -> list[str]:
    return [n for n in names if n not in EVENT_TYPES]
