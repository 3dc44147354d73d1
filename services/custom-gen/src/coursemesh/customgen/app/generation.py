"""The durable generation job runner.

A job row has a ``step`` and ``attempts``. A worker claims one due job with
``FOR UPDATE SKIP LOCKED`` and keeps that transaction open while it performs one step: the
outside effects first (script writer, TTS, S3), then the step's database writes and the move to
the next step, committed together. A crash at any point rolls the transaction back and unlocks
the job; the next claim repeats the step. Every step is idempotent: audio ids and object keys
are deterministic per (course, audio id, generation), so a repeated upload overwrites the same
object, and an entry already appended is not appended again.

A step that raises is retried with exponential backoff; after ``max_attempts`` the job is
``failed`` with ``failed_step`` set (the course, or the regen request, shows it).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from coursemesh.chassis.db import Database, UnitOfWork
from coursemesh.contracts.customgen import AudioRegenerated, CustomCourseReady, CustomCourseUpdated
from coursemesh.customgen.adapters.tables import custom_courses, generation_jobs, regen_requests
from coursemesh.customgen.app.course_data import lock_course_data, store_data, update_json
from coursemesh.customgen.app.ports import (
    AudioEncoder,
    AudioStore,
    ScriptRequest,
    ScriptWriter,
    SpeechSynthesizer,
)
from coursemesh.customgen.domain.course import (
    AudioEntry,
    RetryPolicy,
    audio_id_for,
    audio_object_key,
    find_audio,
    next_session_without_audio,
    replace_audio,
    session_scripts,
    with_scripts,
)
from coursemesh.customgen.domain.intake import Intake

log = logging.getLogger("coursemesh.customgen.jobs")


async def enqueue_job(
    session: AsyncSession,
    *,
    course_id: uuid.UUID,
    kind: str,
    step: str,
    regen_request_id: uuid.UUID | None = None,
) -> uuid.UUID:
    job_id = uuid.uuid4()
    await session.execute(
        sa.insert(generation_jobs).values(
            id=job_id,
            custom_course_id=course_id,
            kind=kind,
            regen_request_id=regen_request_id,
            step=step,
            status="pending",
        )
    )
    return job_id


class GenerationRunner:
    def __init__(
        self,
        db: Database,
        *,
        writer: ScriptWriter,
        speech: SpeechSynthesizer,
        encoder: AudioEncoder,
        store: AudioStore,
        retry: RetryPolicy,
        poll_seconds: float = 5.0,
    ) -> None:
        self.db = db
        self.writer = writer
        self.speech = speech
        self.encoder = encoder
        self.store = store
        self.retry = retry
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Called after a commit that created or advanced a job in this process."""
        self._wake.set()

    async def run_forever(self) -> None:
        while True:
            while await self.run_once():
                pass
            # Another replica's commits, or a backoff expiring, are picked up by the poll.
            idle = await self._idle_seconds()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=idle)
            self._wake.clear()

    async def _idle_seconds(self) -> float:
        """Sleep until the earliest retry is due, at most ``poll_seconds``."""
        async with self.db.engine.connect() as conn:
            due = (
                await conn.execute(
                    sa.select(
                        sa.func.extract(
                            "epoch", sa.func.min(generation_jobs.c.next_attempt_at) - sa.func.now()
                        )
                    ).where(generation_jobs.c.status == "pending")
                )
            ).scalar()
        if due is None:
            return self.poll_seconds
        return float(min(self.poll_seconds, max(0.01, float(due))))

    async def run_once(self) -> bool:
        """Claim one due job and perform one step of it. False when nothing is due."""
        async with self.db.unit_of_work() as uow:
            job = (
                await uow.session.execute(
                    sa.select(generation_jobs)
                    .where(
                        generation_jobs.c.status == "pending",
                        generation_jobs.c.next_attempt_at <= sa.func.now(),
                    )
                    .order_by(generation_jobs.c.next_attempt_at)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                )
            ).first()
            if job is None:
                return False
            try:
                async with uow.session.begin_nested():
                    await self._perform(uow, job)
            except Exception as exc:
                await self._record_failure(uow, job, exc)
        return True

    async def _perform(self, uow: UnitOfWork, job: Any) -> None:
        if job.kind == "generate":
            await self._generate_step(uow, job)
        else:
            await self._regenerate_step(uow, job)

    # --- generation --------------------------------------------------------------------------

    async def _generate_step(self, uow: UnitOfWork, job: Any) -> None:
        session = uow.session
        course = await _course(session, job.custom_course_id)
        data: dict[str, Any] = json.loads(course.data)
        if job.step == "write_scripts":
            intake = _intake_of(data)
            scripts = await self.writer.write(
                ScriptRequest(
                    custom_course_id=str(course.id),
                    course_code=course.course_code,
                    intake=intake,
                )
            )
            data["metadata"]["script_writer"] = self.writer.name
            await store_data(session, course.id, with_scripts(data, scripts))
            await _advance(session, job, "synthesize")
        elif job.step == "synthesize":
            number = next_session_without_audio(data)
            if number is not None:
                script = session_scripts(data)[number - 1]
                audio_id = str(audio_id_for(course.id, number))
                entry = await self._produce_audio(
                    course.id, audio_id, number, script.title, script.spoken_text, data, 1
                )
                await update_json(session, course.id, entry)
            await _advance(session, job, "synthesize" if number is not None else "finalize")
        elif job.step == "finalize":
            version = course.version + 1
            await session.execute(
                sa.update(custom_courses)
                .where(custom_courses.c.id == course.id)
                .values(status="ready", version=version, updated_at=sa.func.now())
            )
            await _finish(session, job)
            # Events are staged last: a failing statement above must not leave one behind.
            uow.publish(
                CustomCourseReady(
                    custom_course_id=course.id,
                    user_id=course.user_id,
                    checksum=course.checksum,
                    file_size_bytes=course.file_size_bytes,
                ),
                aggregate_id=course.id,
                aggregate_version=version,
            )

    async def _produce_audio(
        self,
        course_id: uuid.UUID,
        audio_id: str,
        session_number: int,
        title: str,
        text: str,
        data: dict[str, Any],
        generation: int,
    ) -> AudioEntry:
        """TTS -> MP3 -> upload. The key depends only on (course, audio, generation)."""
        voice = _intake_of(data).voice
        pcm = await self.speech.synthesize(text, voice)
        audio = await self.encoder.encode(pcm)
        md5 = hashlib.md5(audio.body).hexdigest()
        key = audio_object_key(course_id, audio_id, generation)
        await self.store.put(key, audio.body, audio.content_type, md5)
        return AudioEntry(
            id=audio_id,
            session=session_number,
            title=title,
            object_key=key,
            url=self.store.public_url(key),
            checksum=md5,
            duration_ms=audio.duration_ms,
            size_bytes=len(audio.body),
            format=audio.format,
            generation=generation,
            created_at=datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        )

    # --- regeneration ------------------------------------------------------------------------

    async def _regenerate_step(self, uow: UnitOfWork, job: Any) -> None:
        session = uow.session
        request = (
            await session.execute(
                sa.select(regen_requests).where(regen_requests.c.id == job.regen_request_id)
            )
        ).one()
        audio_id = str(request.audio_id)
        if job.step == "synthesize":
            # Upload the new generation first; the JSON still points at the old object.
            course = await _course(session, job.custom_course_id)
            data: dict[str, Any] = json.loads(course.data)
            current = find_audio(data, audio_id)
            if current is None:
                raise LookupError(f"audio {audio_id} vanished from course {course.id}")
            script = session_scripts(data)[current.session - 1]
            generation = int(job.state.get("generation", current.generation + 1))
            entry = await self._produce_audio(
                course.id,
                audio_id,
                current.session,
                current.title,
                script.spoken_text,
                data,
                generation,
            )
            state = {
                "generation": generation,
                "old_key": current.object_key,
                "new": _jsonable(entry),
            }
            await _advance(session, job, "swap", state=state)
        elif job.step == "swap":
            # Repoint the JSON at the new object, re-checksum, publish: one transaction.
            entry = AudioEntry(**job.state["new"])
            locked = await lock_course_data(session, job.custom_course_id)
            if locked is None:
                raise LookupError(f"course {job.custom_course_id} vanished")
            updated = replace_audio(locked, entry)
            await session.execute(
                sa.update(regen_requests)
                .where(regen_requests.c.id == request.id)
                .values(status="completed", completed_at=sa.func.now())
            )
            await _advance(session, job, "delete_old")
            if updated is not None:
                stored = await store_data(session, job.custom_course_id, updated)
                course = await _course(session, job.custom_course_id)
                version = course.version + 2
                await session.execute(
                    sa.update(custom_courses)
                    .where(custom_courses.c.id == course.id)
                    .values(version=version)
                )
                uow.publish(
                    CustomCourseUpdated(
                        custom_course_id=course.id,
                        user_id=course.user_id,
                        checksum=stored.checksum,
                        file_size_bytes=stored.size_bytes,
                        reason="audio_regenerated",
                    ),
                    aggregate_id=course.id,
                    aggregate_version=version - 1,
                )
                uow.publish(
                    AudioRegenerated(
                        custom_course_id=course.id,
                        user_id=course.user_id,
                        audio_id=uuid.UUID(entry.id),
                        regen_request_id=request.id,
                        checksum=stored.checksum,
                        file_size_bytes=stored.size_bytes,
                        audio_checksum=entry.checksum,
                    ),
                    aggregate_id=course.id,
                    aggregate_version=version,
                )
        elif job.step == "delete_old":
            # Only now, with nothing pointing at it, the old object goes.
            old_key = job.state.get("old_key")
            if old_key and old_key != job.state["new"]["object_key"]:
                await self.store.delete(old_key)
            await _finish(session, job)

    # --- failures ----------------------------------------------------------------------------

    async def _record_failure(self, uow: UnitOfWork, job: Any, exc: Exception) -> None:
        attempts = job.attempts + 1
        error = f"{type(exc).__name__}: {exc}"[:1000]
        session = uow.session
        if self.retry.exhausted(attempts):
            log.error(
                "job %s failed at step %s after %d attempts: %s", job.id, job.step, attempts, error
            )
            await session.execute(
                sa.update(generation_jobs)
                .where(generation_jobs.c.id == job.id)
                .values(
                    status="failed",
                    attempts=attempts,
                    failed_step=job.step,
                    last_error=error,
                    updated_at=sa.func.now(),
                )
            )
            if job.kind == "generate":
                await session.execute(
                    sa.update(custom_courses)
                    .where(custom_courses.c.id == job.custom_course_id)
                    .values(status="failed", updated_at=sa.func.now())
                )
            else:
                await session.execute(
                    sa.update(regen_requests)
                    .where(regen_requests.c.id == job.regen_request_id)
                    .values(status="failed", completed_at=sa.func.now())
                )
            return
        delay = self.retry.delay_after(attempts)
        log.warning(
            "job %s step %s failed (attempt %d), retry in %.2fs: %s",
            job.id,
            job.step,
            attempts,
            delay,
            error,
        )
        await session.execute(
            sa.update(generation_jobs)
            .where(generation_jobs.c.id == job.id)
            .values(
                attempts=attempts,
                last_error=error,
                next_attempt_at=sa.func.now() + timedelta(seconds=delay),
                updated_at=sa.func.now(),
            )
        )


