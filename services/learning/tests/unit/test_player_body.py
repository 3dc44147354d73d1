"""The player's answer rendered from pre-rendered days equals the Struct-built one, byte for
byte (unit: no I/O)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

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
    Pause,
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
    release_mode: str = "open",
    pauses: list[Pause] | None = None,
    today: date = date(2025, 3, 3),
    completed_at: dict[uuid.UUID, datetime] | None = None,
    zone: ZoneInfo = ZoneInfo("UTC"),
) -> CourseView:
    items = {i.item_id: i.workout_id for d in curriculum.days for i in d.items}
    at = completed_at or {}
    order = sorted(completed, key=str)
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
            release_mode=release_mode,
        ),
        curriculum=curriculum,
        length=curriculum_length(curriculum.days, duration_days),
        enrollment=enrollment,
        completed_item_ids=[str(i) for i in order],
        completed_workout_ids=sorted({str(items.get(i, GONE)) for i in completed}),
        completed_times=[at.get(i, datetime(2025, 3, 1, 12, tzinfo=UTC)) for i in order],
        zone=zone,
        today=today,
        pauses=pauses or [],
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
    assert answer["days"][1] == {
        "dayOffset": 1,
        "isRest": True,
        "locked": False,
        "opensOn": None,
        "items": [],
    }
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


def _pause(run: int, on: date, resumed: date | None = None) -> Pause:
    return Pause(
        run=run,
        paused_on=on,
        paused_at=datetime(on.year, on.month, on.day, 8, tzinfo=UTC),
        paused_by="user_buyer",
        resumed_on=resumed,
        resumed_at=None if resumed is None else datetime(2025, 3, 4, 8, tzinfo=UTC),
        resumed_by=None if resumed is None else "user_trainer",
        days=None if resumed is None else (resumed - on).days,
    )


def test_daily_release_renders_the_same_bytes_with_days_locked() -> None:
    rendered = CourseReadModel()
    items = [i.item_id for d in DAYS for i in d.items]
    started = msgspec.structs.replace(ENROLLED, completed_at=None)
    # Not started: every day locked, no date known.
    body = _same(_view([], release_mode="daily"), rendered)
    answer = msgspec.json.decode(body)
    assert [d["locked"] for d in answer["days"]] == [True] * 5
    assert [d["opensOn"] for d in answer["days"]] == [None] * 5
    # Started 2025-03-01, today 2025-03-03: days 0-2 open, 3 and 4 locked, items hidden.
    body = _same(_view([items[0], items[4]], enrollment=started, release_mode="daily"), rendered)
    answer = msgspec.json.decode(body)
    assert [d["locked"] for d in answer["days"]] == [False, False, False, True, True]
    assert answer["days"][3] == {
        "dayOffset": 3,
        "isRest": False,
        "locked": True,
        "opensOn": "2025-03-04",
        "items": [],
    }
    assert answer["progress"] == {"completed": 2, "total": 6}
    # Before the start date: nothing open yet; the same copy, rendered once, serves all.
    _same(_view([], enrollment=started, release_mode="daily", today=date(2025, 2, 27)), rendered)
    # Every day open.
    _same(_view(items, enrollment=started, release_mode="daily", today=date(2025, 4, 1)), rendered)
    # Unlocked by staff: like an open course.
    unlocked = msgspec.structs.replace(
        started, unlocked_at=datetime(2025, 3, 2, tzinfo=UTC), unlocked_by="user_trainer"
    )
    body = _same(_view([], enrollment=unlocked, release_mode="daily"), rendered)
    assert [d["locked"] for d in msgspec.json.decode(body)["days"]] == [False] * 5


def test_paused_and_resumed_answers_are_the_same_bytes() -> None:
    rendered = CourseReadModel()
    started = msgspec.structs.replace(ENROLLED, completed_at=None)
    # Run 1 (ENROLLED's): paused on 03-02 (day 1), still paused on 03-03 -> day 1, nothing new
    # opens and no locked day has a date.
    paused = [_pause(0, date(2025, 2, 1), date(2025, 2, 5)), _pause(1, date(2025, 3, 2))]
    body = _same(_view([], enrollment=started, release_mode="daily", pauses=paused), rendered)
    answer = msgspec.json.decode(body)
    assert answer["currentDayOffset"] == 1
    assert answer["paused"] is True
    assert answer["pausedSince"] == "2025-03-02"
    assert [d["locked"] for d in answer["days"]] == [False, False, True, True, True]
    assert {d["opensOn"] for d in answer["days"][2:]} == {None}
    assert len(answer["pauses"]) == 2  # the previous run's pause stays in the history
    # Resumed on 03-03: shifted by 1 day, so day 2 opens on 03-01 + 2 + 1 = 03-04.
    resumed = [paused[0], _pause(1, date(2025, 3, 2), date(2025, 3, 3))]
    body = _same(_view([], enrollment=started, release_mode="daily", pauses=resumed), rendered)
    answer = msgspec.json.decode(body)
    assert answer["currentDayOffset"] == 1
    assert answer["pausedDays"] == 1
    assert answer["days"][2]["opensOn"] == "2025-03-04"
    # An open course counts paused days too, and locks nothing.
    body = _same(_view([], enrollment=started, pauses=resumed), rendered)
    assert msgspec.json.decode(body)["currentDayOffset"] == 1


def test_adherence_figures_are_the_same_in_both_answers_across_zones() -> None:
    """Started Sat 03-01, today Mon 03-03 (day 2). Day 0: items 1 (03-01 12:00Z) and 2
    (03-02 03:00Z); day 1 rest; day 2: item 3 (03-03 10:00Z). Three due, three done: 100 %.
    In Los Angeles item 2 was done on 03-01 19:00 (on day 0) and item 3 on 03-03 02:00: days 0
    and 2 kept, streaks 2 and 2. In UTC item 2 is on 03-02 (day 1), late: day 0 not kept,
    streaks 1 and 1. Before the start date nothing is due: null and 0."""
    rendered = CourseReadModel()
    items = [i.item_id for d in DAYS for i in d.items]
    started = msgspec.structs.replace(ENROLLED, completed_at=None)
    at = {
        items[0]: datetime(2025, 3, 1, 12, tzinfo=UTC),
        items[1]: datetime(2025, 3, 2, 3, tzinfo=UTC),
        items[2]: datetime(2025, 3, 3, 10, tzinfo=UTC),
    }

    def figures(zone: str, today: date = date(2025, 3, 3)) -> tuple[object, ...]:
        view = _view(
            items[:3], enrollment=started, completed_at=at, zone=ZoneInfo(zone), today=today
        )
        answer = msgspec.json.decode(_same(view, rendered))
        return (answer["adherencePercent"], answer["currentStreak"], answer["longestStreak"])

    assert figures("America/Los_Angeles") == (100, 2, 2)
    assert figures("UTC") == (100, 1, 1)
    assert figures("UTC", date(2025, 2, 27)) == (None, 0, 0)
    # On 03-05 (day 4): day 3's item missed, day 4's two not done yet: 3 of 6 = 50 %; the
    # missed day 3 ends the streak (currentStreak 0), the longest stays 2.
    assert figures("America/Los_Angeles", date(2025, 3, 5)) == (50, 0, 2)
