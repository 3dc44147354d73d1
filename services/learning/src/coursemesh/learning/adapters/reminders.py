"""Reminder e-mails on the database and over SMTP: the settings and the queue
(``reminder_settings``, ``reminder_sends``), and the sender that mails the queue through
``chassis.mail`` (the same transport and leased claim as commerce's receipts)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from coursemesh.chassis.db import Database
from coursemesh.chassis.mail import SEND_ERRORS, LeasedMailQueue, SmtpTransport, compose
from coursemesh.learning.adapters.store import SqlStore
from coursemesh.learning.adapters.tables import (
    completions,
    courses,
    enrollments,
    entitlements,
    reminder_sends,
    reminder_settings,
)
from coursemesh.learning.app.ports import QueuedMail, ReminderCandidate
from coursemesh.learning.app.reminders import queue_due
from coursemesh.learning.domain.model import Enrollment, Entitlement
from coursemesh.learning.domain.reminders import ReminderSetting
from coursemesh.learning.settings import Settings

log = logging.getLogger("coursemesh.learning.reminders")


def _setting(row: Any) -> ReminderSetting:
    return ReminderSetting(
        entitlement_id=row.entitlement_id,
        enabled=row.enabled,
        local_time=row.local_time,
        time_zone=row.time_zone,
        email=row.email,
    )


class SqlReminderStore(SqlStore):
    """:class:`~coursemesh.learning.app.ports.ReminderStore` in the caller's transaction (the
    entitlement, course and workout reads are the player's)."""

    def __init__(self, session: AsyncSession) -> None:
        super().__init__(session)
        self._s = session

    async def setting(self, entitlement_id: uuid.UUID) -> ReminderSetting | None:
        row = (
            await self._s.execute(
                sa.select(reminder_settings).where(
                    reminder_settings.c.entitlement_id == entitlement_id
                )
            )
        ).first()
        return None if row is None else _setting(row)

    async def save_setting(
        self, setting: ReminderSetting, entitlement: Entitlement, now: datetime
    ) -> None:
        values = {
            "enabled": setting.enabled,
            "local_time": setting.local_time,
            "time_zone": setting.time_zone,
            "email": setting.email,
            "updated_at": now,
        }
        await self._s.execute(
            pg_insert(reminder_settings)
            .values(
                entitlement_id=entitlement.entitlement_id,
                user_id=entitlement.user_id,
                course_id=entitlement.course_id,
                **values,
            )
            .on_conflict_do_update(index_elements=["entitlement_id"], set_=values)
        )

    async def disable(self, entitlement_id: uuid.UUID, now: datetime) -> bool:
        result = await self._s.execute(
            sa.update(reminder_settings)
            .where(reminder_settings.c.entitlement_id == entitlement_id)
            .values(enabled=False, updated_at=now)
        )
        return bool(getattr(result, "rowcount", 0))

    async def candidates(self) -> list[ReminderCandidate]:
        """Enabled settings of started enrollments whose entitlement opens the player (active,
        not revoked)."""
        rows = (
            await self._s.execute(
                sa.select(
                    reminder_settings,
                    courses.c.name.label("course_name"),
                    entitlements.c.course_id.label("entitled_course"),
                    enrollments.c.start_date,
                    enrollments.c.completed_at,
                    enrollments.c.restart_count,
                    enrollments.c.last_activity_at,
                    enrollments.c.version,
                    enrollments.c.entitlement_id.label("enrolled"),
                )
                .join(
                    entitlements,
                    entitlements.c.entitlement_id == reminder_settings.c.entitlement_id,
                )
                .outerjoin(courses, courses.c.course_id == entitlements.c.course_id)
                # a course never started is owed nothing: only started enrollments are read
                .join(
                    enrollments, enrollments.c.entitlement_id == reminder_settings.c.entitlement_id
                )
                .where(
                    reminder_settings.c.enabled,
                    reminder_settings.c.email.is_not(None),
                    entitlements.c.status == "active",
                    entitlements.c.access_revoked_at.is_(None),
                    enrollments.c.start_date.is_not(None),
                )
                # one order for every replica: two schedulers inserting the same keys wait for
                # each other in turn instead of deadlocking
                .order_by(reminder_settings.c.entitlement_id)
            )
        ).all()
        if not rows:
            return []
        done: dict[uuid.UUID, set[int]] = {}
        for entitlement_id, day_offset in (
            await self._s.execute(
                sa.select(completions.c.entitlement_id, completions.c.day_offset)
                .where(completions.c.entitlement_id.in_([r.entitlement_id for r in rows]))
                .distinct()
            )
        ).all():
            done.setdefault(entitlement_id, set()).add(day_offset)
        found: list[ReminderCandidate] = []
        for row in rows:
            enrollment = (
                None
                if row.enrolled is None
                else Enrollment(
                    entitlement_id=row.entitlement_id,
                    start_date=row.start_date,
                    completed_at=row.completed_at,
                    restart_count=row.restart_count,
                    last_activity_at=row.last_activity_at,
                    version=row.version,
                )
            )
            found.append(
                ReminderCandidate(
                    setting=_setting(row),
                    course_name=row.course_name,
                    enrollment=enrollment,
                    course=await self.course(row.entitled_course),
                    completed_days=done.get(row.entitlement_id, set()),
                )
            )
        return found

    async def queue(self, mail: QueuedMail, now: datetime) -> bool:
        result = await self._s.execute(
            pg_insert(reminder_sends)
            .values(
                id=uuid.uuid4(),
                entitlement_id=mail.entitlement_id,
                kind=mail.kind,
                local_date=mail.local_date,
                email=mail.email,
                subject=mail.subject,
                body=mail.body,
                unsubscribe_url=mail.unsubscribe_url,
                queued_at=now,
            )
            .on_conflict_do_nothing(constraint="uq_reminder_sends_day")
        )
        return bool(getattr(result, "rowcount", 0))


