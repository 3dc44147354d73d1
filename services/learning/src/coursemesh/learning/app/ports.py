"""What the use cases need from the outside, as Protocols (the SQL adapters implement them; the
unit tests pass in-memory fakes)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal, Protocol

import msgspec

from coursemesh.chassis.staff import StaffDirectory
from coursemesh.chassis.transaction import EventSink
from coursemesh.learning.domain.certificate import Certificate, Organization
from coursemesh.learning.domain.model import (
    Completion,
    Course,
    Enrollment,
    Entitlement,
    Pause,
    PlayerSnapshot,
    Workout,
)
from coursemesh.learning.domain.reminders import ReminderSetting
from coursemesh.learning.domain.sync import CustomCourse, OperationOutcome

#: The clock: the bootstrap's (tests pass a fixed one to choose "today").
Now = Callable[[], datetime]


class LibraryEntry(msgspec.Struct, frozen=True, kw_only=True):
    entitlement: Entitlement
    course_name: str | None
    image_url: str | None
    duration_days: int | None
    total_items: int
    completed_items: int
    start_date: date | None
    completed_at: datetime | None
    restart_count: int = 0
    max_pause_days: int | None = None  # the course's
    pauses: list[Pause] = []  # every run's, oldest first


class EnrollmentRow(msgspec.Struct, frozen=True, kw_only=True):
    """One buyer of a course as staff see it."""

    entitlement_id: uuid.UUID
    user_id: str
    start_date: date | None
    completed_at: datetime | None
    restart_count: int
    last_activity_at: datetime | None
    completed_items: int
    total_items: int
    unlocked_at: datetime | None = None
    unlocked_by: str | None = None
    unlock_reason: str | None = None
    pauses: list[Pause] = []  # every run's, oldest first
    completions: list[tuple[str, datetime]] = []  # the run's: (item id, completed at)


class PlayerReader(Protocol):
    async def snapshot(self, user_id: str, course_id: uuid.UUID) -> PlayerSnapshot | None:
        """None when the user holds no entitlement to the course."""
        ...


SortKey = Literal["lastActivityAt", "startDate", "completedCount", "userId"]


class PlayerStore(Protocol):
    """The player's state within one transaction."""

    async def entitlement(self, user_id: str, course_id: uuid.UUID) -> Entitlement | None: ...

    async def course(self, course_id: uuid.UUID) -> Course | None: ...

    async def lock_enrollment(self, entitlement: Entitlement) -> Enrollment:
        """The enrollment row, created when missing, locked until the transaction ends."""
        ...

    async def save_enrollment(self, enrollment: Enrollment) -> None: ...

    async def completions(self, entitlement_id: uuid.UUID) -> list[Completion]: ...

    async def add_completion(self, entitlement_id: uuid.UUID, completion: Completion) -> bool:
        """Insert; False when the item was already complete (ON CONFLICT DO NOTHING)."""
        ...

    async def remove_completion(self, entitlement_id: uuid.UUID, item_id: uuid.UUID) -> bool: ...

    async def archive_completions(
        self, entitlement_id: uuid.UUID, *, run: int, reason: str, now: datetime
    ) -> int:
        """Move every completion of the enrollment to the history table."""
        ...

    async def workouts(self, workout_ids: set[uuid.UUID]) -> dict[uuid.UUID, Workout]: ...

    async def library(self, user_id: str) -> list[LibraryEntry]: ...

    async def organization(self, organization_id: uuid.UUID) -> Organization | None: ...

    async def issue_certificate(self, certificate: Certificate) -> Certificate:
        """Keep ``certificate`` unless its run has one already; the run's certificate."""
        ...

    async def latest_certificate(self, entitlement_id: uuid.UUID) -> Certificate | None:
        """The enrollment's certificate of its latest completed run."""
        ...

    async def certificate(self, certificate_id: uuid.UUID) -> Certificate | None: ...

    async def certificate_stored(self, certificate_id: uuid.UUID) -> None:
        """Remember that the certificate's PDF is in the object store."""
        ...

    async def entitlement_by_id(self, entitlement_id: uuid.UUID) -> Entitlement | None: ...

    async def is_staff(self, organization_id: uuid.UUID, user_id: str) -> bool:
        """The membership projection: a staff action checks it in its own transaction."""
        ...

    async def pauses(self, entitlement_id: uuid.UUID) -> list[Pause]:
        """Every pause of the enrollment, of every run, oldest first."""
        ...

    async def add_pause(self, entitlement_id: uuid.UUID, pause: Pause) -> None: ...

    async def close_pause(self, entitlement_id: uuid.UUID, pause: Pause) -> None:
        """Record the resume of the pause under way."""
        ...

    async def touch_library(self, user_id: str, course_id: uuid.UUID) -> None:
        """Stamp the buyer's course with the next number of the buyer's change counter (the
        buyer's devices fetch it again on their next sync)."""
        ...

    async def item_change(self, entitlement_id: uuid.UUID, item_id: uuid.UUID) -> datetime | None:
        """The instant of the item's last mark or unmark; None when it never changed."""
        ...

    async def record_item_changes(
        self,
        entitlement_id: uuid.UUID,
        item_ids: Sequence[uuid.UUID],
        at: datetime,
        completed: bool,
    ) -> None:
        """The items' last change: marked (``completed``) or unmarked at ``at``."""
        ...


