"""Courses through the use cases, on the in-memory catalog: create, edit, the curriculum,
publish and archive, and who may do them."""

from __future__ import annotations

import uuid
from collections.abc import Coroutine
from typing import Any

from coursemesh.catalog.app import courses, organizations, workouts
from coursemesh.catalog.app.views import CourseView
from coursemesh.catalog.domain.course import CourseEdit
from coursemesh.contracts.catalog import (
    CourseArchived,
    CourseDetailsChanged,
    CoursePublished,
    CurriculumChanged,
)

from .fakes import FakeCatalog, refused

OWNER = "user_owner"


class Studio:
    """An organization with a trainer, a member and a workout library."""

    def __init__(self) -> None:
        self.catalog = FakeCatalog()

    async def setup(self) -> Studio:
        org = await organizations.create_organization(
            self.catalog, actor=OWNER, name="Move", slug="move", logo_url=None, currency="EUR"
        )
        self.org = org.id
        for user, role in (("user_t", "trainer"), ("user_m", "member")):
            await organizations.add_member(
                self.catalog,
                actor=OWNER,
                organization_id=self.org,
                user_id=user,
                role=role,  # type: ignore[arg-type]
            )
        self.a = await self.workout("A")
        self.b = await self.workout("B")
        return self

    async def workout(self, title: str) -> uuid.UUID:
        view = await workouts.create_workout(
            self.catalog,
            actor=OWNER,
            organization_id=self.org,
            title=title,
            description=None,
            duration_minutes=10,
            instructions=None,
            media_urls=[],
        )
        return view.id

    async def course(self, duration_days: int = 3) -> CourseView:
        return await courses.create_course(
            self.catalog,
            actor="user_t",
            organization_id=self.org,
            name="30-day reset",
            description=None,
            image_url=None,
            duration_days=duration_days,
            preview_type="first_day",
        )

    def set_day(
        self, course: uuid.UUID, day_offset: int, *ids: uuid.UUID, rest: bool = False
    ) -> Any:
        return courses.set_day(
            self.catalog,
            actor="user_t",
            organization_id=self.org,
            course_id=course,
            day_offset=day_offset,
            workout_ids=list(ids),
            is_rest=rest,
        )

    def publish(self, course: uuid.UUID) -> Any:
        return courses.publish_course(
            self.catalog, actor="user_t", organization_id=self.org, course_id=course
        )

    def archive(self, course: uuid.UUID) -> Any:
        return courses.archive_course(
            self.catalog, actor="user_t", organization_id=self.org, course_id=course
        )

    def edit(self, course: uuid.UUID, **fields: Any) -> Any:
        return courses.update_course(
            self.catalog,
            actor="user_t",
            organization_id=self.org,
            course_id=course,
            edit=CourseEdit(**fields),
        )

    def versions(self, course: uuid.UUID) -> list[tuple[str, int]]:
        return [
            (type(e.payload).__name__, e.aggregate_version)
            for e in self.catalog.events
            if e.aggregate_id == str(course)
        ]


async def test_a_new_course_is_a_draft_with_an_empty_dense_curriculum() -> None:
    studio = await Studio().setup()
    view = await studio.course(duration_days=3)
    assert (view.status, view.curriculum_version, view.workout_count) == ("draft", 0, 0)
    assert [(d.day_offset, d.is_rest, d.items) for d in view.curriculum] == [
        (0, False, []),
        (1, False, []),
        (2, False, []),
    ]
    (details,) = studio.catalog.published(CourseDetailsChanged)
    assert (details.aggregate_version, details.payload.status) == (1, "draft")
    listed = await courses.list_courses(studio.catalog, actor=OWNER, organization_id=studio.org)
    assert listed == [view]


async def test_a_day_keeps_the_order_and_repeats_and_each_set_day_is_a_curriculum_version() -> None:
    studio = await Studio().setup()
    course = (await studio.course()).id
    view = await studio.set_day(course, 0, studio.b, studio.a, studio.b)
    day0 = view.curriculum[0]
    assert [(i.workout_id, i.position, i.title) for i in day0.items] == [
        (studio.b, 0, "B"),
        (studio.a, 1, "A"),
        (studio.b, 2, "B"),
    ]
    assert len({i.item_id for i in day0.items}) == 3
    assert (view.curriculum_version, view.workout_count) == (1, 3)
    view = await studio.set_day(course, 1, rest=True)
    assert view.curriculum[1].is_rest
    view = await studio.set_day(course, 0)  # no workouts, not rest: the day is cleared
    assert (view.curriculum[0].items, view.curriculum_version) == ([], 3)
    changes = studio.catalog.published(CurriculumChanged)
    assert [(e.aggregate_version, e.payload.curriculum_version) for e in changes] == [
        (2, 1),
        (3, 2),
        (4, 3),
    ]
    last = changes[-1].payload
    assert isinstance(last, CurriculumChanged)
    assert [(d.day_offset, d.is_rest, len(d.items)) for d in last.days] == [
        (0, False, 0),
        (1, True, 0),
        (2, False, 0),
    ]


