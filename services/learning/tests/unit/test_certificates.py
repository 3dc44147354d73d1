"""Certificates: the pure rules and the use cases on in-memory ports (unit: no I/O)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from coursemesh.chassis.errors import DomainError
from coursemesh.learning.app import certificates, player
from coursemesh.learning.domain.certificate import (
    ANONYMOUS_LEARNER,
    Certificate,
    Organization,
    certificate_id_of,
    downloadable,
    issue,
    learner_name,
    object_key,
)
from coursemesh.learning.domain.model import Clock
from coursemesh.learning.domain.player import CompletionOutcome, course_view

from .fakes import (
    COURSE,
    ORG,
    WORKOUT_A,
    WORKOUT_B,
    FakeCertificateFiles,
    FakeStorage,
    State,
    add_course,
    entitle,
    fake_render,
)

BUYER = "user_buyer"
NOW = datetime(2025, 3, 3, 23, 30, tzinfo=UTC)
# Already Tuesday in Tokyo: the certificate's date is the learner's day.
TOKYO = Clock(now=NOW, zone=ZoneInfo("Asia/Tokyo"))


@pytest.fixture
def state() -> State:
    state = State()
    add_course(state)
    state.organizations[ORG] = Organization(
        organization_id=ORG, name="Move Studio", logo_url="https://cdn.example.com/logo.png"
    )
    return state


@pytest.fixture
def storage(state: State) -> FakeStorage:
    return FakeStorage(state)


async def _complete_all(
    storage: FakeStorage, learner: str | None = "Ann Example"
) -> list[CompletionOutcome]:
    outcomes = []
    for workout, day in ((WORKOUT_A, 0), (WORKOUT_B, 0), (WORKOUT_A, 2)):
        outcomes.append(
            await player.mark_complete(storage, BUYER, COURSE, workout, day, TOKYO, learner)
        )
    return outcomes


def issued(outcome: CompletionOutcome) -> Certificate:
    assert outcome.certificate is not None, "no certificate issued"
    return outcome.certificate


# --- pure rules --------------------------------------------------------------------------------


def test_learner_name_is_one_printable_line_and_falls_back_when_missing() -> None:
    assert learner_name("  Ann\n\tExample\u200b ") == "Ann Example"
    assert learner_name(None) == ANONYMOUS_LEARNER
    assert learner_name(" \r\n ") == ANONYMOUS_LEARNER
    assert learner_name("x" * 500) == "x" * 120


def test_learner_name_keeps_latin1_and_drops_only_the_accents_the_pdf_fonts_lack() -> None:
    assert learner_name("Jürgen Łukasz Dvořák") == "Jürgen Lukasz Dvorák"
    assert learner_name("张伟") == "??"


def test_issue_captures_what_is_printed_and_starts_valid() -> None:
    certificate = issue(
        certificate_id=uuid.uuid4(),
        entitlement_id=uuid.uuid4(),
        run=0,
        user_id=BUYER,
        course_id=COURSE,
        organization_id=ORG,
        learner=None,
        course_name=None,
        organization=None,
        completed_on=date(2025, 3, 4),
        now=NOW,
    )
    assert (certificate.learner_name, certificate.course_name) == (ANONYMOUS_LEARNER, "Course")
    assert (certificate.organization_name, certificate.organization_logo_url) == (None, None)
    assert certificate.status == "valid"


def test_a_revoked_or_missing_certificate_is_not_downloadable() -> None:
    with pytest.raises(DomainError) as missing:
        downloadable(None)
    assert (missing.value.status, missing.value.code) == (404, "CERTIFICATE_NOT_FOUND")
    revoked = Certificate(
        certificate_id=uuid.uuid4(),
        entitlement_id=uuid.uuid4(),
        run=0,
        user_id=BUYER,
        course_id=COURSE,
        organization_id=ORG,
        learner_name="Ann",
        course_name="Reset",
        organization_name=None,
        organization_logo_url=None,
        completed_on=date(2025, 3, 4),
        issued_at=NOW,
        revoked_at=NOW,
    )
    assert revoked.status == "revoked"
    with pytest.raises(DomainError) as refused:
        downloadable(revoked)
    assert (refused.value.status, refused.value.code) == (403, "CERTIFICATE_REVOKED")


@pytest.mark.parametrize(
    "text",
    ["", "nope", "../../etc/passwd", "0" * 37, "urn:uuid:" + str(uuid.UUID(int=1)), "%00"],
)
def test_anything_but_a_uuid_names_no_certificate(text: str) -> None:
    with pytest.raises(DomainError) as refused:
        certificate_id_of(text)
    assert (refused.value.status, refused.value.code) == (404, "CERTIFICATE_NOT_FOUND")


def test_the_object_key_is_the_certificate_id() -> None:
    certificate_id = uuid.uuid4()
    assert object_key(certificate_id) == f"certificates/{certificate_id}.pdf"


# --- use cases ---------------------------------------------------------------------------------


async def test_completing_the_course_issues_one_certificate_named_by_the_completed_event(
    state: State, storage: FakeStorage
) -> None:
    entitle(state, BUYER)
    *_, last = await _complete_all(storage)

    certificate = issued(last)
    assert list(state.certificates) == [certificate.certificate_id]
    assert (certificate.learner_name, certificate.course_name) == ("Ann Example", "30-day reset")
    assert certificate.organization_name == "Move Studio"
    assert certificate.organization_logo_url == "https://cdn.example.com/logo.png"
    assert certificate.completed_on == date(2025, 3, 4)
    completed = [e for e in storage.published if e.type == "learning.course.completed.v1"]
    assert [e.payload.certificate_id for e in completed] == [certificate.certificate_id]


async def test_unmarking_and_completing_again_finds_the_runs_certificate(
    state: State, storage: FakeStorage
) -> None:
    entitle(state, BUYER)
    *_, first = await _complete_all(storage)
    await player.unmark_complete(storage, BUYER, COURSE, WORKOUT_A, 2, TOKYO)
    again = await player.mark_complete(storage, BUYER, COURSE, WORKOUT_A, 2, TOKYO, "Someone Else")

    assert again.certificate == issued(first)
    assert len(state.certificates) == 1
    completed = [e for e in storage.published if e.type == "learning.course.completed.v1"]
    assert {e.payload.certificate_id for e in completed} == {issued(again).certificate_id}


async def test_a_restart_and_a_new_completion_issue_a_second_certificate_the_first_stays(
    state: State, storage: FakeStorage
) -> None:
    entitle(state, BUYER)
    *_, first = await _complete_all(storage)
    await player.restart(storage, BUYER, COURSE, TOKYO)
    *_, second = await _complete_all(storage)

    assert issued(second).run == 1
    assert issued(second).certificate_id != issued(first).certificate_id
    assert len(state.certificates) == 2


async def test_the_player_names_the_certificate_only_while_the_run_is_completed(
    state: State, storage: FakeStorage
) -> None:
    entitle(state, BUYER)

    async def shown() -> uuid.UUID | None:
        async with storage.reading() as reader:
            return course_view(await reader.snapshot(BUYER, COURSE), TOKYO.today).certificate_id

    assert await shown() is None
    *_, last = await _complete_all(storage)
    assert await shown() == issued(last).certificate_id
    await player.unmark_complete(storage, BUYER, COURSE, WORKOUT_A, 2, TOKYO)
    assert await shown() is None


async def test_the_pdf_is_stored_once_and_downloaded_as_stored(
    state: State, storage: FakeStorage
) -> None:
    entitle(state, BUYER)
    files = FakeCertificateFiles()
    *_, last = await _complete_all(storage)
    certificate = issued(last)

    await certificates.keep_pdf(storage, files, fake_render, certificate)
    stored = state.certificates[certificate.certificate_id]
    await certificates.keep_pdf(storage, files, fake_render, stored)
    pdf = await certificates.download(storage, files, fake_render, BUYER, COURSE)

    assert files.puts == 1
    assert pdf == files.objects[certificate.certificate_id] == fake_render(certificate)


async def test_a_pdf_the_store_refused_is_stored_by_the_first_download(
    state: State, storage: FakeStorage
) -> None:
    entitle(state, BUYER)
    files = FakeCertificateFiles()
    *_, last = await _complete_all(storage)
    certificate = issued(last)
    files.broken = True
    await certificates.keep_pdf(storage, files, fake_render, certificate)  # logged, not raised
    assert not state.certificates[certificate.certificate_id].stored

    files.broken = False
    pdf = await certificates.download(storage, files, fake_render, BUYER, COURSE)

    assert pdf == files.objects[certificate.certificate_id]
    assert state.certificates[certificate.certificate_id].stored


async def test_an_unreadable_store_still_gives_the_owner_the_same_document(
    state: State, storage: FakeStorage
) -> None:
    entitle(state, BUYER)
    files = FakeCertificateFiles()
    *_, last = await _complete_all(storage)
    await certificates.keep_pdf(storage, files, fake_render, issued(last))
    files.broken = True

    pdf = await certificates.download(storage, files, fake_render, BUYER, COURSE)

    assert pdf == fake_render(issued(last))


async def test_download_before_completion_is_certificate_not_found(
    state: State, storage: FakeStorage
) -> None:
    entitle(state, BUYER)
    with pytest.raises(DomainError) as refused:
        await certificates.download(storage, FakeCertificateFiles(), fake_render, BUYER, COURSE)
    assert (refused.value.status, refused.value.code) == (404, "CERTIFICATE_NOT_FOUND")


async def test_another_buyer_cannot_download_it(state: State, storage: FakeStorage) -> None:
    entitle(state, BUYER)
    await _complete_all(storage)
    with pytest.raises(DomainError) as refused:
        await certificates.download(storage, FakeCertificateFiles(), fake_render, "user_x", COURSE)
    assert (refused.value.status, refused.value.code) == (404, "COURSE_NOT_OWNED")


async def test_the_public_check_finds_a_certificate_by_id_and_nothing_else(
    state: State, storage: FakeStorage
) -> None:
    entitle(state, BUYER)
    *_, last = await _complete_all(storage)
    certificate = issued(last)

    assert await certificates.public_certificate(storage, str(certificate.certificate_id)) == (
        certificate
    )
    with pytest.raises(DomainError) as unknown:
        await certificates.public_certificate(storage, str(uuid.uuid4()))
    assert unknown.value.code == "CERTIFICATE_NOT_FOUND"