@dataclass(frozen=True, slots=True)
class PlayerTransaction:
    """One transaction of the player: its state, and the events it publishes (they commit
    together, or not at all)."""

    store: PlayerStore
    events: EventSink


class PlayerStorage(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[PlayerTransaction]:
        """A transaction: committed when the block ends without an error."""
        ...

    def reading(self) -> AbstractAsyncContextManager[PlayerReader]:
        """A reader of single statements, outside any transaction."""
        ...


class StaffStore(Protocol):
    async def course_organization(self, course_id: uuid.UUID) -> uuid.UUID | None:
        """The organization that owns the course; None for a course learning does not know."""
        ...

    async def course(self, course_id: uuid.UUID) -> Course | None: ...

    async def enrollment_rows(
        self,
        course_id: uuid.UUID,
        *,
        sort: SortKey,
        descending: bool,
        limit: int | None,
        offset: int,
    ) -> tuple[list[EnrollmentRow], int]: ...


@dataclass(frozen=True, slots=True)
class StaffTransaction:
    store: StaffStore
    directory: StaffDirectory


class StaffStorage(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[StaffTransaction]: ...


# --- reminder e-mails ------------------------------------------------------------------------


class ReminderCandidate(msgspec.Struct, frozen=True, kw_only=True):
    """An enabled reminder setting of an active entitlement, with what its mails need."""

    setting: ReminderSetting
    course_name: str | None
    enrollment: Enrollment | None
    course: Course | None
    completed_days: set[int]  # day offsets of the current run with a completion


class QueuedMail(msgspec.Struct, frozen=True, kw_only=True):
    entitlement_id: uuid.UUID
    kind: str
    local_date: date
    email: str
    subject: str
    body: str
    unsubscribe_url: str


class ReminderStore(Protocol):
    """Reminder settings and queued reminder mails within one transaction."""

    async def entitlement(self, user_id: str, course_id: uuid.UUID) -> Entitlement | None: ...

    async def setting(self, entitlement_id: uuid.UUID) -> ReminderSetting | None: ...

    async def save_setting(
        self, setting: ReminderSetting, entitlement: Entitlement, now: datetime
    ) -> None: ...

    async def disable(self, entitlement_id: uuid.UUID, now: datetime) -> bool:
        """Turn reminders off; False when there was no setting."""
        ...

    async def candidates(self) -> list[ReminderCandidate]: ...

    async def workouts(self, workout_ids: set[uuid.UUID]) -> dict[uuid.UUID, Workout]: ...

    async def queue(self, mail: QueuedMail, now: datetime) -> bool:
        """Queue once per (entitlement, kind, local date); False when already queued."""
        ...


class ReminderStorage(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[ReminderStore]: ...


class CertificateFileError(Exception):
    """The object store could not keep or give back a certificate's PDF."""


class CertificateFiles(Protocol):
    """Where certificates' PDFs are kept, by certificate id."""

    async def put(self, certificate_id: uuid.UUID, pdf: bytes) -> None: ...

    async def get(self, certificate_id: uuid.UUID) -> bytes: ...


#: Renders a certificate's PDF; the same certificate always gives the same bytes.
RenderCertificate = Callable[[Certificate], bytes]


# --- offline sync ------------------------------------------------------------------------------


class LibraryChange(msgspec.Struct, frozen=True, kw_only=True):
    """One course of a buyer's library change log: the number of its last change."""

    course_id: uuid.UUID
    seq: int
    removed: bool


class SyncReader(PlayerReader, Protocol):
    async def counter(self, user_id: str) -> int:
        """The buyer's change counter (0 before any change)."""
        ...

    async def changes(
        self, user_id: str, *, after: int, upto: int, limit: int
    ) -> list[LibraryChange]:
        """The courses stamped in (after, upto], oldest first."""
        ...

    async def held(self, user_id: str) -> list[uuid.UUID]:
        """The courses whose entitlement opens the player."""
        ...

    async def custom_courses(
        self, user_id: str, course_ids: list[uuid.UUID]
    ) -> dict[uuid.UUID, CustomCourse]:
        """Those of ``course_ids`` that are the buyer's own custom courses."""
        ...

    async def custom_checksums(self, user_id: str) -> dict[uuid.UUID, str]:
        """Every custom course of the buyer, with its checksum."""
        ...


class OperationSlot(Protocol):
    """One offline operation's own transaction: the player's storage inside it (each player
    transaction a savepoint), and where its outcome is kept."""

    @property
    def replayed(self) -> OperationOutcome | None:
        """The first outcome, when the operation was sent before."""
        ...

    @property
    def player(self) -> PlayerStorage: ...

    async def record(self, outcome: OperationOutcome) -> None: ...


class SyncStorage(Protocol):
    def reading(self) -> AbstractAsyncContextManager[SyncReader]: ...

    def operation(
        self, user_id: str, operation_id: uuid.UUID
    ) -> AbstractAsyncContextManager[OperationSlot]:
        """A transaction for one operation, committed when the block ends without an error."""
        ...
