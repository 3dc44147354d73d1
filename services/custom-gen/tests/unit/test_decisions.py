"""The domain's decisions: each returns an explicit outcome, decided without any I/O."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest

from coursemesh.chassis.errors import BadRequest, Conflict, NotFound, TooManyRequests
from coursemesh.customgen.domain.course import (
    AudioEntry,
    GiveUp,
    RetryLater,
    RetryPolicy,
    StoredCourse,
    append_audio,
    initial_data,
)
from coursemesh.customgen.domain.errors import PayloadTooLarge
from coursemesh.customgen.domain.handshake import check_handshake_size, diff_handshake
from coursemesh.customgen.domain.intake import Intake
from coursemesh.customgen.domain.purchase import Purchase, decide_submission, submission_refusal
from coursemesh.customgen.domain.regen import (
    accept_regen_request,
    decide_regen_request,
    decision_refusal,
    regen_refusal,
)

ORG = uuid.uuid4()
INTAKE = Intake(goal="Sleep deeply", preferred_name="Sam")


def purchase(status: str = "awaiting_intake", user_id: str = "u1") -> Purchase:
    return Purchase(
        id=uuid.uuid4(),
        user_id=user_id,
        organization_id=ORG,
        course_code="X99ENB",
        offer_title="Restful Sleep",
        status=status,  # type: ignore[arg-type]
        custom_course_id=None if status == "awaiting_intake" else uuid.uuid4(),
    )


# --- submission ------------------------------------------------------------------------------


def test_an_unused_purchase_of_the_buyer_is_accepted() -> None:
    assert decide_submission(purchase(), "u1", INTAKE) == "accepted"


def test_a_missing_purchase_and_someone_elses_are_the_same_refusal() -> None:
    assert decide_submission(None, "u1", INTAKE) == "purchase_not_found"
    assert decide_submission(purchase(user_id="u2"), "u1", INTAKE) == "purchase_not_found"
    refusal = submission_refusal("purchase_not_found", None)
    assert isinstance(refusal, NotFound)
    assert refusal.code == "PURCHASE_NOT_FOUND"


def test_a_used_purchase_is_refused_with_its_course() -> None:
    used = purchase(status="submitted")
    assert decide_submission(used, "u1", INTAKE) == "purchase_already_used"
    refusal = submission_refusal("purchase_already_used", used)
    assert isinstance(refusal, Conflict)
    assert refusal.code == "PURCHASE_ALREADY_USED"
    assert refusal.extra == {"customCourseId": str(used.custom_course_id)}


def test_a_blank_intake_is_refused_before_anything_else() -> None:
    blank = Intake(goal="   ", preferred_name=" ").normalised()
    assert decide_submission(None, "u1", blank) == "intake_invalid"
    refusal = submission_refusal("intake_invalid", None)
    assert isinstance(refusal, BadRequest)
    assert refusal.code == "INTAKE_INVALID"


# --- regen requests --------------------------------------------------------------------------


def course_with_audio(status: str = "ready") -> tuple[StoredCourse, uuid.UUID]:
    audio_id = uuid.uuid4()
    data = initial_data(
        course_code="X99ENB", title="T", description="D", intake=INTAKE, script_writer="template"
    )
    entry = AudioEntry(
        id=str(audio_id),
        session=1,
        title="S1",
        object_key="k",
        url=None,
        checksum="0" * 32,
        duration_ms=1,
        size_bytes=1,
        format="mp3",
        generation=1,
        created_at="2025-03-01T09:30:00Z",
    )
    with_audio = append_audio(data, entry)
    assert with_audio is not None
    course = StoredCourse(
        id=uuid.uuid4(),
        user_id="u1",
        organization_id=ORG,
        course_code="X99ENB",
        status=status,  # type: ignore[arg-type]
        data=with_audio,
        checksum="0" * 32,
        file_size_bytes=1,
        version=2,
    )
    return course, audio_id


def test_a_regen_request_for_an_audio_file_of_a_ready_course_is_accepted() -> None:
    course, audio_id = course_with_audio()
    outcome = accept_regen_request(course, audio_id, requests_last_24h=2, daily_limit=3)
    assert outcome == "accepted"


@pytest.mark.parametrize(
    ("case", "outcome", "error", "code"),
    [
        ("missing", "course_not_found", NotFound, "CUSTOM_COURSE_NOT_FOUND"),
        ("generating", "course_not_ready", Conflict, "COURSE_NOT_READY"),
        ("other-audio", "audio_not_found", NotFound, "AUDIO_NOT_FOUND"),
        ("limit", "daily_limit_reached", TooManyRequests, "REGEN_DAILY_LIMIT"),
    ],
)
def test_regen_requests_are_refused_in_order(
    case: str, outcome: str, error: type[Exception], code: str
) -> None:
    course, audio_id = course_with_audio("generating" if case == "generating" else "ready")
    decided = accept_regen_request(
        None if case == "missing" else course,
        uuid.uuid4() if case == "other-audio" else audio_id,
        requests_last_24h=3 if case == "limit" else 0,
        daily_limit=3,
    )
    assert decided == outcome
    refusal = regen_refusal(decided, daily_limit=3)
    assert isinstance(refusal, error)
    assert refusal.code == code


def test_only_an_open_request_is_decided() -> None:
    assert decide_regen_request("open") == "decided"
    assert decide_regen_request(None) == "request_not_found"
    for status in ("approved", "rejected", "completed", "failed"):
        assert decide_regen_request(status) == "already_decided"
    assert decision_refusal("request_not_found", None).code == "REGEN_REQUEST_NOT_FOUND"
    already = decision_refusal("already_decided", "approved")
    assert (already.status, already.code) == (409, "REGEN_ALREADY_DECIDED")


# --- handshake -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Held:
    id: uuid.UUID
    checksum: str


def test_the_handshake_diff_sorts_every_held_copy() -> None:
    same, edited, dropped, gone = (uuid.uuid4() for _ in range(4))
    held = [
        Held(edited, "f" * 32),
        Held(same, "a" * 32),
        Held(gone, "0" * 32),
        Held(edited, "b" * 32),  # sent twice: once, where first sent, with the last checksum
    ]
    diff = diff_handshake(held, [same, edited, dropped], ["a" * 32, "b" * 32, "c" * 32])
    assert diff.changed == []
    assert diff.removed == [gone]
    assert diff.missing == [dropped]
    assert diff.unchanged_count == 2

    diff = diff_handshake(held[:3], [same, edited, dropped], ["a" * 32, "b" * 32, "c" * 32])
    assert (diff.changed, diff.unchanged_count) == ([edited], 1)


def test_a_client_holding_everything_current_misses_nothing() -> None:
    ids = [uuid.uuid4() for _ in range(3)]
    diff = diff_handshake([Held(i, "a" * 32) for i in ids], ids, ["a" * 32] * 3)
    assert (diff.changed, diff.missing, diff.removed, diff.unchanged_count) == ([], [], [], 3)


def test_a_handshake_over_the_limit_is_too_large() -> None:
    held = [Held(uuid.uuid4(), "a" * 32) for _ in range(3)]
    check_handshake_size(held, 3)
    with pytest.raises(PayloadTooLarge) as refused:
        check_handshake_size(held, 2)
    assert refused.value.code == "HANDSHAKE_TOO_LARGE"


# --- job failures ----------------------------------------------------------------------------


def test_a_failed_step_is_retried_with_backoff_until_its_attempts_run_out() -> None:
    policy = RetryPolicy(max_attempts=3, base_seconds=1.0, max_seconds=10.0)
    assert policy.after_failure(1) == RetryLater(1, 1.0)
    assert policy.after_failure(2) == RetryLater(2, 2.0)
    assert policy.after_failure(3) == GiveUp(3)