async def _course(session: AsyncSession, course_id: uuid.UUID) -> Any:
    return (
        await session.execute(sa.select(custom_courses).where(custom_courses.c.id == course_id))
    ).one()


def _intake_of(data: dict[str, Any]) -> Intake:
    raw = data["metadata"]["intake"]
    return Intake(
        goal=raw["goal"],
        preferred_name=raw["preferred_name"],
        focus_areas=list(raw["focus_areas"]),
        voice=raw["voice"],
        session_count=raw["session_count"],
        session_length=raw["session_length"],
    )


def _jsonable(entry: AudioEntry) -> dict[str, Any]:
    import msgspec

    result: dict[str, Any] = msgspec.to_builtins(entry)
    return result


async def _advance(
    session: AsyncSession, job: Any, step: str, *, state: dict[str, Any] | None = None
) -> None:
    values: dict[str, Any] = {
        "step": step,
        "attempts": 0,
        "last_error": None,
        "updated_at": sa.func.now(),
    }
    if state is not None:
        values["state"] = state
    await session.execute(
        sa.update(generation_jobs).where(generation_jobs.c.id == job.id).values(**values)
    )


async def _finish(session: AsyncSession, job: Any) -> None:
    await session.execute(
        sa.update(generation_jobs)
        .where(generation_jobs.c.id == job.id)
        .values(status="done", last_error=None, updated_at=sa.func.now())
    )
