"""The use cases against in-memory fakes of their ports: load, decide, persist."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import msgspec
import pytest

from coursemesh.chassis.errors import DomainError
from coursemesh.contracts.customgen import (
    AudioRegenerated,
    CustomCourseReady,
    CustomCourseRequested,
    CustomCourseUpdated,
    RegenRequestDecided,
)
from coursemesh.contracts.types import RegenDecision
from coursemesh.customgen.app import queries, regen
from coursemesh.customgen.app.course_data import validate_data
from coursemesh.customgen.app.generation import GenerationRunner
from coursemesh.customgen.app.submit import submit_custom_course
from coursemesh.customgen.domain.course import (
    RetryPolicy,
    StoredCourse,
    audio_object_key,
    calculate_checksum,
    is_content_addressed,
)
from coursemesh.customgen.domain.intake import Intake
from coursemesh.customgen.domain.purchase import Purchase

from .fakes import (
    FakeAudioStore,
    FakeCourseStore,
    FakeEncoder,
    FakeHandshakeStore,
    FakeJobStore,
    FakeScriptWriter,
    FakeSpeech,
    State,
)

BUYER, STAFF, STRANGER = "user_buyer", "user_staff", "user_stranger"
ORG = uuid.UUID("0195f0a0-0000-7000-8000-0000000000aa")
INTAKE = Intake(goal="Sleep deeply", preferred_name="Sam", session_count=2, session_length="brief")


def store_with_purchase() -> tuple[FakeCourseStore, uuid.UUID]:
    purchase_id = uuid.uuid4()
    state = State()
    state.purchases[purchase_id] = Purchase(
        id=purchase_id,
        user_id=BUYER,
        organization_id=ORG,
        course_code="X99ENB",
        offer_title="Restful Sleep",
        status="awaiting_intake",
        custom_course_id=None,
    )
    state.staff.add((ORG, STAFF))
    return FakeCourseStore(state), purchase_id


async def refused(code: str, call: Any) -> DomainError:
    with pytest.raises(DomainError) as error:
        await call
    assert error.value.code == code
    return error.value


# --- submit ----------------------------------------------------------------------------------


async def test_submitting_an_intake_creates_the_course_its_job_and_its_event() -> None:
    store, purchase_id = store_with_purchase()
    woken: list[bool] = []
    course_id = await submit_custom_course(
        store,
        user_id=BUYER,
        purchase_id=purchase_id,
        intake=INTAKE,
        script_writer="template",
        wake_worker=lambda: woken.append(True),
    )
    state = store.state
    course = state.courses[course_id]
    assert (course.status, course.version, course.user_id) == ("generating", 1, BUYER)
    assert course.data["metadata"]["title"] == "Restful Sleep for Sam"
    assert course.checksum == calculate_checksum(course.data).checksum
    assert state.purchases[purchase_id].status == "submitted"
    assert state.purchases[purchase_id].custom_course_id == course_id
    (job,) = state.jobs.values()
    assert (job.kind, job.step, job.status) == ("generate", "write_scripts", "pending")
    (event,) = state.events
    assert isinstance(event.payload, CustomCourseRequested)
    assert (event.aggregate_id, event.aggregate_version) == (str(course_id), 1)
    assert woken == [True]


@pytest.mark.parametrize(
    ("user_id", "used", "intake", "code"),
    [
        (STRANGER, False, INTAKE, "PURCHASE_NOT_FOUND"),
        (BUYER, True, INTAKE, "PURCHASE_ALREADY_USED"),
        (BUYER, False, Intake(goal="   ", preferred_name="Sam"), "INTAKE_INVALID"),
    ],
)
async def test_a_refused_submission_changes_nothing(
    user_id: str, used: bool, intake: Intake, code: str
) -> None:
    store, purchase_id = store_with_purchase()
    if used:
        await submit_custom_course(
            store, user_id=BUYER, purchase_id=purchase_id, intake=INTAKE, script_writer="template"
        )
    before = copy.deepcopy(store.state)
    woken: list[bool] = []
    await refused(
        code,
        submit_custom_course(
            store,
            user_id=user_id,
            purchase_id=purchase_id,
            intake=intake,
            script_writer="template",
            wake_worker=lambda: woken.append(True),
        ),
    )
    assert store.state == before
    assert woken == []


# --- generation ------------------------------------------------------------------------------


def runner(store: FakeCourseStore, **overrides: Any) -> GenerationRunner:
    values: dict[str, Any] = {
        "writer": FakeScriptWriter(),
        "speech": FakeSpeech(),
        "encoder": FakeEncoder(),
        "store": FakeAudioStore(),
        "retry": RetryPolicy(max_attempts=3, base_seconds=1.0, max_seconds=4.0),
        **overrides,
    }
    return GenerationRunner(FakeJobStore(store), **values)


async def drain(jobs: GenerationRunner) -> int:
    steps = 0
    while await jobs.run_once():
        steps += 1
    return steps


async def generated_course() -> tuple[FakeCourseStore, uuid.UUID, GenerationRunner]:
    store, purchase_id = store_with_purchase()
    course_id = await submit_custom_course(
        store, user_id=BUYER, purchase_id=purchase_id, intake=INTAKE, script_writer="template"
    )
    jobs = runner(store)
    # write_scripts, synthesize per session, the synthesize that finds none left, finalize
    assert await drain(jobs) == 1 + 2 + 1 + 1
    return store, course_id, jobs


async def test_generation_writes_scripts_speaks_each_session_and_announces_the_course() -> None:
    store, course_id, jobs = await generated_course()
    course = store.state.courses[course_id]
    assert (course.status, course.version) == ("ready", 2)
    validate_data(course.data)
    audio = course.data["audio_files"]
    assert [a["session"] for a in audio] == [1, 2]
    objects = jobs.store.objects  # type: ignore[attr-defined]
    assert sorted(objects) == sorted(a["object_key"] for a in audio)
    assert course.checksum == calculate_checksum(course.data).checksum
    assert len(jobs.speech.calls) == 2  # type: ignore[attr-defined]
    ready = [e for e in store.state.events if isinstance(e.payload, CustomCourseReady)]
    assert [(e.payload.checksum, e.aggregate_version) for e in ready] == [(course.checksum, 2)]
    (job,) = store.state.jobs.values()
    assert job.status == "done"


async def test_a_failing_step_is_retried_then_the_job_fails_at_that_step() -> None:
    store, purchase_id = store_with_purchase()
    course_id = await submit_custom_course(
        store, user_id=BUYER, purchase_id=purchase_id, intake=INTAKE, script_writer="template"
    )
    speech = FakeSpeech(failures=10**6)
    jobs = runner(store, speech=speech)
    await jobs.run_once()  # write_scripts
    await jobs.run_once()
    (job,) = store.state.jobs.values()
    assert (job.step, job.attempts, job.status, job.delay_seconds) == (
        "synthesize",
        1,
        "pending",
        1.0,
    )
    assert job.last_error == "SpeechError: TTS provider unavailable"
    await drain(jobs)
    (job,) = store.state.jobs.values()
    assert (job.status, job.failed_step, job.attempts) == ("failed", "synthesize", 3)
    course = store.state.courses[course_id]
    assert course.status == "failed"
    assert course.data["audio_files"] == []
    assert not [e for e in store.state.events if isinstance(e.payload, CustomCourseReady)]


# --- regen requests --------------------------------------------------------------------------


async def test_an_approved_regen_swaps_one_file_and_announces_it() -> None:
    store, course_id, jobs = await generated_course()
    before = store.state.courses[course_id]
    target = before.data["audio_files"][1]
    created = await regen.create_regen_request(
        store,
        user_id=BUYER,
        course_id=course_id,
        audio_id=uuid.UUID(target["id"]),
        reason="The voice sounded rushed",
        daily_limit=3,
    )
    assert created.status == "open"
    approved = await regen.decide_on_regen_request(
        store,
        organization_id=ORG,
        request_id=created.id,
        staff_user_id=STAFF,
        approve=True,
        note=None,
    )
    assert (approved.status, approved.decided_by) == ("approved", STAFF)
    assert await drain(jobs) == 3  # synthesize, swap, delete_old
    after = store.state.courses[course_id]
    assert after.data["audio_files"][0] == before.data["audio_files"][0]
    assert after.data["audio_files"][1]["generation"] == 2
    assert after.checksum == calculate_checksum(after.data).checksum != before.checksum
    # The same script speaks the same bytes: the content-addressed object is kept, not deleted.
    assert after.data["audio_files"][1]["object_key"] == target["object_key"]
    assert jobs.store.deleted == []  # type: ignore[attr-defined]
    assert store.state.regen_requests[created.id].status == "completed"
    decided = [e for e in store.state.events if isinstance(e.payload, RegenRequestDecided)]
    updated = [e for e in store.state.events if isinstance(e.payload, CustomCourseUpdated)]
    regenerated = [e for e in store.state.events if isinstance(e.payload, AudioRegenerated)]
    # One counter per course: the decision, then the swap's two events.
    assert [e.aggregate_version for e in decided] == [before.version + 1]
    assert [e.aggregate_version for e in updated] == [before.version + 2]
    assert [e.aggregate_version for e in regenerated] == [before.version + 3]
    assert after.version == before.version + 3


async def approve_regen_of(store: FakeCourseStore, course_id: uuid.UUID, audio_id: str) -> None:
    created = await regen.create_regen_request(
        store,
        user_id=BUYER,
        course_id=course_id,
        audio_id=uuid.UUID(audio_id),
        reason="Again please",
        daily_limit=3,
    )
    await regen.decide_on_regen_request(
        store,
        organization_id=ORG,
        request_id=created.id,
        staff_user_id=STAFF,
        approve=True,
        note=None,
    )


async def test_a_regeneration_with_identical_bytes_uploads_nothing() -> None:
    store, course_id, jobs = await generated_course()
    audio_store: FakeAudioStore = jobs.store  # type: ignore[assignment]
    assert audio_store.uploads == 2
    target = store.state.courses[course_id].data["audio_files"][0]
    await approve_regen_of(store, course_id, target["id"])
    await drain(jobs)
    after = store.state.courses[course_id].data["audio_files"][0]
    assert audio_store.uploads == 2
    assert (after["generation"], after["sha256"]) == (2, target["sha256"])
    assert audio_store.deleted == []


async def test_a_regeneration_deletes_the_legacy_per_course_object_it_replaces() -> None:
    store, course_id, jobs = await generated_course()
    audio_store: FakeAudioStore = jobs.store  # type: ignore[assignment]
    course = store.state.courses[course_id]
    legacy = dict(course.data["audio_files"][1])
    del legacy["sha256"], legacy["content_type"]
    legacy["object_key"] = audio_object_key(course_id, legacy["id"], 1)
    audio_store.objects[legacy["object_key"]] = b"old bytes"
    course.data["audio_files"][1] = legacy
    await approve_regen_of(store, course_id, legacy["id"])
    await drain(jobs)
    after = store.state.courses[course_id].data["audio_files"][1]
    assert is_content_addressed(after["object_key"])
    assert audio_store.deleted == [legacy["object_key"]]


async def test_a_second_request_for_the_same_file_is_refused_while_one_is_open() -> None:
    store, course_id, _ = await generated_course()
    audio_id = uuid.UUID(store.state.courses[course_id].data["audio_files"][0]["id"])
    ask: dict[str, Any] = {
        "user_id": BUYER,
        "course_id": course_id,
        "audio_id": audio_id,
        "reason": "again",
    }
    await regen.create_regen_request(store, daily_limit=3, **ask)
    before = copy.deepcopy(store.state)
    await refused("REGEN_ALREADY_OPEN", regen.create_regen_request(store, daily_limit=3, **ask))
    assert store.state == before


async def test_the_daily_limit_refuses_the_next_request() -> None:
    store, course_id, _ = await generated_course()
    audio = store.state.courses[course_id].data["audio_files"]
    for entry in audio:
        await regen.create_regen_request(
            store,
            user_id=BUYER,
            course_id=course_id,
            audio_id=uuid.UUID(entry["id"]),
            reason="again",
            daily_limit=2,
        )
    await refused(
        "REGEN_DAILY_LIMIT",
        regen.create_regen_request(
            store,
            user_id=BUYER,
            course_id=course_id,
            audio_id=uuid.UUID(audio[0]["id"]),
            reason="again",
            daily_limit=2,
        ),
    )


@pytest.mark.parametrize(
    ("approve", "decision", "note", "jobs_started"),
    [(True, "approved", None, 1), (False, "rejected", "It sounds right to us", 0)],
)
async def test_a_decision_records_its_event_in_the_same_transaction(
    approve: bool, decision: RegenDecision, note: str | None, jobs_started: int
) -> None:
    store, course_id, _ = await generated_course()
    course = store.state.courses[course_id]
    audio_id = uuid.UUID(course.data["audio_files"][0]["id"])
    created = await regen.create_regen_request(
        store, user_id=BUYER, course_id=course_id, audio_id=audio_id, reason="r", daily_limit=3
    )
    events_before, jobs_before = len(store.state.events), len(store.state.jobs)
    decided = await regen.decide_on_regen_request(
        store,
        organization_id=ORG,
        request_id=created.id,
        staff_user_id=STAFF,
        approve=approve,
        note=note,
    )
    assert decided.status == decision
    (event,) = store.state.events[events_before:]
    assert event.payload == RegenRequestDecided(
        regen_request_id=created.id,
        custom_course_id=course_id,
        organization_id=ORG,
        user_id=BUYER,
        audio_id=audio_id,
        decision=decision,
        decided_by=STAFF,
        note=note,
    )
    assert event.type == "customgen.regen_request.decided.v1"
    # An event of the course: its counter moves on by one, and the event carries the new value.
    assert (event.aggregate_id, event.aggregate_version) == (str(course_id), course.version + 1)
    assert store.state.courses[course_id].version == course.version + 1
    assert len(store.state.jobs) - jobs_before == jobs_started


async def test_a_refused_decision_publishes_nothing() -> None:
    store, course_id, _ = await generated_course()
    audio_id = uuid.UUID(store.state.courses[course_id].data["audio_files"][0]["id"])
    created = await regen.create_regen_request(
        store, user_id=BUYER, course_id=course_id, audio_id=audio_id, reason="r", daily_limit=3
    )
    decide: dict[str, Any] = {"organization_id": ORG, "request_id": created.id, "note": None}
    await regen.decide_on_regen_request(store, staff_user_id=STAFF, approve=False, **decide)
    before = copy.deepcopy(store.state)
    await refused(
        "REGEN_ALREADY_DECIDED",
        regen.decide_on_regen_request(store, staff_user_id=STAFF, approve=True, **decide),
    )
    await refused(
        "NOT_FOUND",
        regen.decide_on_regen_request(store, staff_user_id=STRANGER, approve=True, **decide),
    )
    assert store.state == before


async def test_a_decided_request_cannot_be_decided_again() -> None:
    store, course_id, _ = await generated_course()
    audio_id = uuid.UUID(store.state.courses[course_id].data["audio_files"][0]["id"])
    created = await regen.create_regen_request(
        store, user_id=BUYER, course_id=course_id, audio_id=audio_id, reason="r", daily_limit=3
    )
    decide: dict[str, Any] = {
        "organization_id": ORG,
        "request_id": created.id,
        "staff_user_id": STAFF,
    }
    await regen.decide_on_regen_request(store, approve=False, note="fine as is", **decide)
    jobs_before = dict(store.state.jobs)
    await refused(
        "REGEN_ALREADY_DECIDED",
        regen.decide_on_regen_request(store, approve=True, note=None, **decide),
    )
    assert store.state.jobs == jobs_before
    await refused(
        "REGEN_REQUEST_NOT_FOUND",
        regen.decide_on_regen_request(
            store, approve=True, note=None, **{**decide, "request_id": uuid.uuid4()}
        ),
    )


# --- staff -----------------------------------------------------------------------------------


async def test_anyone_but_staff_gets_not_found_on_the_organization_routes() -> None:
    store, course_id, _ = await generated_course()
    audio_id = uuid.UUID(store.state.courses[course_id].data["audio_files"][0]["id"])
    created = await regen.create_regen_request(
        store, user_id=BUYER, course_id=course_id, audio_id=audio_id, reason="r", daily_limit=3
    )
    other_org = uuid.uuid4()
    store.state.staff.add((other_org, STRANGER))  # staff, but of another organization
    before = copy.deepcopy(store.state)
    for user in (BUYER, STRANGER):
        error = await refused(
            "NOT_FOUND",
            queries.list_org_courses(store, staff_user_id=user, organization_id=ORG),
        )
        assert error.status == 404
        await refused(
            "NOT_FOUND",
            regen.list_org_regen_requests(
                store, staff_user_id=user, organization_id=ORG, status=None
            ),
        )
        await refused(
            "NOT_FOUND",
            regen.decide_on_regen_request(
                store,
                organization_id=ORG,
                request_id=created.id,
                staff_user_id=user,
                approve=True,
                note=None,
            ),
        )
    assert store.state == before
    listed = await queries.list_org_courses(store, staff_user_id=STAFF, organization_id=ORG)
    assert [c.id for c in listed] == [course_id]
    opened = await regen.list_org_regen_requests(
        store, staff_user_id=STAFF, organization_id=ORG, status="open"
    )
    assert [r.id for r in opened] == [created.id]


# --- reads -----------------------------------------------------------------------------------


async def test_a_course_reads_with_its_progress_and_audio_urls() -> None:
    store, course_id, jobs = await generated_course()
    detail = await queries.get_course(store, jobs.store, BUYER, course_id)
    assert detail.progress is not None
    assert (detail.progress.step, detail.progress.sessions_done) == ("done", 2)
    data = msgspec.json.decode(detail.data)
    assert set(detail.audio_urls) == {a["id"] for a in data["audio_files"]}
    await refused(
        "CUSTOM_COURSE_NOT_FOUND", queries.get_course(store, jobs.store, STRANGER, course_id)
    )
    await refused(
        "CUSTOM_COURSE_NOT_FOUND", regen.list_my_regen_requests(store, STRANGER, course_id)
    )


def stored(user_id: str, title: str, status: str = "ready") -> StoredCourse:
    data = {"schema_version": 1, "metadata": {"title": title}}
    summed = calculate_checksum(data)
    return StoredCourse(
        id=uuid.uuid4(),
        user_id=user_id,
        organization_id=ORG,
        course_code="X99ENB",
        status=status,  # type: ignore[arg-type]
        data=data,
        checksum=summed.checksum,
        file_size_bytes=summed.size_bytes,
        version=2,
    )


class Held(msgspec.Struct, frozen=True):
    id: uuid.UUID
    checksum: str


async def test_the_handshake_reads_checksums_then_only_the_courses_to_send() -> None:
    same, edited, dropped = stored(BUYER, "a"), stored(BUYER, "b"), stored(BUYER, "c")
    theirs, generating = stored(STRANGER, "d"), stored(BUYER, "e", status="generating")
    handshakes = FakeHandshakeStore([same, edited, dropped, theirs, generating])
    held = [
        Held(same.id, same.checksum),
        Held(edited.id, "f" * 32),
        Held(theirs.id, theirs.checksum),
        Held(generating.id, generating.checksum),
    ]
    result = await queries.handshake(handshakes, BUYER, held, max_courses=10)
    assert [c.id for c in result.changed] == [edited.id]
    assert [c.id for c in result.missing] == [dropped.id]
    assert result.removed == [theirs.id, generating.id]
    assert result.unchanged_count == 1
    assert handshakes.statements == 2

    current = FakeHandshakeStore([same])
    result = await queries.handshake(current, BUYER, [Held(same.id, same.checksum)], 10)
    assert (result.changed, result.missing, result.unchanged_count) == ([], [], 1)
    assert current.statements == 1  # nothing to send: the checksums alone

    await refused("HANDSHAKE_TOO_LARGE", queries.handshake(current, BUYER, held, max_courses=3))
    assert current.statements == 1
