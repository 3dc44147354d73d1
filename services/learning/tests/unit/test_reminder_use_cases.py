"""The reminder use cases on an in-memory store: opting in (the token's address, the refusals),
unsubscribing, and the scheduler queuing each owed mail once per kind and local day."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from typing import Any

import pytest

from coursemesh.chassis.errors import Conflict, NotFound, Unprocessable
from coursemesh.learning.app import reminders
from coursemesh.learning.app.ports import QueuedMail, ReminderCandidate
from coursemesh.learning.domain.model import (
    Course,
    CourseDetails,
    Day,
    Enrollment,
    Entitlement,
    Item,
    Workout,
)
from coursemesh.learning.domain.reminders import ReminderSetting

USER = "user_learner"
COURSE = uuid.uuid4()
WORKOUT = uuid.uuid4()
NOW = datetime(2025, 3, 3, 8, 0, tzinfo=UTC)  # 09:00 in Berlin
KEY = "unit-key"


class MemoryStore:
    def __init__(self) -> None:
        self.entitlements: dict[tuple[str, uuid.UUID], Entitlement] = {}
        self.settings: dict[uuid.UUID, ReminderSetting] = {}
        self.queued: dict[tuple[uuid.UUID, str, date], QueuedMail] = {}
        self.enrollments: dict[uuid.UUID, Enrollment] = {}
        self.course = Course(
            details=CourseDetails(
                course_id=COURSE,
                organization_id=uuid.uuid4(),
                name="Reset",
                image_url=None,
                duration_days=2,
                status="published",
                curriculum_version=1,
            ),
            days=[
                Day(
                    day_offset=0,
                    is_rest=False,
                    items=[Item(item_id=uuid.uuid4(), workout_id=WORKOUT, position=0)],
                ),
                Day(day_offset=1, is_rest=True, items=[]),
            ],
        )

    def entitle(self, status: str = "active") -> Entitlement:
        found = Entitlement(
            entitlement_id=uuid.uuid4(),
            user_id=USER,
            course_id=COURSE,
            organization_id=uuid.uuid4(),
            status=status,
            access_revoked_at=None,
        )
        self.entitlements[(USER, COURSE)] = found
        return found

    async def entitlement(self, user_id: str, course_id: uuid.UUID) -> Entitlement | None:
        return self.entitlements.get((user_id, course_id))

    async def setting(self, entitlement_id: uuid.UUID) -> ReminderSetting | None:
        return self.settings.get(entitlement_id)

    async def save_setting(
        self, setting: ReminderSetting, entitlement: Entitlement, now: Any
    ) -> None:
        self.settings[entitlement.entitlement_id] = setting

    async def disable(self, entitlement_id: uuid.UUID, now: Any) -> bool:
        found = self.settings.get(entitlement_id)
        if found is None:
            return False
        self.settings[entitlement_id] = ReminderSetting(
            entitlement_id=entitlement_id,
            enabled=False,
            local_time=found.local_time,
            time_zone=found.time_zone,
            email=found.email,
        )
        return True

    async def candidates(self) -> list[ReminderCandidate]:
        return [
            ReminderCandidate(
                setting=s,
                course_name="Reset",
                enrollment=self.enrollments.get(s.entitlement_id),
                course=self.course,
                completed_days=set(),
            )
            for s in self.settings.values()
            if s.enabled
        ]

    async def workouts(self, workout_ids: set[uuid.UUID]) -> dict[uuid.UUID, Workout]:
        return {
            w: Workout(
                workout_id=w,
                title="Mobility",
                description=None,
                duration_minutes=20,
                instructions=None,
                media_urls=[],
            )
            for w in workout_ids
        }

    async def queue(self, mail: QueuedMail, now: Any) -> bool:
        key = (mail.entitlement_id, mail.kind, mail.local_date)
        if key in self.queued:
            return False
        self.queued[key] = mail
        return True


class MemoryStorage:
    def __init__(self) -> None:
        self.store = MemoryStore()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[MemoryStore]:
        yield self.store


async def opt_in(
    storage: MemoryStorage,
    *,
    email: str | None = "me@example.com",
    key: str | None = KEY,
    enabled: bool = True,
) -> ReminderSetting:
    return await reminders.save_setting(
        storage,
        USER,
        COURSE,
        enabled=enabled,
        local_time="09:00",
        time_zone="Europe/Berlin",
        email=email,
        key=key,
        now=NOW,
    )


async def test_opting_in_keeps_the_tokens_address_and_a_later_token_without_one_keeps_it() -> None:
    storage = MemoryStorage()
    storage.store.entitle()
    assert (await opt_in(storage)).email == "me@example.com"
    assert (await opt_in(storage, email=None)).email == "me@example.com"


async def test_opting_in_is_refused_without_address_key_or_entitlement() -> None:
    storage = MemoryStorage()
    with pytest.raises(NotFound):
        await opt_in(storage)
    storage.store.entitle()
    with pytest.raises(Unprocessable) as no_address:
        await opt_in(storage, email=None)
    assert no_address.value.code == "REMINDER_EMAIL_UNKNOWN"
    with pytest.raises(Conflict) as no_key:
        await opt_in(storage, key=None)
    assert no_key.value.code == "REMINDERS_UNAVAILABLE"
    # turning them off needs neither
    assert (await opt_in(storage, email=None, key=None, enabled=False)).enabled is False


async def test_the_scheduler_queues_each_owed_mail_once_and_nothing_after_unsubscribe() -> None:
    storage = MemoryStorage()
    entitlement = storage.store.entitle()
    storage.store.enrollments[entitlement.entitlement_id] = Enrollment(
        entitlement_id=entitlement.entitlement_id,
        start_date=date(2025, 3, 3),
        completed_at=None,
        restart_count=0,
        last_activity_at=None,
        version=1,
    )
    await opt_in(storage)

    def url(token: str) -> str:
        return f"https://x.example/u?token={token}"

    assert await reminders.queue_due(storage, NOW, key=KEY, nudge_after=3, unsubscribe_url=url) == 1
    assert await reminders.queue_due(storage, NOW, key=KEY, nudge_after=3, unsubscribe_url=url) == 0
    [mail] = storage.store.queued.values()
    assert "- Mobility" in mail.body
    assert mail.unsubscribe_url in mail.body
    assert await reminders.unsubscribe(storage, entitlement.entitlement_id, NOW)
    assert not await reminders.subscribed(storage, entitlement.entitlement_id)
    storage.store.queued.clear()
    assert await reminders.queue_due(storage, NOW, key=KEY, nudge_after=3, unsubscribe_url=url) == 0