class SqlReminderStorage:
    """:class:`~coursemesh.learning.app.ports.ReminderStorage` on the database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqlReminderStore]:
        async with self._db.unit_of_work() as uow:
            yield SqlReminderStore(uow.session)


#: Whether the mail's reminders are still on when it is sent (unsubscribed since it was queued:
#: it is dropped).
_STILL_ENABLED = (
    sa.select(reminder_settings.c.enabled)
    .where(reminder_settings.c.entitlement_id == reminder_sends.c.entitlement_id)
    .scalar_subquery()
    .label("still_enabled")
)


@dataclass
class ReminderMailer:
    """Sends queued reminder mails, each at most once per lease, with the one-click unsubscribe
    headers of RFC 8058."""

    db: Database
    transport: SmtpTransport
    sender: str
    max_attempts: int = 10
    lease: float = 60.0

    @property
    def queue(self) -> LeasedMailQueue:
        return LeasedMailQueue(
            self.db,
            reminder_sends,
            "id",
            self.max_attempts,
            self.lease,
            self.transport.timeout,
        )

    def message(self, row: Any) -> EmailMessage:
        return compose(
            self.sender,
            row["email"],
            row["subject"],
            row["body"],
            message_id=f"reminder-{row['kind']}-{row['entitlement_id']}-{row['local_date']}",
            headers={
                "List-Unsubscribe": f"<{row['unsubscribe_url']}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            },
        )

    async def send_due(self, limit: int = 50) -> int:
        queue = self.queue
        claimed_at, rows = await queue.claim(limit, (_STILL_ENABLED,))
        for row in rows:
            if not queue.within_lease(claimed_at):
                log.warning("reminder %s left to the next claim (lease)", row["id"])
                continue
            await self._send(queue, row)
        return len(rows)

    async def _send(self, queue: LeasedMailQueue, row: Any) -> None:
        now = datetime.now(UTC)
        values: dict[str, object]
        if not row["still_enabled"]:
            values = {
                "attempts": max(self.max_attempts, row["attempts"] + 1),
                "last_error": "unsubscribed",
            }
        else:
            try:
                await self.transport.send(self.message(row))
                values = LeasedMailQueue.sent(row, now)
            except SEND_ERRORS as exc:
                values = LeasedMailQueue.failed(row, exc, now)
                log.warning("reminder %s not sent: %s", row["id"], exc)
        await queue.mark(row["id"], values)


@dataclass
class ReminderWorker:
    """One replica's reminder loop: queue what came due (``app.reminders.queue_due``), then
    send the queue. Every replica runs one; the queue's unique key and the leased claim make
    each mail leave once."""

    storage: SqlReminderStorage
    mailer: ReminderMailer
    key: str
    nudge_after: int
    unsubscribe_url: Callable[[str], str]

    @classmethod
    def from_settings(cls, settings: Settings, db: Database) -> ReminderWorker | None:
        """None without the key that signs the unsubscribe links: no reminders then."""
        key = settings.reminder_signing_key
        if key is None:
            return None
        transport = SmtpTransport(
            settings.smtp_host,
            settings.smtp_port,
            settings.smtp_security,
            settings.smtp_username,
            settings.smtp_password,
            settings.smtp_ca_file,
        )
        return cls(
            SqlReminderStorage(db),
            ReminderMailer(db, transport, settings.mail_from, settings.reminder_max_attempts),
            key,
            settings.reminder_nudge_after_days,
            settings.unsubscribe_url,
        )

    async def run_once(self, now: datetime) -> int:
        """Queue what is owed at ``now`` and send what is due; the number of mails handled."""
        await queue_due(
            self.storage,
            now,
            key=self.key,
            nudge_after=self.nudge_after,
            unsubscribe_url=self.unsubscribe_url,
        )
        return await self.mailer.send_due()

    async def run(self, clock: Callable[[], datetime], interval: float) -> None:
        idle = asyncio.Event()  # never set: the loop waits out its interval
        while True:
            try:
                await self.run_once(clock())
            except Exception:  # a failing tick is logged and tried again at the next one
                log.exception("reminder tick failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(idle.wait(), timeout=interval)
