"""The ports of the catalog's use cases: what they need from storage, as Protocols.

The SQL adapters (``coursemesh.catalog.adapters``) implement them on PostgreSQL; the unit tests
implement them in memory.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from coursemesh.catalog.app.views import CourseView, StorefrontPage
from coursemesh.catalog.domain.course import Course, Curriculum, SetDay, SetItem
from coursemesh.catalog.domain.organization import Organization
from coursemesh.catalog.domain.roles import Membership
from coursemesh.catalog.domain.workout import Workout
from coursemesh.chassis.transaction import EventSink
from coursemesh.contracts.types import CourseStatus, PreviewType, Role


class SlugTaken(Exception):
    """Another organization has this slug already: raised by ``add_organization`` and
    ``save_organization``; the transaction cannot go on."""


@dataclass(frozen=True, slots=True)
class MemberOf:
    """An organization and a user's current role in it."""

    organization: Organization
    role: Role


class CatalogReader(Protocol):
    """Reads of the catalog: at one moment when inside a transaction, else statement by
    statement."""

    async def role(self, organization_id: uuid.UUID, user_id: str) -> Role | None:
        """The user's current role in the organization; ``None`` when they are not in it (never
        were, or were removed) or the organization does not exist."""
        ...

    async def organization(self, organization_id: uuid.UUID) -> Organization | None: ...

    async def members(self, organization_id: uuid.UUID) -> list[Membership]:
        """Current members (with a role), oldest membership first."""
        ...

    async def organizations_of(
        self, user_id: str, *, limit: int, offset: int
    ) -> tuple[list[MemberOf], int]:
        """One page of the organizations the user is a current member of (any role), ordered
        by name then id, and how many there are in all."""
        ...

    async def workouts(self, organization_id: uuid.UUID) -> list[Workout]:
        """The library: workouts not deleted, oldest first."""
        ...

    async def workout(self, organization_id: uuid.UUID, workout_id: uuid.UUID) -> Workout | None:
        """The organization's workout, deleted or not; ``None`` for another organization's."""
        ...

    async def course_views(
        self, organization_id: uuid.UUID, course_id: uuid.UUID | None = None
    ) -> list[CourseView]:
        """Staff views of one course, or of every course of the organization (drafts too),
        oldest first; empty when the course is not the organization's."""
        ...


class CatalogWriter(CatalogReader, EventSink, Protocol):
    """One transaction: its reads, its writes and the events it publishes commit together.

    ``lock_*`` reads take the row's lock until the end of the transaction, so commands on one
    aggregate run one at a time and its versions never skip or repeat.
    """

    async def add_organization(self, organization: Organization) -> None:
        """Raises :class:`SlugTaken`."""
        ...

    async def lock_organization(self, organization_id: uuid.UUID) -> Organization | None: ...

    async def save_organization(self, organization: Organization) -> None:
        """Raises :class:`SlugTaken`."""
        ...

    async def lock_owners(self, organization_id: uuid.UUID) -> int:
        """How many owners the organization has, their memberships locked: two concurrent
        demotions cannot both see a second owner."""
        ...

    async def lock_membership(self, organization_id: uuid.UUID, user_id: str) -> Membership | None:
        """The (organization, user) membership, current or removed."""
        ...

    async def add_membership(self, membership: Membership) -> None: ...

    async def save_membership(self, membership: Membership) -> None: ...

    async def lock_workout(
        self, organization_id: uuid.UUID, workout_id: uuid.UUID
    ) -> Workout | None:
        """As :meth:`CatalogReader.workout`, locked."""
        ...

    async def add_workout(self, workout: Workout) -> None: ...

    async def save_workout(self, workout: Workout) -> None: ...

    async def live_workout_ids(
        self, organization_id: uuid.UUID, workout_ids: Collection[uuid.UUID]
    ) -> set[uuid.UUID]:
        """Which of ``workout_ids`` are workouts of the organization's library (not deleted)."""
        ...

    async def lock_course(self, organization_id: uuid.UUID, course_id: uuid.UUID) -> Course | None:
        """The organization's course, locked; ``None`` for another organization's."""
        ...

    async def curriculum(self, course_id: uuid.UUID) -> Curriculum: ...

    async def add_course(self, course: Course) -> None: ...

    async def save_course(self, course: Course) -> None: ...

    async def replace_day(
        self,
        course_id: uuid.UUID,
        day_offset: int,
        day: SetDay | None,
        items: Sequence[SetItem],
    ) -> None:
        """Store ``day`` and its ``items`` in place of whatever the day held (``None``: the day
        is no longer set)."""
        ...


class CatalogStore(Protocol):
    """Where the catalog lives."""

    def transaction(self) -> AbstractAsyncContextManager[CatalogWriter]:
        """A transaction: committed (with its events) when the block ends normally, rolled back
        otherwise."""
        ...

    def reading(self) -> AbstractAsyncContextManager[CatalogReader]:
        """Reads only: nothing is committed, nothing published."""
        ...


@dataclass(frozen=True, slots=True)
class StorefrontListing:
    """Everything the storefront may show of one course, whether or not it is on sale."""

    id: uuid.UUID
    name: str
    description: str | None
    image_url: str | None
    status: CourseStatus
    duration_days: int
    preview_type: PreviewType
    seller_name: str
    seller_slug: str
    seller_logo_url: str | None
    price_in_cents: int | None
    currency: str | None
    plan_active: bool | None
    """``None`` while no plan has been projected for the course."""
    workout_count: int
    """Curriculum items (a workout on two days counts twice)."""
    preview: bytes | str
    """The preview workouts as JSON (camelCase ``PreviewWorkoutView`` objects): those of the
    earliest day that has any (``first_day``), every item in order (``all_titles``), none
    (``none``)."""


class StorefrontStore(Protocol):
    async def listing(self, course_id: uuid.UUID) -> StorefrontListing | None:
        """The course as the storefront sees it; ``None`` when the course or its config does
        not exist."""
        ...


class StorefrontPages(Protocol):
    """The storefront's answers: the use case, or a cache in front of it."""

    async def page(self, course_id: uuid.UUID) -> StorefrontPage:
        """The 200 page of a course on sale; raises the storefront's 404s."""
        ...
