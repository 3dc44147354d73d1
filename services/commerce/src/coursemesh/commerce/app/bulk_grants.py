"""Bulk grants: every user of a CSV file given a course through the single grant's rule, in
chunks of rows, each chunk one transaction (a long file holds no lock for long).

Two ways to run the same chunks: in the request (:meth:`BulkGrants.run`, the answer lists
every row), or in the background (:meth:`BulkGrants.start`, then the ``bulk-grant-runner``
worker) for a file large enough that its uploader wants a progress figure. A background run
commits each chunk with its results and the job's new progress in one transaction, and the
chunk's write first checks that the job is still where the runner left it; so a runner that
dies mid-file is taken over, once its lease ends, from its last committed chunk, and no chunk
is applied twice."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from coursemesh.chassis.errors import NotFound
from coursemesh.chassis.staff import require_staff
from coursemesh.commerce.app.ports import StaffStore, StaffTransaction
from coursemesh.commerce.app.staff import grant_in, require_course
from coursemesh.commerce.domain.bulk_grants import BulkJob, GrantRow, RowOutcome, RowResult
from coursemesh.commerce.domain.entitlements import CourseAlreadyOwned, IllegalTransition

#: Rows of a bulk grant per transaction.
BULK_CHUNK = 200

#: Finds the identity provider's user with an e-mail address (None: none, or several).
FindUser = Callable[[str], Awaitable[str | None]]


def _now() -> datetime:
    return datetime.now(UTC)


class BulkJobNotFound(NotFound):
    code = "BULK_GRANT_JOB_NOT_FOUND"


class BulkGrants:
    def __init__(
        self,
        store: StaffStore,
        *,
        find_user: FindUser,
        chunk: int = BULK_CHUNK,
        lease: timedelta = timedelta(seconds=60),
        wake: Callable[[], None] = lambda: None,
        clock: Callable[[], datetime] = _now,
        new_id: Callable[[], uuid.UUID] = uuid.uuid4,
    ) -> None:
        self._store = store
        self._find_user = find_user
        self._chunk = chunk
        self._lease = lease
        self._wake = wake
        self._clock = clock
        self._new_id = new_id

    async def run(
        self,
        organization_id: uuid.UUID,
        course_id: uuid.UUID,
        staff_id: str,
        rows: Sequence[GrantRow],
        *,
        dry_run: bool,
    ) -> list[RowResult]:
        """Each row through the single grant's rule; ``dry_run``: what each row would do,
        nothing written. A user already active (a file uploaded again) changes nothing."""
        async with self._store.transaction() as tx:
            await _require_staff_course(tx, organization_id, course_id, staff_id)
        seen: dict[str, int] = {}
        results: list[RowResult] = []
        for start in range(0, len(rows), self._chunk):
            checked = await self._check(rows[start : start + self._chunk], seen)
            async with self._store.transaction() as tx:
                results += await self._apply(
                    tx, organization_id, course_id, staff_id, checked, dry_run
                )
        return results

    async def start(
        self,
        organization_id: uuid.UUID,
        course_id: uuid.UUID,
        staff_id: str,
        rows: Sequence[GrantRow],
        *,
        dry_run: bool,
    ) -> BulkJob:
        """Queue the file for the background runner; its progress is read by :meth:`job`."""
        job = BulkJob(
            id=self._new_id(),
            organization_id=organization_id,
            course_id=course_id,
            staff_id=staff_id,
            dry_run=dry_run,
            status="queued",
            total=len(rows),
            processed=0,
            created_at=self._clock(),
        )
        async with self._store.transaction() as tx:
            await _require_staff_course(tx, organization_id, course_id, staff_id)
            await tx.add_bulk_job(job, rows)
            tx.transaction.after_commit(self._wake)
        return job

    async def job(
        self, organization_id: uuid.UUID, course_id: uuid.UUID, staff_id: str, job_id: uuid.UUID
    ) -> tuple[BulkJob, list[RowResult]]:
        """The job's progress and the results of the rows done so far."""
        async with self._store.transaction() as tx:
            await _require_staff_course(tx, organization_id, course_id, staff_id)
            found = await tx.bulk_job(organization_id, course_id, job_id)
        if found is None:
            raise BulkJobNotFound("No such bulk grant of this course")
        return found

    async def work(self, max_chunks: int | None = None) -> bool:
        """Take one queued job, or one whose runner's lease ended, and run it from its last
        committed chunk to its end (or for ``max_chunks``); False: there was none."""
        async with self._store.transaction() as tx:
            claimed = await tx.claim_bulk_job(self._clock(), self._lease)
        if claimed is None:
            return False
        job, rows, done = claimed
        seen = {r.user_id: r.number for r in done if r.user_id and r.outcome != "duplicate"}
        starts = range(job.processed, job.total, self._chunk)
        for start in starts if max_chunks is None else starts[:max_chunks]:
            checked = await self._check(rows[start : start + self._chunk], seen)
            async with self._store.transaction() as tx:
                if not await tx.lock_bulk_job_at(job.id, start):
                    return True  # another runner took the job over: it goes on from here
                results = await self._apply(
                    tx, job.organization_id, job.course_id, job.staff_id, checked, job.dry_run
                )
                processed = start + len(checked)
                await tx.save_bulk_progress(
                    job.id,
                    processed,
                    results,
                    finished_at=self._clock() if processed == job.total else None,
                    lease_until=self._clock() + self._lease,
                )
        return True

    async def _check(
        self, rows: Sequence[GrantRow], seen: dict[str, int]
    ) -> list[GrantRow | RowResult]:
        """Each row with its user found (by e-mail address, when it names one), or its result
        when it cannot be granted: invalid, or the user of an earlier row (``seen``: user id ->
        the row that named them first, updated)."""
        checked: list[GrantRow | RowResult] = []
        for row in rows:
            if row.problem is None and not row.user_id:
                found = await self._find_user(row.email or "")
                row = replace(
                    row,
                    user_id=found or "",
                    problem=None if found else "no user has this e-mail address",
                )
            if row.problem is not None:
                checked.append(_result(row, "invalid", row.problem))
            elif row.user_id in seen:
                checked.append(
                    _result(row, "duplicate", f"the same user as row {seen[row.user_id]}")
                )
            else:
                seen[row.user_id] = row.number
                checked.append(row)
        return checked

    async def _apply(
        self,
        tx: StaffTransaction,
        organization_id: uuid.UUID,
        course_id: uuid.UUID,
        staff_id: str,
        checked: Sequence[GrantRow | RowResult],
        dry_run: bool,
    ) -> list[RowResult]:
        results: list[RowResult] = []
        for row in checked:
            if isinstance(row, RowResult):
                results.append(row)
                continue
            assert row.reason is not None
            outcome: RowOutcome
            try:
                t = await grant_in(
                    tx,
                    organization_id,
                    course_id,
                    staff_id,
                    row.user_id,
                    row.reason,
                    new_id=self._new_id(),
                    now=self._clock(),
                    write=not dry_run,
                )
                outcome = "granted" if t.previous_status is None else "regranted"
            except CourseAlreadyOwned:
                outcome = "already_active"
            except IllegalTransition:
                outcome = "pending_payment"
            results.append(_result(row, outcome))
        return results


def _result(row: GrantRow, outcome: RowOutcome, detail: str | None = None) -> RowResult:
    return RowResult(row.number, row.user_id or None, row.email, outcome, detail)


async def _require_staff_course(
    tx: StaffTransaction, organization_id: uuid.UUID, course_id: uuid.UUID, staff_id: str
) -> None:
    await require_staff(tx.directory, organization_id, staff_id)
    await require_course(tx, organization_id, course_id)


async def run_bulk_grants(
    bulk: BulkGrants, wake: asyncio.Event, interval: float, stop: asyncio.Event
) -> None:
    """Run jobs until stopped: after a job, look for the next at once; with none, wait for a
    new one in this process (``wake``) or ``interval`` (one queued by another replica, or a
    runner's lease that ended)."""
    while not stop.is_set():
        if await bulk.work():
            continue
        wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout=interval)
