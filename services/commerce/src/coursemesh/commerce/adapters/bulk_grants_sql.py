"""The bulk grant jobs' rows (``bulk_grant_jobs``) on the staff transaction's driver: the file's
rows and the results as JSON arrays (msgspec), the runner's lease and the progress."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

import msgspec

from coursemesh.chassis.transaction import Driver, Record
from coursemesh.commerce.domain.bulk_grants import BulkJob, GrantRow, RowResult

_JOB_COLUMNS = (
    "id, organization_id, course_id, staff_id, dry_run, status, total, processed, created_at,"
    " finished_at"
)
_ADD = """
INSERT INTO bulk_grant_jobs (id, organization_id, course_id, staff_id, dry_run, status, total,
                             processed, rows, created_at)
VALUES ($1, $2, $3, $4, $5, 'queued', $6, 0, $7::text::jsonb, $8)
"""
_READ = f"""
SELECT {_JOB_COLUMNS}, results::text AS results FROM bulk_grant_jobs
WHERE id = $1 AND organization_id = $2 AND course_id = $3
"""
# The oldest job not done whose lease is over (a queued job has none), taken for ``lease``.
_CLAIM = f"""
UPDATE bulk_grant_jobs SET status = 'running', lease_until = $1::timestamptz + $2::interval
WHERE id = (
    SELECT id FROM bulk_grant_jobs
    WHERE status <> 'done' AND (lease_until IS NULL OR lease_until <= $1)
    ORDER BY created_at
    LIMIT 1
    FOR UPDATE SKIP LOCKED
)
RETURNING {_JOB_COLUMNS}, rows::text AS rows, results::text AS results
"""
_LOCK_AT = "SELECT processed FROM bulk_grant_jobs WHERE id = $1 FOR UPDATE"
_PROGRESS = """
UPDATE bulk_grant_jobs
   SET processed = $2, results = results || $3::text::jsonb, lease_until = $4,
       status = CASE WHEN $5::timestamptz IS NULL THEN status ELSE 'done' END,
       finished_at = $5
 WHERE id = $1
"""

_rows = msgspec.json.Decoder(list[GrantRow])
_results = msgspec.json.Decoder(list[RowResult])


def _job(row: Record) -> BulkJob:
    return BulkJob(
        id=row["id"],
        organization_id=row["organization_id"],
        course_id=row["course_id"],
        staff_id=row["staff_id"],
        dry_run=row["dry_run"],
        status=row["status"],
        total=row["total"],
        processed=row["processed"],
        created_at=row["created_at"],
        finished_at=row["finished_at"],
    )


async def add_job(driver: Driver, job: BulkJob, rows: Sequence[GrantRow]) -> None:
    await driver.execute(
        _ADD,
        job.id,
        job.organization_id,
        job.course_id,
        job.staff_id,
        job.dry_run,
        job.total,
        msgspec.json.encode(rows).decode(),
        job.created_at,
    )


async def read_job(
    driver: Driver, organization_id: uuid.UUID, course_id: uuid.UUID, job_id: uuid.UUID
) -> tuple[BulkJob, list[RowResult]] | None:
    row = await driver.fetchrow(_READ, job_id, organization_id, course_id)
    if row is None:
        return None
    return _job(row), _results.decode(row["results"])


async def claim_job(
    driver: Driver, now: datetime, lease: timedelta
) -> tuple[BulkJob, list[GrantRow], list[RowResult]] | None:
    row = await driver.fetchrow(_CLAIM, now, lease)
    if row is None:
        return None
    return _job(row), _rows.decode(row["rows"]), _results.decode(row["results"])


async def lock_job_at(driver: Driver, job_id: uuid.UUID, processed: int) -> bool:
    return bool(await driver.fetchval(_LOCK_AT, job_id) == processed)


async def save_progress(
    driver: Driver,
    job_id: uuid.UUID,
    processed: int,
    results: Sequence[RowResult],
    *,
    finished_at: datetime | None,
    lease_until: datetime,
) -> None:
    await driver.execute(
        _PROGRESS,
        job_id,
        processed,
        msgspec.json.encode(results).decode(),
        lease_until,
        finished_at,
    )