async def test_bad_days_are_refused_with_their_paths() -> None:
    studio = await Studio().setup()
    course = (await studio.course(duration_days=3)).id
    await refused(studio.catalog, 422, "DAY_OFFSET_OUT_OF_RANGE", studio.set_day(course, 3))
    await refused(
        studio.catalog,
        422,
        "REST_DAY_WITH_WORKOUTS",
        studio.set_day(course, 0, studio.a, rest=True),
    )
    deleted = await studio.workout("Deleted")
    await workouts.delete_workout(
        studio.catalog, actor=OWNER, organization_id=studio.org, workout_id=deleted
    )
    other = await organizations.create_organization(
        studio.catalog, actor=OWNER, name="Other", slug="other", logo_url=None, currency="EUR"
    )
    foreign = (
        await workouts.create_workout(
            studio.catalog,
            actor=OWNER,
            organization_id=other.id,
            title="Foreign",
            description=None,
            duration_minutes=None,
            instructions=None,
            media_urls=[],
        )
    ).id
    err = await refused(
        studio.catalog,
        422,
        "UNKNOWN_WORKOUT",
        studio.set_day(course, 0, studio.a, foreign, deleted, uuid.uuid4()),
    )
    assert [e["path"] for e in err.extra["errors"]] == [
        "$.workoutIds[1]",
        "$.workoutIds[2]",
        "$.workoutIds[3]",
    ]


async def test_an_edit_changes_only_what_was_sent_and_a_new_duration_is_a_curriculum_change() -> (
    None
):
    studio = await Studio().setup()
    course = (await studio.course(duration_days=3)).id
    await studio.set_day(course, 1, studio.a)
    view = await studio.edit(course, description="Gentle.")
    assert (view.name, view.description, view.duration_days) == ("30-day reset", "Gentle.", 3)
    err = await refused(
        studio.catalog, 409, "DURATION_BELOW_CURRICULUM", studio.edit(course, duration_days=1)
    )
    assert err.extra["errors"][0]["path"] == "$.durationDays"
    view = await studio.edit(course, duration_days=2, preview_type="all_titles")
    assert (view.duration_days, view.preview_type, view.curriculum_version) == (2, "all_titles", 2)
    assert len(view.curriculum) == 2
    assert studio.versions(course) == [
        ("CourseDetailsChanged", 1),
        ("CurriculumChanged", 2),
        ("CourseDetailsChanged", 3),
        ("CourseDetailsChanged", 4),
        ("CurriculumChanged", 5),
    ]


async def test_publish_and_archive_follow_the_lifecycle() -> None:
    studio = await Studio().setup()
    course = (await studio.course()).id
    await studio.set_day(course, 0, rest=True)
    await refused(studio.catalog, 409, "CURRICULUM_EMPTY", studio.publish(course))
    await studio.set_day(course, 1, studio.a)
    view = await studio.publish(course)
    assert (view.status, view.archived_at) == ("published", None)
    assert view.published_at is not None
    await refused(studio.catalog, 409, "COURSE_ALREADY_PUBLISHED", studio.publish(course))
    view = await studio.archive(course)
    assert view.status == "archived"
    assert view.archived_at is not None
    await refused(studio.catalog, 409, "COURSE_ALREADY_ARCHIVED", studio.archive(course))
    view = await studio.publish(course)  # archived -> published again
    assert (view.status, view.archived_at) == ("published", None)
    published = studio.catalog.published(CoursePublished)
    assert [(e.aggregate_version, e.payload.curriculum_version) for e in published] == [
        (4, 2),
        (6, 2),
    ]
    (archived,) = studio.catalog.published(CourseArchived)
    assert archived.aggregate_version == 5
    draft = (await studio.course()).id
    await refused(studio.catalog, 409, "CURRICULUM_EMPTY", studio.publish(draft))
    assert (await studio.archive(draft)).status == "archived"


async def test_courses_are_staff_only_and_another_organizations_course_is_not_found() -> None:
    studio = await Studio().setup()
    course = (await studio.course()).id

    def calls(actor: str) -> tuple[Coroutine[Any, Any, object], ...]:
        return (
            courses.list_courses(studio.catalog, actor=actor, organization_id=studio.org),
            courses.get_course(
                studio.catalog, actor=actor, organization_id=studio.org, course_id=course
            ),
            courses.publish_course(
                studio.catalog, actor=actor, organization_id=studio.org, course_id=course
            ),
            courses.create_course(
                studio.catalog,
                actor=actor,
                organization_id=studio.org,
                name="X",
                description=None,
                image_url=None,
                duration_days=1,
                preview_type="none",
            ),
        )

    for call in calls("user_m"):
        await refused(studio.catalog, 403, "STAFF_ROLE_REQUIRED", call)
    for call in calls("outsider"):
        await refused(studio.catalog, 404, "ORGANIZATION_NOT_FOUND", call)
    other = await organizations.create_organization(
        studio.catalog, actor="user_t", name="Other", slug="other", logo_url=None, currency="EUR"
    )
    for call in (
        courses.get_course(
            studio.catalog, actor="user_t", organization_id=other.id, course_id=course
        ),
        courses.archive_course(
            studio.catalog, actor="user_t", organization_id=other.id, course_id=course
        ),
        studio.set_day(uuid.uuid4(), 0),
    ):
        await refused(studio.catalog, 404, "COURSE_NOT_FOUND", call)
