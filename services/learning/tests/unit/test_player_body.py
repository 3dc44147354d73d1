"""The player's answer rendered from pre-rendered days equals the Struct-built one, byte for
byte (unit: no I/O)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import msgspec
from litestar.serialization import encode_json

from coursemesh.learning.app.courses import CourseReadModel
from coursemesh.learning.domain.model import (
    CourseDetails,
    Curriculum,
    Day,
    Enrollment,
    Entitlement,
    Item,
    Workout,
)
from coursemesh.learning.domain.player import CourseView, curriculum_length
from coursemesh.learning.http.player_body import (
    RenderedDays,
    player_course,
    render_days,
    render_player_course,
)
from coursemesh.learning.http.schemas import PlayerCourse, PlayerCourseHead, PlayerCourseTail

COURSE = uuid.UUID("0195f0a0-0000-7000-8000-000000000002")
ORG = uuid.UUID("0195f0a0-0000-7000-8000-000000000001")
A, B, GONE = (uuid.UUID(f"0195f0a0-0000-7000-8000-00000000010{n}") for n in range(3))


def _item(n: int, workout: uuid.UUID, position: int) -> Item:
    return Item(
        item_id=uuid.UUID(int=(n * 0x9E3779B97F4A7C15) % 2**128),
        workout_id=workout,
        position=position,
    )


def _workout(workout_id: uuid.UUID, title: str) -> Workout:
    return Workout(
        workout_id=workout_id,
        title=title,
        description=None,
        duration_minutes=20,
        instructions="Breathe.",
        media_urls=[],
    )


# Day 0: A, B; day 1: rest; day 2: A again; day 3: GONE (no workout row); day 4: B, A.
DAYS = [
    Day(day_offset=0, is_rest=False, items=[_item(1, A, 0), _item(2, B, 1)]),
    Day(day_offset=1, is_rest=True, items=[]),
    Day(day_offset=2, is_rest=False, items=[_item(3, A, 0)]),
    Day(day_offset=3, is_rest=False, items=[_item(4, GONE, 0)]),
    Day(day_offset=4, is_rest=False, items=[_item(5, B, 0), _item(6, A, 1)]),
]
CURRICULUM = Curriculum(
    days=DAYS,
    workouts={
        # A title that looks like the flag the renderer looks for, quotes and non-ASCII.
        A: _workout(A, 'Mobility "completed":false flow'),
        B: _workout(B, "Core \u2013 ünd \\ Co"),
    },
)


def _view(
    completed: list[uuid.UUID],
    *,
    enrollment: Enrollment | None = None,
    curriculum: Curriculum = CURRICULUM,
    duration_days: int | None = 5,
    certificate_id: uuid.UUID | None = None,
) -> CourseView:
    items = {i.item_id: i.workout_id for d in curriculum.days for i in d.items}
    return CourseView(
        entitlement=Entitlement(
            entitlement_id=uuid.UUID(int=7),
            user_id="user_buyer",
            course_id=COURSE,
            organization_id=ORG,
            status="active",
            access_revoked_at=None,
        ),
        course=CourseDetails(
            course_id=COURSE,
            organization_id=ORG,
            name="30-day reset",
            image_url=None,
            duration_days=duration_days,
            status="published",
            curriculum_version=3,
        ),
        curriculum=curriculum,
        length=curriculum_length(curriculum.days, duration_days),
        enrollment=enrollment,
        completed_item_ids=sorted(str(i) for i in completed),
        completed_workout_ids=sorted({str(items.get(i, GONE)) for i in completed}),
        today=date(2025, 3, 3),
        certificate_id=certificate_id,
    )


def _same(view: CourseView, rendered: CourseReadModel) -> bytes:
    plain = encode_json(player_course(view))  # what Litestar sent for the returned Struct
    fast = render_player_course(view, rendered)
    assert fast == plain
    msgspec.json.decode(fast, type=PlayerCourse)  # and it is the documented shape
    return fast


ENROLLED = Enrollment(
    entitlement_id=uuid.UUID(int=7),
    start_date=date(2025, 3, 1),
    completed_at=datetime(2025, 3, 2, 9, 30, tzinfo=UTC),
    restart_count=1,
    last_activity_at=datetime(2025, 3, 2, 9, 30, 0, 123456, tzinfo=UTC),
    version=4,
)


def test_the_split_answer_has_the_documented_fields_in_order() -> None:
    def names(struct: type[msgspec.Struct]) -> list[str]:
        return [f.encode_name for f in msgspec.structs.fields(struct)]

    assert [*names(PlayerCourseHead), "days", *names(PlayerCourseTail)] == names(PlayerCourse)


def test_fast_and_plain_answers_are_the_same_bytes() -> None:
    rendered = CourseReadModel()
    items = [i.item_id for d in DAYS for i in d.items]
    _same(_view([]), rendered)  # nothing completed, not started
    # The repeated workout's second occurrence, the last item, and one that left the curriculum
    # (still counted in the progress and the ids, as the plain answer does).
    body = _same(_view([items[2], items[-1], uuid.UUID(int=99)], enrollment=ENROLLED), rendered)
    answer = msgspec.json.decode(body)
    assert [i["completed"] for d in answer["days"] for i in d["items"]] == [
        False,
        False,
        True,
        False,
        False,
        True,
    ]
    assert answer["days"][3]["items"][0]["workout"] is None  # GONE has no workout row
    assert answer["days"][1] == {"dayOffset": 1, "isRest": True, "items": []}
    _same(_view(items, enrollment=ENROLLED), rendered)  # everything completed


def test_the_certificate_id_follows_the_shared_days_in_both_answers() -> None:
    rendered = CourseReadModel()
    items = [i.item_id for d in DAYS for i in d.items]
    certificate_id = uuid.UUID("0195f0a0-0000-4000-8000-0000000000ce")
    before = msgspec.json.decode(_same(_view(items[:2], enrollment=ENROLLED), rendered))
    done = _view(items, enrollment=ENROLLED, certificate_id=certificate_id)
    after = msgspec.json.decode(_same(done, rendered))
    assert before["certificateId"] is None
    assert after["certificateId"] == str(certificate_id)
    assert list(after)[-1] == "certificateId"
    assert (
        after["days"]
        == msgspec.json.decode(_same(_view(items, enrollment=ENROLLED), rendered))["days"]
    )  # the same shared days with or without a certificate


def test_a_course_without_a_curriculum_renders_empty_days() -> None:
    rendered = CourseReadModel()
    empty = Curriculum(days=[], workouts={})
    body = _same(_view([], curriculum=empty, duration_days=3), rendered)
    assert [d["items"] for d in msgspec.json.decode(body)["days"]] == [[], [], []]
    _same(_view([], curriculum=empty, duration_days=None), rendered)


def _days(
    model: CourseReadModel, course: uuid.UUID, curriculum: Curriculum, length: int
) -> RenderedDays:
    return model.rendered(course, curriculum, length, render_days)


def test_days_are_rendered_once_per_curriculum_copy_and_length() -> None:
    rendered = CourseReadModel()
    first = _days(rendered, COURSE, CURRICULUM, 5)
    assert _days(rendered, COURSE, CURRICULUM, 5) is first
    # A new copy (the reader makes one when the curriculum or a workout changes) is rendered
    # anew, even when equal; so is another length.
    copy = Curriculum(days=list(DAYS), workouts=dict(CURRICULUM.workouts))
    second = _days(rendered, COURSE, copy, 5)
    assert second is not first
    assert second == first
    assert _days(rendered, COURSE, copy, 6) is not second
    retitled = Curriculum(days=DAYS, workouts={**CURRICULUM.workouts, B: _workout(B, "Core 2")})
    assert b"Core 2" in _days(rendered, COURSE, retitled, 5).body


def test_only_the_most_recently_used_courses_stay_rendered() -> None:
    rendered = CourseReadModel(max_courses=2)
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    kept = {x: _days(rendered, x, CURRICULUM, 5) for x in (a, b)}
    _days(rendered, a, CURRICULUM, 5)  # a is now the most recent
    _days(rendered, c, CURRICULUM, 5)
    assert _days(rendered, a, CURRICULUM, 5) is kept[a]
    assert _days(rendered, b, CURRICULUM, 5) is not kept[b]  # evicted, rendered again
