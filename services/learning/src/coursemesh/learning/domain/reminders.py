"""Pure rules of reminder e-mails: the setting's validation, when a day's reminder is due in
the learner's zone (DST included), how many workout days were missed, which mails are owed at
an instant, their text, and the unsubscribe token.

No I/O: the scheduler loads the state, asks :func:`mails_due`, and queues what it answers.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import re
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, available_timezones

import msgspec

from coursemesh.chassis.errors import BadRequest, Unprocessable
from coursemesh.learning.domain.model import Day, Enrollment

Kind = Literal["daily", "nudge", "completed"]

_LOCAL_TIME = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
# A completion older than this when first seen (the learner opted in later, the service was
# down for days) is not congratulated any more: the mail would be news to nobody.
CONGRATULATION_WINDOW = timedelta(days=2)


class ReminderSetting(msgspec.Struct, frozen=True, kw_only=True):
    """One learner's reminders for one course (an entitlement)."""

    entitlement_id: uuid.UUID
    enabled: bool
    local_time: time
    time_zone: str
    email: str | None


# --- the setting -----------------------------------------------------------------------------


def parse_local_time(text: str) -> time:
    """``HH:MM``, 24-hour, two digits each; anything else is 422 ``INVALID_LOCAL_TIME``."""
    found = _LOCAL_TIME.fullmatch(text)
    if found is None:
        raise Unprocessable(
            f"localTime must be HH:MM (00:00 to 23:59), not {text!r}", code="INVALID_LOCAL_TIME"
        )
    return time(int(found[1]), int(found[2]))


@functools.cache
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def parse_zone(name: str) -> ZoneInfo:
    """An IANA zone the system's database lists (not a file path, not an empty name): 422
    ``INVALID_TIME_ZONE`` otherwise."""
    if name not in _zone_names():
        raise Unprocessable(f"{name!r} is not an IANA time zone name", code="INVALID_TIME_ZONE")
    return ZoneInfo(name)


# --- when ------------------------------------------------------------------------------------


def due_instant(local_date: date, local_time: time, zone: ZoneInfo) -> datetime:
    """The instant (UTC) of ``local_time`` on ``local_date`` in ``zone``.

    A wall time a DST change skips (02:30 in Berlin on the last Sunday of March) is sent at the
    next minute that exists (03:00). A wall time that happens twice (02:30 on the last Sunday of
    October) is sent at its first occurrence (``fold=0``)."""
    wall = datetime.combine(local_date, local_time)
    for minutes in range(24 * 60):
        candidate = (wall + timedelta(minutes=minutes)).replace(tzinfo=zone, fold=0)
        # a skipped wall time does not survive the round trip through UTC
        if candidate.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == candidate.replace(
            tzinfo=None
        ):
            return candidate.astimezone(UTC)
    raise AssertionError("no zone skips a whole day of wall time")  # pragma: no cover


def local_today(now: datetime, zone: ZoneInfo) -> date:
    return now.astimezone(zone).date()


def is_due(now: datetime, local_time: time, zone: ZoneInfo) -> bool:
    """Whether today's (local) reminder time has come. A day's reminder is owed only on that
    local day: one not sent by local midnight (the service was down) is not sent late."""
    return now >= due_instant(local_today(now, zone), local_time, zone)


# --- what the learner did --------------------------------------------------------------------


def missed_workout_days(days: Sequence[Day], day_offset: int, completed_days: set[int]) -> int:
    """Workout days missed in a row before day ``day_offset``: going back from the day before,
    each day with workouts none of which is completed counts; rest (or empty) days are skipped;
    the count stops at a day with a completion or at the first day."""
    missed = 0
    for offset in range(min(day_offset, len(days)) - 1, -1, -1):
        day = days[offset]
        if day.is_rest or not day.items:
            continue
        if offset in completed_days:
            break
        missed += 1
    return missed


# --- what is owed ----------------------------------------------------------------------------


class MailDue(msgspec.Struct, frozen=True, kw_only=True):
    """A mail the scheduler owes: at most one per (entitlement, kind, local date)."""

    kind: Kind
    local_date: date
    day_offset: int | None = None
    items: tuple[Day, ...] = ()  # the day whose workouts a daily reminder lists
    missed: int = 0


