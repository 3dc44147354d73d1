"""Events produced by the catalog service (stream ``CATALOG``, subjects ``catalog.>``).

Every catalog event is state-carrying: it holds the whole state of what it is about, so a consumer
can apply the newest version it sees and ignore older ones (compare the envelope's
``aggregate_version``; see ``docs/events.md`` for which version to keep per projection).

Aggregates (the envelope's ``aggregate_id``):

- organization: the organization id;
- membership: ``"<organization_id>:<user_id>"`` (:func:`membership_aggregate_id`), one version
  counter per (organization, user) pair that survives removal and re-adding;
- workout: the workout id;
- course: the course (program) id, one version counter shared by every course event.
"""

from __future__ import annotations

import uuid

from coursemesh.contracts.envelope import Event, event
from coursemesh.contracts.types import (
    CourseStatus,
    CurrencyCode,
    CurriculumDay,
    NonEmptyStr,
    NonNegativeInt,
    PositiveInt,
    PreviewType,
    ReleaseMode,
    Role,
    UserId,
    UtcDateTime,
)

__all__ = [
    "CourseArchived",
    "CourseDetailsChanged",
    "CoursePublished",
    "CurriculumChanged",
    "MembershipChanged",
    "OrganizationUpserted",
    "WorkoutDeleted",
    "WorkoutUpserted",
    "membership_aggregate_id",
]


def membership_aggregate_id(organization_id: uuid.UUID, user_id: str) -> str:
    """The aggregate id of a membership: the (organization, user) pair."""
    return f"{organization_id}:{user_id}"


@event("catalog.organization.upserted.v1")
class OrganizationUpserted(Event, frozen=True, kw_only=True):
    """An organization was created or its profile changed; carries the full profile.

    Emitted by ``POST /organizations`` and ``PATCH /organizations/:orgId``. Consumers use it for
    seller branding (storefront, hosted payment page, receipts) and the currency of new plans.
    """

    organization_id: uuid.UUID
    name: NonEmptyStr
    slug: NonEmptyStr
    logo_url: str | None
    currency: CurrencyCode


@event("catalog.membership.changed.v1")
class MembershipChanged(Event, frozen=True, kw_only=True):
    """A user's membership of an organization was added, changed role, or was removed.

    Full state of the (organization, user) pair: ``role`` is ``None`` (and ``is_staff`` false)
    once the membership is removed. Emitted by the members endpoints and when an organization's
    creator becomes its owner. Commerce uses it at checkout to tell a buyer who is a member of the
    seller's organization from one who is not (``membership_id``), learning and commerce for staff
    checks (``is_staff``: the role is owner, admin or trainer).
    """

    organization_id: uuid.UUID
    user_id: UserId
    membership_id: uuid.UUID
    """The id of the catalog membership row, also after removal."""
    role: Role | None
    is_staff: bool


@event("catalog.workout.upserted.v1")
class WorkoutUpserted(Event, frozen=True, kw_only=True):
    """A library workout was created or edited; carries the whole workout.

    Learning projects the workouts its curricula use (workout pages of the player).
    """

    workout_id: uuid.UUID
    organization_id: uuid.UUID
    title: NonEmptyStr
    description: str | None
    duration_minutes: NonNegativeInt | None
    instructions: str | None
    media_urls: list[str]


@event("catalog.workout.deleted.v1")
class WorkoutDeleted(Event, frozen=True, kw_only=True):
    """A library workout was deleted (or soft-deleted) by staff.

    It can no longer be added to a curriculum. Curricula still referencing it keep it until a
    ``curriculum_changed`` says otherwise, so a consumer keeps the workout's last known content
    for those items.
    """

    workout_id: uuid.UUID
    organization_id: uuid.UUID
    deleted_at: UtcDateTime


@event("catalog.course.details_changed.v1")
class CourseDetailsChanged(Event, frozen=True, kw_only=True):
    """A course was created or its metadata edited; carries the full metadata and status.

    Emitted by course create (status ``draft``) and ``PATCH …/courses/:id``. Commerce and learning
    take the name and image from it (receipts, payment page, library). ``status`` is the status
    at the time of the event; publish and archive are announced by their own events.
    """

    course_id: uuid.UUID
    """The course id (the ``:id`` of the ``/courses/:id`` routes)."""
    organization_id: uuid.UUID
    name: NonEmptyStr
    description: str | None
    image_url: str | None
    duration_days: PositiveInt
    preview_type: PreviewType
    status: CourseStatus
    release_mode: ReleaseMode = "open"
    """``open``: every day is open from the start; ``daily``: day n opens on the buyer's day n."""
    max_pauses: NonNegativeInt | None = None
    """Pauses allowed per run of the course; None: unlimited."""
    max_pause_days: NonNegativeInt | None = None
    """Paused days counted per run; None: unlimited."""


@event("catalog.course.curriculum_changed.v1")
class CurriculumChanged(Event, frozen=True, kw_only=True):
    """A course's curriculum changed; carries the FULL dense curriculum and its new version.

    Emitted by ``POST …/courses/:id/days`` and whenever ``duration_days`` changes (the dense
    curriculum gains or loses days). ``days`` holds every day ``0 .. duration_days - 1`` in order.
    ``curriculum_version`` increases by one with every change, so a consumer can tell a newer
    curriculum from an older one; learning keeps the newest and reports it to the player.
    """

    course_id: uuid.UUID
    organization_id: uuid.UUID
    curriculum_version: NonNegativeInt
    duration_days: PositiveInt
    days: list[CurriculumDay]


@event("catalog.course.published.v1")
class CoursePublished(Event, frozen=True, kw_only=True):
    """A course was published (from draft, or again from archived).

    After it: status ``published``, ``published_at`` stamped, ``archived_at`` cleared. Commerce
    starts selling it (checkout needs a published course). ``curriculum_version`` is the version
    live at publication.
    """

    course_id: uuid.UUID
    organization_id: uuid.UUID
    published_at: UtcDateTime
    curriculum_version: PositiveInt


@event("catalog.course.archived.v1")
class CourseArchived(Event, frozen=True, kw_only=True):
    """A course was archived (``DELETE …/courses/:id``).

    After it: status ``archived`` with ``archived_at``. Commerce stops selling it; existing buyers
    keep their access (learning keeps serving it).
    """

    course_id: uuid.UUID
    organization_id: uuid.UUID
    archived_at: UtcDateTime
