"""A bulk grant's file: a CSV of the users to give a course to, by id or by e-mail address.
Pure: parsing and checking each row, each row's result, a background run's progress; the use
case grants row by row through the single grant's rule."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, get_args

from coursemesh.chassis.errors import Unprocessable

MAX_ROWS = 10_000
MAX_USER_ID = 255
MAX_EMAIL = 254
MAX_REASON = 500
COLUMNS = ("userId", "email", "reason")

RowOutcome = Literal[
    "granted",  # a new entitlement, active
    "regranted",  # the user's revoked entitlement, active again
    "already_active",  # nothing to do: uploading the same file again changes nothing
    "pending_payment",  # a checkout of theirs awaits payment: not granted
    "invalid",  # the row breaks a rule (``detail`` says which)
    "duplicate",  # the user is on an earlier row of the file
]


class CsvInvalid(Unprocessable):
    code = "CSV_INVALID"


@dataclass(frozen=True, slots=True)
class GrantRow:
    """A row of the file (``number`` counts from 1, the header not included)."""

    number: int
    user_id: str  # empty while the row names the user by ``email``
    reason: str | None
    #: why the row cannot be granted, before anything is looked up (None: it can be tried)
    problem: str | None = None
    email: str | None = None


def parse_grant_csv(raw: bytes, default_reason: str | None) -> list[GrantRow]:
    """The rows of a CSV whose header names a ``userId`` or an ``email`` column, or both (each
    row fills one), and optionally ``reason``; a row without a reason takes ``default_reason``.
    :class:`CsvInvalid` for a file that cannot be read as such; a bad row is kept, with its
    ``problem``."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CsvInvalid("The file is not UTF-8 text") from exc
    if "\x00" in text:
        raise CsvInvalid("The file holds a NUL character")
    try:
        table = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error as exc:
        raise CsvInvalid(f"Not a CSV file: {exc}") from exc
    if not table:
        raise CsvInvalid("The file is empty")
    header = [h.strip() for h in table[0]]
    if "userId" not in header and "email" not in header:
        raise CsvInvalid("The first line must name the columns, userId or email among them")
    unknown = [h for h in header if h not in COLUMNS]
    if unknown:
        raise CsvInvalid(f"Unknown columns: {', '.join(unknown)} (known: {', '.join(COLUMNS)})")
    body = [r for r in table[1:] if any(cell.strip() for cell in r)]
    if not body:
        raise CsvInvalid("The file names no user")
    if len(body) > MAX_ROWS:
        raise CsvInvalid(f"At most {MAX_ROWS} users per file; split it")
    at = {name: header.index(name) for name in COLUMNS if name in header}
    return [_row(n, cells, at, default_reason, len(header)) for n, cells in enumerate(body, 1)]


def _row(
    number: int,
    cells: list[str],
    at: dict[str, int],
    default_reason: str | None,
    width: int,
) -> GrantRow:
    def cell(name: str) -> str:
        index = at.get(name)
        return cells[index].strip() if index is not None and index < len(cells) else ""

    user_id, email = cell("userId"), cell("email")
    reason = cell("reason") or default_reason
    problem = None
    if len(cells) != width:
        problem = f"the row has {len(cells)} cells, the header {width}"
    elif not user_id and not email:
        problem = "no userId or email"
    elif user_id and email:
        problem = "both userId and email: give one"
    elif len(user_id) > MAX_USER_ID:
        problem = f"userId longer than {MAX_USER_ID} characters"
    elif email and ("@" not in email or len(email) > MAX_EMAIL):
        problem = "not an e-mail address"
    elif not reason:
        problem = "no reason (give a reason column or the reason parameter)"
    elif len(reason) > MAX_REASON:
        problem = f"reason longer than {MAX_REASON} characters"
    return GrantRow(number, user_id, reason, problem, email or None)


@dataclass(frozen=True, slots=True)
class RowResult:
    """What a row of the file did (or would do, in a dry run)."""

    number: int
    #: the user granted (for a row naming an e-mail address: the one it was found to be)
    user_id: str | None
    email: str | None
    outcome: RowOutcome
    detail: str | None = None


BulkJobStatus = Literal["queued", "running", "done"]


@dataclass(frozen=True, slots=True)
class BulkJob:
    """A bulk grant run in the background, chunk by chunk: ``processed`` of ``total`` rows
    done, their results kept as each chunk commits."""

    id: uuid.UUID
    organization_id: uuid.UUID
    course_id: uuid.UUID
    staff_id: str
    dry_run: bool
    status: BulkJobStatus
    total: int
    processed: int
    created_at: datetime
    finished_at: datetime | None = None

    @property
    def percent(self) -> int:
        """How much of the file is done, rounded down (100 only once every row is)."""
        return 100 if self.total == 0 else self.processed * 100 // self.total


def outcome_counts(results: Sequence[RowResult]) -> dict[str, int]:
    """Rows per outcome, every outcome named (zero included)."""
    counts = dict.fromkeys(get_args(RowOutcome), 0)
    for result in results:
        counts[result.outcome] += 1
    return counts
