"""The durable generation job runner.

A job has a ``step`` and ``attempts``. A worker claims one due job (other workers skip it) and
keeps that transaction open while it performs one step: the outside effects first (script
writer, TTS, S3), then the step's writes and the move to the next step, committed together. A
crash at any point rolls the transaction back and releases the job; the next claim repeats the
step. Every step is idempotent: audio ids are deterministic per (course, session), object keys
are derived from the audio bytes (SHA-256), so a repeated upload finds its object already
stored and skips it, and an entry already appended is not appended again.

A step that raises is retried with exponential backoff; after ``max_attempts`` the job is
``failed`` with ``failed_step`` set (the course, or the regen request, shows it).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import uuid
from datetime import UTC, datetime

import msgspec

from coursemesh.contracts.customgen import AudioRegenerated, CustomCourseReady, CustomCourseUpdated
from coursemesh.customgen.app.content import publish_content
from coursemesh.customgen.app.course_data import store_data, update_json
from coursemesh.customgen.app.ports import (
    AudioEncoder,
    AudioStore,
    JobStore,
    JobWriter,
    ScriptRequest,
    ScriptWriter,
    SpeechSynthesizer,
)
from coursemesh.customgen.domain.course import (
    AudioEntry,
    GiveUp,
    RetryPolicy,
    StoredCourse,
    audio_id_for,
    content_object_key,
    find_audio,
    intake_of,
    is_content_addressed,
    next_session_without_audio,
    replace_audio,
    session_scripts,
    with_scripts,
)
from coursemesh.customgen.domain.jobs import failure_text

log = logging.getLogger("coursemesh.customgen.jobs")


class GenerationRunner:
    def __init__(
        self,
        jobs: JobStore,
        *,
        writer: ScriptWriter,
        speech: SpeechSynthesizer,
        encoder: AudioEncoder,
        store: AudioStore,
        retry: RetryPolicy,
        poll_seconds: float = 5.0,
    ) -> None:
        self.jobs = jobs
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
        due = await self.jobs.seconds_until_due()
        if due is None:
            return self.poll_seconds
        return float(min(self.poll_seconds, max(0.01, due)))

    async def run_once(self) -> bool:
        """Claim one due job and perform one step of it. False when nothing is due."""
        async with self.jobs.claim() as tx:
            if tx is None:
                return False
            try:
                async with tx.attempt():
                    await self._perform(tx)
            except Exception as exc:
                await self._record_failure(tx, exc)
        return True

    async def _perform(self, tx: JobWriter) -> None:
        if tx.job.kind == "generate":
            await self._generate_step(tx)
        else:
            await self._regenerate_step(tx)

    # --- generation --------------------------------------------------------------------------

    async def _generate_step(self, tx: JobWriter) -> None:
        job = tx.job
        course = await tx.course(job.custom_course_id)
        data = course.data
        if job.step == "write_scripts":
            scripts = await self.writer.write(
                ScriptRequest(
                    custom_course_id=str(course.id),
                    course_code=course.course_code,
                    intake=intake_of(data),
                )
            )
            data["metadata"]["script_writer"] = self.writer.name
            await store_data(tx, course.id, with_scripts(data, scripts))
            await tx.advance("synthesize")
        elif job.step == "synthesize":
            number = next_session_without_audio(data)
            if number is not None:
                script = session_scripts(data)[number - 1]
                audio_id = str(audio_id_for(course.id, number))
                entry = await self._produce_audio(
                    course, audio_id, number, script.title, script.spoken_text, 1
                )
                await update_json(tx, course.id, entry)
            await tx.advance("synthesize" if number is not None else "finalize")
        elif job.step == "finalize":
            version = course.version + 1
            await tx.mark_course_ready(course.id, version)
            await tx.finish()
            # Events are staged last: a failing statement above must not leave one behind.
            tx.publish(
                CustomCourseReady(
                    custom_course_id=course.id,
                    user_id=course.user_id,
                    checksum=course.checksum,
                    file_size_bytes=course.file_size_bytes,
                ),
                aggregate_id=course.id,
                aggregate_version=version,
            )
            publish_content(tx, course, version)

    async def _produce_audio(
        self,
        course: StoredCourse,
        audio_id: str,
        session_number: int,
        title: str,
        text: str,
        generation: int,
    ) -> AudioEntry:
        """TTS -> MP3 -> upload under the key of the bytes, unless that object is there already
        (the same bytes of this or another course, or an earlier attempt of this step)."""
        pcm = await self.speech.synthesize(text, intake_of(course.data).voice)
        audio = await self.encoder.encode(pcm)
        md5 = hashlib.md5(audio.body).hexdigest()
        sha256 = hashlib.sha256(audio.body).hexdigest()
        key = content_object_key(sha256, audio.format)
        # A different size under a content key means a broken earlier upload: replace it.
        if await self.store.stored_size(key) != len(audio.body):
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
            sha256=sha256,
            content_type=audio.content_type,
        )

    # --- regeneration ------------------------------------------------------------------------

    async def _regenerate_step(self, tx: JobWriter) -> None:
        job = tx.job
        if job.regen_request_id is None:
            raise LookupError(f"regeneration job {job.id} names no regen request")
        request = await tx.regen_request(job.regen_request_id)
        audio_id = str(request.audio_id)
        if job.step == "synthesize":
            # Upload the new generation first; the JSON still points at the old object.
            course = await tx.course(job.custom_course_id)
            current = find_audio(course.data, audio_id)
            if current is None:
                raise LookupError(f"audio {audio_id} vanished from course {course.id}")
            script = session_scripts(course.data)[current.session - 1]
            generation = int(job.state.get("generation", current.generation + 1))
            entry = await self._produce_audio(
                course, audio_id, current.session, current.title, script.spoken_text, generation
            )
            state = {
                "generation": generation,
                "old_key": current.object_key,
                "new": msgspec.to_builtins(entry),
            }
            await tx.advance("swap", state=state)
        elif job.step == "swap":
            # Repoint the JSON at the new object, re-checksum, publish: one transaction.
            entry = AudioEntry(**job.state["new"])
            locked = await tx.lock_course_data(job.custom_course_id)
            if locked is None:
                raise LookupError(f"course {job.custom_course_id} vanished")
            updated = replace_audio(locked, entry)
            await tx.complete_regen_request(request.id)
            await tx.advance("delete_old")
            if updated is not None:
                stored = await store_data(tx, job.custom_course_id, updated)
                course = await tx.course(job.custom_course_id)
                version = course.version + 2
                await tx.set_course_version(course.id, version)
                tx.publish(
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
                tx.publish(
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
                publish_content(tx, course, version)
        elif job.step == "delete_old":
            # Only now, with nothing of this course pointing at it, a legacy per-course object
            # goes. A content-addressed one stays: other courses may name the same bytes.
            old_key = job.state.get("old_key")
            if (
                old_key
                and old_key != job.state["new"]["object_key"]
                and not is_content_addressed(old_key)
            ):
                await self.store.delete(old_key)
            await tx.finish()

    # --- failures ----------------------------------------------------------------------------

    async def _record_failure(self, tx: JobWriter, exc: Exception) -> None:
        job = tx.job
        error = failure_text(exc)
        outcome = self.retry.after_failure(job.attempts + 1)
        if isinstance(outcome, GiveUp):
            log.error(
                "job %s failed at step %s after %d attempts: %s",
                job.id,
                job.step,
                outcome.attempts,
                error,
            )
            await tx.fail(outcome.attempts, error)
            if job.kind == "generate":
                await tx.mark_course_failed(job.custom_course_id)
            elif job.regen_request_id is not None:
                await tx.mark_regen_request_failed(job.regen_request_id)
            return
        log.warning(
            "job %s step %s failed (attempt %d), retry in %.2fs: %s",
            job.id,
            job.step,
            outcome.attempts,
            outcome.delay_seconds,
            error,
        )
        await tx.retry_later(outcome.attempts, error, outcome.delay_seconds)
