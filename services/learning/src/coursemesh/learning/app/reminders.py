"""Reminder e-mails: the learner's setting (opt in, read, unsubscribe by a signed link) and the
scheduler that queues the mails owed at an instant, once per entitlement, kind and local day."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime

from coursemesh.chassis.errors import Conflict, Unprocessable
from coursemesh.learning.app.ports import QueuedMail, ReminderStorage
from coursemesh.learning.domain.player import curriculum_length, dense_days, owned
from coursemesh.learning.domain.reminders import (
    ReminderSetting,
    mail_text,
    mails_due,
    parse_local_time,
    parse_zone,
    unsubscribe_token,
    workout_ids,
)

log = logging.getLogger("coursemesh.learning.reminders")


async def read_setting(
    storage: ReminderStorage, user_id: str, course_id: uuid.UUID
) -> ReminderSetting | None:
    async with storage.transaction() as store:
        entitlement = owned(await store.entitlement(user_id, course_id))
        return await store.setting(entitlement.entitlement_id)


async def save_setting(
    storage: ReminderStorage,
    user_id: str,
    course_id: uuid.UUID,
    *,
    enabled: bool,
    local_time: str,
    time_zone: str,
    email: str | None,
    key: str | None,
    now: datetime,
) -> ReminderSetting:
    """Store the learner's choice. The address is the one the learner's token carries now
    (learning knows no other); turning reminders on needs one, and needs the service to be able
    to sign unsubscribe links."""
    parsed_time = parse_local_time(local_time)
    parse_zone(time_zone)
    async with storage.transaction() as store:
        entitlement = owned(await store.entitlement(user_id, course_id))
        current = await store.setting(entitlement.entitlement_id)
        address = email or (None if current is None else current.email)
        if enabled and key is None:
            raise Conflict(
                "Reminder e-mails are not configured on this server", code="REMINDERS_UNAVAILABLE"
            )
        if enabled and not address:
            raise Unprocessable(
                "Your sign-in carries no e-mail address to send reminders to",
                code="REMINDER_EMAIL_UNKNOWN",
            )
        setting = ReminderSetting(
            entitlement_id=entitlement.entitlement_id,
            enabled=enabled,
            local_time=parsed_time,
            time_zone=time_zone,
            email=address,
        )
        await store.save_setting(setting, entitlement, now)
        return setting


async def unsubscribe(storage: ReminderStorage, entitlement_id: uuid.UUID, now: datetime) -> bool:
    """Turn the reminders of a verified unsubscribe link off (a repeat changes nothing)."""
    async with storage.transaction() as store:
        return await store.disable(entitlement_id, now)


async def subscribed(storage: ReminderStorage, entitlement_id: uuid.UUID) -> bool:
    async with storage.transaction() as store:
        setting = await store.setting(entitlement_id)
        return setting is not None and setting.enabled


async def queue_due(
    storage: ReminderStorage,
    now: datetime,
    *,
    key: str,
    nudge_after: int,
    unsubscribe_url: Callable[[str], str],
) -> int:
    """Queue every mail owed at ``now``; the number newly queued. Run by every replica: the
    queue's unique key (entitlement, kind, local date), written in this transaction, makes a
    concurrent or later run queue nothing already queued."""
    queued = 0
    async with storage.transaction() as store:
        for candidate in await store.candidates():
            course = candidate.course
            days = (
                []
                if course is None
                else dense_days(
                    curriculum_length(course.days, course.details.duration_days), course.days
                )
            )
            dues = mails_due(
                now=now,
                setting=candidate.setting,
                enrollment=candidate.enrollment,
                days=days,
                completed_days=candidate.completed_days,
                nudge_after=nudge_after,
            )
            if not dues or candidate.setting.email is None:
                continue
            found = await store.workouts(workout_ids(dues))
            titles = {wid: w.title for wid, w in found.items() if w.title}
            url = unsubscribe_url(unsubscribe_token(candidate.setting.entitlement_id, key))
            for due in dues:
                subject, body = mail_text(due, candidate.course_name or "Your course", titles, url)
                mail = QueuedMail(
                    entitlement_id=candidate.setting.entitlement_id,
                    kind=due.kind,
                    local_date=due.local_date,
                    email=candidate.setting.email,
                    subject=subject,
                    body=body,
                    unsubscribe_url=url,
                )
                if await store.queue(mail, now):
                    queued += 1
    return queued
