"""The durable job: crash and resume without duplicate objects, retries with a reported
failed step, concurrent appends both kept, and the checksum invariant held by the database."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from coursemesh.chassis.db import Database
from coursemesh.chassis.testing import wait_for
from coursemesh.customgen.adapters.courses_sql import SqlCourseStore
from coursemesh.customgen.adapters.jobs_sql import SqlCourseData
from coursemesh.customgen.adapters.tables import custom_courses, generation_jobs
from coursemesh.customgen.app.course_data import update_json
from coursemesh.customgen.app.ports import Pcm, SpeechError
from coursemesh.customgen.app.submit import submit_custom_course
from coursemesh.customgen.bootstrap import Adapters, build_adapters, build_runner
from coursemesh.customgen.domain.course import AudioEntry, calculate_checksum
from coursemesh.customgen.domain.intake import Intake, Voice
from coursemesh.customgen.settings import Settings

from .conftest import BUCKET, BUYER, generate_now, purchase

INTAKE = Intake(goal="Sleep deeply", preferred_name="Sam", session_count=3, session_length="brief")


class Crash(BaseException):
    """The process dies: not an Exception, so nothing catches it as a step failure."""


class CrashAfterUploads:
    """An audio store that dies right after its n-th upload has reached S3."""

    def __init__(self, inner: Any, crash_after: int) -> None:
        self.inner = inner
        self.uploads = 0
        self.crash_after = crash_after

    async def put(self, key: str, body: bytes, content_type: str, md5_hex: str) -> None:
        await self.inner.put(key, body, content_type, md5_hex)
        self.uploads += 1
        if self.uploads == self.crash_after:
            raise Crash

    async def delete(self, key: str) -> None:
        await self.inner.delete(key)

    async def stored_size(self, key: str) -> int | None:
        return await self.inner.stored_size(key)  # type: ignore[no-any-return]

    async def open(self, key: str, first: int | None = None, last: int | None = None) -> Any:
        return await self.inner.open(key, first, last)

    async def download_link(self, key: str) -> Any:
        return await self.inner.download_link(key)

    def public_url(self, key: str) -> str | None:
        return self.inner.public_url(key)  # type: ignore[no-any-return]

    async def download_url(self, key: str) -> str:
        return await self.inner.download_url(key)  # type: ignore[no-any-return]


class FlakySpeech:
    """Fails the first ``failures`` calls, then speaks for real."""

    def __init__(self, inner: Any, failures: int) -> None:
        self.inner = inner
        self.failures = failures
        self.calls = 0

    async def synthesize(self, text: str, voice: Voice) -> Pcm:
        self.calls += 1
        if self.calls <= self.failures:
            raise SpeechError("TTS provider unavailable")
        return await self.inner.synthesize(text, voice)  # type: ignore[no-any-return]


async def submit(db: Database) -> uuid.UUID:
    purchase_id = await purchase(db)
    return await submit_custom_course(
        SqlCourseStore(db),
        user_id=BUYER,
        purchase_id=purchase_id,
        intake=INTAKE,
        script_writer="template",
    )


async def course_row(db: Database, course_id: uuid.UUID) -> Any:
    async with db.engine.connect() as conn:
        return (
            await conn.execute(sa.select(custom_courses).where(custom_courses.c.id == course_id))
        ).one()


async def job_row(db: Database, course_id: uuid.UUID) -> Any:
    async with db.engine.connect() as conn:
        return (
            await conn.execute(
                sa.select(generation_jobs).where(generation_jobs.c.custom_course_id == course_id)
            )
        ).one()


async def drain(runner: Any) -> None:
    while await runner.run_once():
        pass


async def test_a_crash_mid_generation_resumes_without_duplicate_objects(
    db: Database, settings: Settings, s3: Any
) -> None:
    course_id = await submit(db)
    real = build_adapters(settings)
    dying_store = CrashAfterUploads(real.store, crash_after=2)
    dying = build_runner(
        db, settings, Adapters(real.writer, real.speech, real.encoder, dying_store)
    )
    with pytest.raises(Crash):
        await drain(dying)
    # The second object reached S3 but its entry never committed: still one entry, and the
    # stored checksum describes exactly what is stored.
    mid = await course_row(db, course_id)
    assert mid.status == "generating"
    assert len(json.loads(mid.data)["audio_files"]) == 1
    assert calculate_checksum(json.loads(mid.data)).checksum == mid.checksum
    assert (await job_row(db, course_id)).step == "synthesize"

    restarted = build_runner(db, settings, build_adapters(settings))
    await drain(restarted)
    done = await course_row(db, course_id)
    assert done.status == "ready"
    files = json.loads(done.data)["audio_files"]
    assert [f["session"] for f in files] == [1, 2, 3]
    # Content-addressed keys: the object uploaded before the crash is the one the entry names.
    keys = {f["object_key"] for f in files}
    assert len(keys) == 3
    for key in keys:
        head = s3.client().head_object(Bucket=BUCKET, Key=key)
        assert key.startswith("audio/sha256/")
        assert head["ContentLength"] == next(
            f["size_bytes"] for f in files if f["object_key"] == key
        )


async def test_a_failing_step_retries_with_backoff_then_succeeds(
    db: Database, settings: Settings
) -> None:
    course_id = await submit(db)
    real = build_adapters(settings)
    speech = FlakySpeech(real.speech, failures=2)
    runner = build_runner(db, settings, Adapters(real.writer, speech, real.encoder, real.store))
    await runner.run_once()  # write_scripts
    await runner.run_once()  # first synthesize attempt fails
    job = await job_row(db, course_id)
    assert (job.step, job.attempts, job.status) == ("synthesize", 1, "pending")
    assert "TTS provider unavailable" in job.last_error
    async with db.engine.connect() as conn:
        backoff = (
            await conn.execute(
                sa.select(
                    sa.extract(
                        "epoch", generation_jobs.c.next_attempt_at - generation_jobs.c.updated_at
                    )
                ).where(generation_jobs.c.id == job.id)
            )
        ).scalar_one()
    # Not retried at once: the retry is scheduled one backoff after the failure was recorded.
    assert float(backoff) >= settings.job_backoff_base_seconds
    task = asyncio.create_task(runner.run_forever())
    try:

        async def ready() -> bool:
            return bool((await course_row(db, course_id)).status == "ready")

        await wait_for(ready, timeout=30, message="ready after retries")
    finally:
        task.cancel()
    assert speech.calls == 2 + 3


async def test_after_its_limit_a_job_reports_the_failed_step(
    db: Database, settings: Settings
) -> None:
    course_id = await submit(db)
    real = build_adapters(settings)
    speech = FlakySpeech(real.speech, failures=10**6)
    runner = build_runner(db, settings, Adapters(real.writer, speech, real.encoder, real.store))
    task = asyncio.create_task(runner.run_forever())
    try:

        async def failed() -> bool:
            return bool((await job_row(db, course_id)).status == "failed")

        await wait_for(failed, timeout=30, message="job failed")
    finally:
        task.cancel()
    job = await job_row(db, course_id)
    assert (job.failed_step, job.attempts) == ("synthesize", settings.job_max_attempts)
    assert speech.calls == settings.job_max_attempts
    course = await course_row(db, course_id)
    assert course.status == "failed"
    data = json.loads(course.data)
    assert len(data["scripts"]) == 3
    assert data["audio_files"] == []
    assert calculate_checksum(data).checksum == course.checksum


def _entry(audio_id: str, session: int) -> AudioEntry:
    return AudioEntry(
        id=audio_id,
        session=session,
        title=f"Extra {session}",
        object_key=f"custom-courses/x/audio/{audio_id}/g1.mp3",
        url=None,
        checksum="0" * 32,
        duration_ms=1000,
        size_bytes=100,
        format="mp3",
        generation=1,
        created_at="2025-03-01T09:30:00Z",
    )


async def test_two_concurrent_appends_are_both_kept(db: Database, settings: Settings) -> None:
    course_id = await generate_now(db, settings)
    first, second = _entry(str(uuid.uuid4()), 1), _entry(str(uuid.uuid4()), 1)
    locked, hold = asyncio.Event(), asyncio.Event()

    async def append(entry: AudioEntry, first_in: bool) -> None:
        async with db.unit_of_work() as uow:
            await update_json(SqlCourseData(uow.session), course_id, entry)
            if first_in:
                locked.set()
                await hold.wait()  # keep the row locked while the other append queues

    async def someone_waits_on_a_lock() -> bool:
        async with db.engine.connect() as conn:
            waiting = await conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND datname = current_database()"
                )
            )
            return bool(waiting.scalar_one() > 0)

    slow = asyncio.create_task(append(first, first_in=True))
    await asyncio.wait_for(locked.wait(), timeout=10)
    fast = asyncio.create_task(append(second, first_in=False))
    await wait_for(someone_waits_on_a_lock, timeout=10, message="second append queued")
    hold.set()
    await asyncio.gather(slow, fast)
    row = await course_row(db, course_id)
    ids = [f["id"] for f in json.loads(row.data)["audio_files"]]
    assert first.id in ids
    assert second.id in ids
    assert len(ids) == 3
    assert calculate_checksum(json.loads(row.data)).checksum == row.checksum


async def test_the_database_refuses_a_checksum_that_does_not_match(
    db: Database, settings: Settings
) -> None:
    course_id = await generate_now(db, settings)
    before = await course_row(db, course_id)
    with pytest.raises(IntegrityError):
        async with db.unit_of_work() as uow:
            await uow.session.execute(
                sa.update(custom_courses)
                .where(custom_courses.c.id == course_id)
                .values(data='{"half":"written"}')
            )
    assert (await course_row(db, course_id)).data == before.data
