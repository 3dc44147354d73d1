"""Value types shared by event payloads.

Constraints given here (``msgspec.Meta``) are checked when a consumer decodes an event, so a
producer must respect them; they are part of the contract and of the schema snapshot.

Identifiers: every id a coursemesh service generates is a :class:`uuid.UUID`. User ids are the
auth provider's ``sub`` claim (a Clerk-style opaque string such as ``user_2abc...``), so they are
:data:`UserId` strings, not UUIDs.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec

__all__ = [
    "STAFF_ROLES",
    "Cents",
    "Checksum",
    "CourseStatus",
    "CurrencyCode",
    "CurriculumDay",
    "CurriculumItem",
    "CustomCourseCode",
    "CustomCourseUpdateReason",
    "EntitlementCause",
    "EntitlementCauseName",
    "EntitlementStatus",
    "LeadSource",
    "NonEmptyStr",
    "NonNegativeInt",
    "PaymentProvider",
    "PositiveInt",
    "PreviewType",
    "RegenDecision",
    "ReleaseMode",
    "Role",
    "UserId",
    "UtcDateTime",
    "is_staff_role",
]

# --- scalars -------------------------------------------------------------------------------

UtcDateTime = Annotated[datetime, msgspec.Meta(tz=True)]
"""An instant. Producers send timezone-aware UTC datetimes; naive ones are rejected on decode."""

UserId = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
"""The auth provider's subject (JWT ``sub``)."""

NonEmptyStr = Annotated[str, msgspec.Meta(min_length=1)]
NonNegativeInt = Annotated[int, msgspec.Meta(ge=0)]
PositiveInt = Annotated[int, msgspec.Meta(ge=1)]

Cents = Annotated[int, msgspec.Meta(ge=0)]
"""An amount of money in the currency's minor unit (cents); 0 means free."""

CurrencyCode = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$")]
"""ISO 4217 alphabetic code, upper case (``USD``, ``EUR``)."""

Checksum = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{32}$")]
"""MD5, 32 lower-case hex digits."""

CustomCourseCode = Annotated[str, msgspec.Meta(pattern=r"^X[A-Z0-9]{5}$")]
"""A custom course offer code: 6 characters, ``X``-prefixed, upper case (``X99ENB``)."""

# --- closed sets ---------------------------------------------------------------------------

Role = Literal["owner", "admin", "trainer", "member"]
"""A membership role in an organization."""

STAFF_ROLES: frozenset[str] = frozenset({"owner", "admin", "trainer"})


def is_staff_role(role: Role | None) -> bool:
    """Staff roles: owner, admin and trainer are staff; member is not."""
    return role in STAFF_ROLES


CourseStatus = Literal["draft", "published", "archived", "cancelled"]
"""A course's publication status (``cancelled`` exists but courses do not use it)."""

PreviewType = Literal["none", "first_day", "all_titles"]
ReleaseMode = Literal["open", "daily"]
"""What the public storefront previews: nothing, the first day's workouts, or every title."""

EntitlementStatus = Literal["pending", "active", "revoked"]
"""An entitlement's status: ``pending`` (a paid checkout awaiting payment), ``active`` or
``revoked``."""

EntitlementCause = Literal[
    "free_checkout",  # new or reactivated row -> active (price 0)
    "paid_checkout",  # new or reactivated row -> pending (hosted payment started)
    "payment_completed",  # pending -> active, or a replay refreshing the transaction link
    "payment_failed",  # pending -> revoked
    "payment_refunded",  # active -> revoked
    "payment_disputed",  # active -> revoked (chargeback)
    "checkout_expired",  # pending -> revoked by the abandoned-checkout sweeper
    "staff_revoked",  # any -> revoked by a staff action
]
"""Why an entitlement changed (the transition's trigger), as ``commerce.entitlement.changed.v1``
carries it: a closed set."""

EntitlementCauseName = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[a-z][a-z0-9_]{0,63}$",
        description=(
            "Why the entitlement changed: one of the v1 causes, or staff_granted (a staff "
            "member gave the course without a payment). The set grows without a new version: "
            "a consumer treats a cause it does not know by the entitlement's status alone."
        ),
    ),
]
"""Why an entitlement changed, as ``commerce.entitlement.changed.v2`` carries it: an open set."""

PaymentProvider = Literal["sandbox", "stripe"]

LeadSource = Literal["course_purchase", "custom_course_purchase"]
"""What made a buyer without membership a lead of the seller's organization."""

CustomCourseUpdateReason = Literal["audio_appended", "audio_regenerated", "content_edited"]
"""Why a ready custom course's data (and so its checksum) changed."""

RegenDecision = Literal["approved", "rejected"]
"""What the organization's staff decided on a buyer's audio regeneration request."""

# --- structures ----------------------------------------------------------------------------


class CurriculumItem(msgspec.Struct, frozen=True, kw_only=True):
    """One workout on one day of a curriculum (a course_workouts link row).

    ``item_id`` identifies the (day, workout) occurrence, so the same library workout on two days
    is two items; learning records completions per item.
    """

    item_id: uuid.UUID
    workout_id: uuid.UUID
    position: NonNegativeInt
    """0-based order within the day, as the trainer gave it."""


class CurriculumDay(msgspec.Struct, frozen=True, kw_only=True):
    """One day of the dense curriculum. A rest day has no items; a day nobody set has
    ``is_rest=False`` and no items."""

    day_offset: NonNegativeInt
    """0-based: day 0 is the start date."""
    is_rest: bool
    items: list[CurriculumItem]
    """Ordered by ``position``."""
