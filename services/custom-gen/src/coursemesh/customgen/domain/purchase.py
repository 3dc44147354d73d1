"""A custom course purchase and the one decision on it: may this intake turn it into a course."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

from coursemesh.chassis.errors import BadRequest, Conflict, DomainError, NotFound
from coursemesh.customgen.domain.intake import Intake

PurchaseStatus = Literal["awaiting_intake", "submitted"]


@dataclass(frozen=True, slots=True)
class Purchase:
    id: uuid.UUID
    user_id: str
    organization_id: uuid.UUID
    course_code: str
    offer_title: str
    status: PurchaseStatus
    custom_course_id: uuid.UUID | None


SubmissionOutcome = Literal[
    "accepted", "intake_invalid", "purchase_not_found", "purchase_already_used"
]


def decide_submission(purchase: Purchase | None, user_id: str, intake: Intake) -> SubmissionOutcome:
    """Whether ``user_id`` may turn ``purchase`` into a course with ``intake`` (normalised)."""
    if intake.is_blank:
        return "intake_invalid"
    # A purchase of someone else is indistinguishable from a missing one.
    if purchase is None or purchase.user_id != user_id:
        return "purchase_not_found"
    if purchase.status != "awaiting_intake":
        return "purchase_already_used"
    return "accepted"


def submission_refusal(outcome: SubmissionOutcome, purchase: Purchase | None) -> DomainError:
    """The error a refused submission answers with."""
    if outcome == "intake_invalid":
        return BadRequest("goal and preferredName must not be blank", code="INTAKE_INVALID")
    if outcome == "purchase_already_used" and purchase is not None:
        return Conflict(
            "This purchase already has its custom course",
            code="PURCHASE_ALREADY_USED",
            extra={"customCourseId": str(purchase.custom_course_id)},
        )
    return NotFound("No such purchase", code="PURCHASE_NOT_FOUND")