def mails_due(
    *,
    now: datetime,
    setting: ReminderSetting,
    enrollment: Enrollment | None,
    days: Sequence[Day],
    completed_days: set[int],
    nudge_after: int,
) -> list[MailDue]:
    """The mails owed at ``now`` (each the scheduler queues once; a repeat is a no-op).

    - ``completed``: the course is complete (the enrollment's ``completedAt``, from which the
      player publishes ``learning.course.completed.v1``), congratulated once per local day of
      completion, at once, if the completion is recent; no other mail once complete.
    - ``daily``: from the learner's local time on, a day of the run with workouts lists them; a
      rest day (or an empty one), a course not started, not begun yet or over sends nothing.
    - ``nudge``: on the day the missed workout days reach ``nudge_after`` (0: never), with
      the daily reminder, once per lapse."""
    if not setting.enabled or enrollment is None:
        return []
    zone = ZoneInfo(setting.time_zone)
    today = local_today(now, zone)
    if enrollment.completed_at is not None:
        if now - enrollment.completed_at > CONGRATULATION_WINDOW:
            return []
        return [MailDue(kind="completed", local_date=local_today(enrollment.completed_at, zone))]
    if enrollment.start_date is None or not is_due(now, setting.local_time, zone):
        return []
    offset = (today - enrollment.start_date).days
    if offset < 0 or offset >= len(days):
        return []
    owed: list[MailDue] = []
    day = days[offset]
    if not day.is_rest and day.items:
        owed.append(MailDue(kind="daily", local_date=today, day_offset=offset, items=(day,)))
    missed = missed_workout_days(days, offset, completed_days)
    if nudge_after > 0 and missed == nudge_after:
        owed.append(MailDue(kind="nudge", local_date=today, day_offset=offset, missed=missed))
    return owed


# --- text ------------------------------------------------------------------------------------


def mail_text(
    due: MailDue, course_name: str, titles: dict[uuid.UUID, str], unsubscribe_url: str
) -> tuple[str, str]:
    """The subject and the plain text of a mail (the HTML part is the same text, escaped)."""
    footer = f"\n\nStop these reminders: {unsubscribe_url}"
    if due.kind == "completed":
        return (
            f"Congratulations: you completed {course_name}",
            f"You completed every workout of {course_name}. Well done!{footer}",
        )
    if due.kind == "nudge":
        return (
            f"{course_name}: pick it up again today",
            f"You have missed {due.missed} workout days of {course_name} in a row."
            f" Today is day {(due.day_offset or 0) + 1}: a short session gets you back on"
            f" track.{footer}",
        )
    lines = [
        f"- {titles.get(item.workout_id) or 'Workout'}" for day in due.items for item in day.items
    ]
    return (
        f"{course_name}: today's workouts (day {(due.day_offset or 0) + 1})",
        f"Today is day {(due.day_offset or 0) + 1} of {course_name}. Your workouts:\n"
        + "\n".join(lines)
        + footer,
    )


def workout_ids(dues: Iterable[MailDue]) -> set[uuid.UUID]:
    return {item.workout_id for due in dues for day in due.items for item in day.items}


# --- unsubscribe token -----------------------------------------------------------------------

_PURPOSE = b"learning.reminders.unsubscribe\x00"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def unsubscribe_token(entitlement_id: uuid.UUID, key: str) -> str:
    """``<entitlement id>.<HMAC-SHA256>``, base64url: lasts as long as the key (an unsubscribe
    link must work in a mail read months later); it can only turn reminders off."""
    mac = hmac.new(key.encode(), _PURPOSE + entitlement_id.bytes, hashlib.sha256).digest()
    return f"{_b64(entitlement_id.bytes)}.{_b64(mac)}"


def verify_unsubscribe_token(token: str, key: str) -> uuid.UUID:
    """The entitlement the token was made for; 400 ``INVALID_UNSUBSCRIBE_TOKEN`` otherwise."""
    refused = BadRequest("The unsubscribe link is not valid", code="INVALID_UNSUBSCRIBE_TOKEN")
    head, dot, _tail = token.partition(".")
    if not dot or len(token) > 128:
        raise refused
    try:
        entitlement_id = uuid.UUID(bytes=_unb64(head))
    except (ValueError, binascii.Error):
        raise refused from None
    if not hmac.compare_digest(unsubscribe_token(entitlement_id, key).encode(), token.encode()):
        raise refused
    return entitlement_id
