"""In-memory fakes of the catalog's ports, for the use-case tests (no database, no I/O).

A transaction works on a copy of the store's state and its staged events; it replaces the state
and records the events only when its block ends normally, so a refused command leaves the store
as it was, as the SQL store's rollback does.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import AsyncIterator, Awaitable, Collection, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import pytest

from coursemesh.catalog.app.ports import MemberOf, SlugTaken, StorefrontListing
from coursemesh.catalog.app.views import CourseView, DayView, ItemView
from coursemesh.catalog.domain.course import Course, Curriculum, SetDay, SetItem, dense_curriculum
from coursemesh.catalog.domain.organization import Organization
from coursemesh.catalog.domain.roles import Membership
from coursemesh.catalog.domain.workout import Workout
from coursemesh.chassis.errors import DomainError
from coursemesh.contracts import Envelope, Event, envelope
from coursemesh.contracts.types import Role

E = TypeVar("E", bound=Event)


@dataclass
class State:
    organizations: dict[uuid.UUID, Organization] = field(default_factory=dict)
    memberships: dict[tuple[uuid.UUID, str], Membership] = field(default_factory=dict)
    workouts: dict[uuid.UUID, Workout] = field(default_factory=dict)
    courses: dict[uuid.UUID, Course] = field(default_factory=dict)
    curricula: dict[uuid.UUID, Curriculum] = field(default_factory=dict)


class FakeReader:
    def __init__(self, state: State) -> None:
        self.state = state

    async def role(self, organization_id: uuid.UUID, user_id: str) -> Role | None:
        member = self.state.memberships.get((organization_id, user_id))
        return None if member is None else member.role

    async def organization(self, organization_id: uuid.UUID) -> Organization | None:
        return self.state.organizations.get(organization_id)

    async def members(self, organization_id: uuid.UUID) -> list[Membership]:
        members = [
            m
            for m in self.state.memberships.values()
            if m.organization_id == organization_id and m.role is not None
        ]
        return sorted(members, key=lambda m: (m.created_at, m.user_id))

    async def organizations_of(
        self, user_id: str, *, limit: int, offset: int
    ) -> tuple[list[MemberOf], int]:
        mine = sorted(
            (
                MemberOf(self.state.organizations[m.organization_id], m.role)
                for m in self.state.memberships.values()
                if m.user_id == user_id and m.role is not None
            ),
            key=lambda found: (found.organization.name, found.organization.id),
        )
        return mine[offset : offset + limit], len(mine)

    async def workouts(self, organization_id: uuid.UUID) -> list[Workout]:
        live = [
            w
            for w in self.state.workouts.values()
            if w.organization_id == organization_id and w.deleted_at is None
        ]
        return sorted(live, key=lambda w: (w.created_at, w.id))

    async def workout(self, organization_id: uuid.UUID, workout_id: uuid.UUID) -> Workout | None:
        workout = self.state.workouts.get(workout_id)
        if workout is None or workout.organization_id != organization_id:
            return None
        return workout

    async def course_views(
        self, organization_id: uuid.UUID, course_id: uuid.UUID | None = None
    ) -> list[CourseView]:
        courses = sorted(
            (
                c
                for c in self.state.courses.values()
                if c.organization_id == organization_id and course_id in (None, c.id)
            ),
            key=lambda c: (c.created_at, c.id),
        )
        return [self._view(c) for c in courses]

    def _view(self, course: Course) -> CourseView:
        curriculum = self.state.curricula.get(course.id, Curriculum())
        days = [
            DayView(
                day_offset=day.day_offset,
                is_rest=day.is_rest,
                items=[
                    ItemView(
                        item_id=item.item_id,
                        workout_id=item.workout_id,
                        position=item.position,
                        title=self.state.workouts[item.workout_id].title,
                    )
                    for item in day.items
                ],
            )
            for day in dense_curriculum(course.duration_days, curriculum.days, curriculum.items)
        ]
        return CourseView(
            id=course.id,
            organization_id=course.organization_id,
            name=course.name,
            description=course.description,
            image_url=course.image_url,
            status=course.status,
            duration_days=course.duration_days,
            preview_type=course.preview_type,
            published_at=course.published_at,
            archived_at=course.archived_at,
            curriculum_version=course.curriculum_version,
            workout_count=len(curriculum.items),
            curriculum=days,
        )


class FakeWriter(FakeReader):
    def __init__(self, state: State) -> None:
        super().__init__(state)
        self.staged: list[Envelope[Event]] = []

    def publish(
        self, payload: Event, *, aggregate_id: str | uuid.UUID, aggregate_version: int
    ) -> Envelope[Event]:
        env = envelope(payload, aggregate_id=aggregate_id, aggregate_version=aggregate_version)
        self.staged.append(env)
        return env

    def _check_slug(self, organization: Organization) -> None:
        if any(
            o.slug == organization.slug and o.id != organization.id
            for o in self.state.organizations.values()
        ):
            raise SlugTaken

    async def add_organization(self, organization: Organization) -> None:
        assert organization.id not in self.state.organizations
        self._check_slug(organization)
        self.state.organizations[organization.id] = organization

    async def lock_organization(self, organization_id: uuid.UUID) -> Organization | None:
        return self.state.organizations.get(organization_id)

    async def save_organization(self, organization: Organization) -> None:
        assert organization.id in self.state.organizations
        self._check_slug(organization)
        self.state.organizations[organization.id] = organization

    async def lock_owners(self, organization_id: uuid.UUID) -> int:
        return sum(
            1
            for m in self.state.memberships.values()
            if m.organization_id == organization_id and m.role == "owner"
        )

    async def lock_membership(self, organization_id: uuid.UUID, user_id: str) -> Membership | None:
        return self.state.memberships.get((organization_id, user_id))

    async def add_membership(self, membership: Membership) -> None:
        key = (membership.organization_id, membership.user_id)
        assert key not in self.state.memberships
        self.state.memberships[key] = membership

    async def save_membership(self, membership: Membership) -> None:
        key = (membership.organization_id, membership.user_id)
        assert self.state.memberships[key].id == membership.id
        self.state.memberships[key] = membership

    async def lock_workout(
        self, organization_id: uuid.UUID, workout_id: uuid.UUID
    ) -> Workout | None:
        return await self.workout(organization_id, workout_id)

    async def add_workout(self, workout: Workout) -> None:
        assert workout.id not in self.state.workouts
        self.state.workouts[workout.id] = workout

    async def save_workout(self, workout: Workout) -> None:
        assert workout.id in self.state.workouts
        self.state.workouts[workout.id] = workout

    async def live_workout_ids(
        self, organization_id: uuid.UUID, workout_ids: Collection[uuid.UUID]
    ) -> set[uuid.UUID]:
        return {w.id for w in await self.workouts(organization_id) if w.id in workout_ids}

    async def lock_course(self, organization_id: uuid.UUID, course_id: uuid.UUID) -> Course | None:
        course = self.state.courses.get(course_id)
        if course is None or course.organization_id != organization_id:
            return None
        return course

    async def curriculum(self, course_id: uuid.UUID) -> Curriculum:
        return self.state.curricula.get(course_id, Curriculum())

    async def add_course(self, course: Course) -> None:
        assert course.id not in self.state.courses
        self.state.courses[course.id] = course

    async def save_course(self, course: Course) -> None:
        assert course.id in self.state.courses
        self.state.courses[course.id] = course

    async def replace_day(
        self,
        course_id: uuid.UUID,
        day_offset: int,
        day: SetDay | None,
        items: Sequence[SetItem],
    ) -> None:
        curriculum = self.state.curricula.get(course_id, Curriculum())
        self.state.curricula[course_id] = curriculum.with_day(day_offset, day, items)


class FakeCatalog:
    """A :class:`~coursemesh.catalog.app.ports.CatalogStore` in memory; ``events`` holds what
    committed transactions published, in order."""

    def __init__(self) -> None:
        self.state = State()
        self.events: list[Envelope[Event]] = []
        self.commits = 0

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[FakeWriter]:
        writer = FakeWriter(copy.deepcopy(self.state))
        yield writer
        self.state = writer.state
        self.events.extend(writer.staged)
        self.commits += 1

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[FakeReader]:
        yield FakeReader(self.state)

    def snapshot(self) -> tuple[State, int]:
        """What "nothing changed" compares: the state and the number of events."""
        return copy.deepcopy(self.state), len(self.events)

    def published(self, event_type: type[E]) -> list[Envelope[E]]:
        """The committed events of one type, in order."""
        return [cast(Envelope[E], e) for e in self.events if isinstance(e.payload, event_type)]


class FakeStorefrontStore:
    """A :class:`~coursemesh.catalog.app.ports.StorefrontStore` over a dict of listings."""

    def __init__(self) -> None:
        self.listings: dict[uuid.UUID, StorefrontListing] = {}
        self.reads: list[uuid.UUID] = []

    async def listing(self, course_id: uuid.UUID) -> StorefrontListing | None:
        self.reads.append(course_id)
        return self.listings.get(course_id)


async def refused(
    catalog: FakeCatalog, status: int, code: str, call: Awaitable[Any]
) -> DomainError:
    """Await ``call``; assert it is refused with ``status`` and ``code`` and changed nothing."""
    before = catalog.snapshot()
    with pytest.raises(DomainError) as err:
        await call
    assert (err.value.status, err.value.code) == (status, code)
    assert catalog.snapshot() == before
    return err.value
