"""Bulk grants run in the background, against real PostgreSQL through the app: the upload
answers at once with a job whose progress (``processed``, ``percent``) grows a chunk at a time;
a runner that stops mid-file is taken over from its last committed chunk once its lease ends,
and no row is granted twice; the results are those of the same file run in the request."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from commerce_support import BUYER, TRAINER, Harness
from test_bulk_grants import EXPECTED, FILE, outcomes, prepared

from coursemesh.chassis.testing import wait_for
from coursemesh.commerce.adapters.identity import DevDirectory
from coursemesh.commerce.adapters.staff_sql import DriverStaffStore
from coursemesh.commerce.adapters.tables import bulk_grant_jobs, entitlements
from coursemesh.commerce.app.bulk_grants import BulkGrants


async def start(
    h: Harness, org: uuid.UUID, course: uuid.UUID, content: str, by: str = TRAINER, **params: Any
) -> Any:
    return await h.client.post(
        f"/organizations/{org}/courses/{course}/grants/bulk/jobs",
        content=content.encode(),
        params=params,
        headers={**h.auth(by), "content-type": "text/csv"},
    )


async def read(h: Harness, location: str, by: str = TRAINER) -> Any:
    return await h.client.get(location, headers=h.auth(by))


#: The development identity directory (``make up``'s): ``user_3@school.test`` is ``user_3``.
DIRECTORY = DevDirectory(domain="school.test")


def runner(h: Harness, *, ahead: timedelta = timedelta(0)) -> BulkGrants:
    """A runner of 3-row chunks with a one-minute lease, its clock ``ahead`` of now."""
    return BulkGrants(
        DriverStaffStore(h.db),
        find_user=DIRECTORY.user_with_email,
        chunk=3,
        lease=timedelta(minutes=1),
        clock=lambda: datetime.now(UTC) + ahead,
    )


async def test_a_job_shows_its_progress_and_is_taken_over_after_its_runner_stops(
    harness: Harness,
) -> None:
    org, course = await prepared(harness)
    r = await start(harness, org, course, FILE, reason="giveaway")
    assert r.status_code == 202, r.text
    location = r.headers["location"]
    assert location == (
        f"/organizations/{org}/courses/{course}/grants/bulk/jobs/{r.json()['jobId']}"
    )
    queued = r.json()
    assert (queued["status"], queued["total"], queued["processed"], queued["percent"]) == (
        "queued",
        7,
        0,
        0,
    )
    # the first runner commits one chunk of three rows, then stops
    assert await runner(harness).work(max_chunks=1)
    partial = (await read(harness, location)).json()
    assert (partial["status"], partial["processed"], partial["percent"]) == ("running", 3, 42)
    assert partial["counts"]["granted"] == 2
    assert partial["counts"]["invalid"] == 1
    assert partial["rows"] == []  # every row's result once done
    # its lease still holds: no other runner takes the job
    assert not await runner(harness).work()
    # the lease over, another runner goes on from row 4
    assert await runner(harness, ahead=timedelta(minutes=2)).work()
    done = (await read(harness, location)).json()
    assert (done["status"], done["processed"], done["percent"]) == ("done", 7, 100)
    assert done["finishedAt"] is not None
    assert outcomes(done) == EXPECTED
    active = {e["user_id"] for e in await harness.rows(entitlements) if e["status"] == "active"}
    assert active == {"user_a", "user_b", "user_c", "user_active"}
    assert not await runner(harness, ahead=timedelta(minutes=5)).work()  # nothing left


async def test_a_runner_that_lost_its_job_writes_nothing_more(harness: Harness) -> None:
    org, course = await harness.shop(price=4900)
    emails = "email\n" + "\n".join(f"user_{i}@school.test" for i in range(9)) + "\n"
    location = (await start(harness, org, course, emails, reason="cohort")).headers["location"]
    other = BulkGrants(
        DriverStaffStore(harness.db),
        find_user=DIRECTORY.user_with_email,
        chunk=3,
        clock=lambda: datetime.now(UTC) + timedelta(minutes=2),
    )
    took_over = False

    async def slow_lookup(email: str) -> str | None:
        # the first runner stalls on row 4 (its second chunk) past its lease: meanwhile another
        # runner takes the job over and finishes it
        nonlocal took_over
        if email == "user_3@school.test" and not took_over:
            took_over = True
            assert await other.work()
        return await DIRECTORY.user_with_email(email)

    first = BulkGrants(
        DriverStaffStore(harness.db), find_user=slow_lookup, chunk=3, lease=timedelta(minutes=1)
    )
    assert await first.work()
    assert took_over
    done = (await read(harness, location)).json()
    assert (done["status"], done["processed"], done["counts"]["granted"]) == ("done", 9, 9)
    assert [r["row"] for r in done["rows"]] == list(range(1, 10))
    assert len(await harness.rows(entitlements)) == 9


async def test_a_dry_run_job_writes_no_entitlement(harness: Harness) -> None:
    org, course = await prepared(harness)
    before = await harness.rows(entitlements)
    r = await start(harness, org, course, FILE, dryRun="true", reason="giveaway")
    assert r.status_code == 202, r.text
    assert await runner(harness).work()
    done = (await read(harness, r.headers["location"])).json()
    assert (done["dryRun"], done["status"]) == (True, "done")
    assert outcomes(done) == EXPECTED
    assert await harness.rows(entitlements) == before


async def test_refusals_write_no_job_and_tell_strangers_nothing(harness: Harness) -> None:
    org, course = await harness.shop(price=4900)
    other_org, other_course = await harness.shop(price=4900)
    bad = await start(harness, org, course, "name\nguest\n")
    assert (bad.status_code, bad.json()["code"]) == (422, "CSV_INVALID")
    stranger = await start(harness, org, course, "userId\nu\n", by=BUYER, reason="x")
    assert stranger.status_code == 404, stranger.text
    anonymous = await harness.client.post(
        f"/organizations/{org}/courses/{course}/grants/bulk/jobs", content=b"userId\nu\n"
    )
    assert anonymous.status_code == 401
    assert await harness.rows(bulk_grant_jobs) == []
    ok = await start(harness, org, course, "userId\nu\n", reason="x")
    location = ok.headers["location"]
    assert (await read(harness, location, by=BUYER)).status_code == 404
    elsewhere = location.replace(str(course), str(other_course)).replace(str(org), str(other_org))
    missing = await read(harness, elsewhere)
    assert missing.status_code == 404  # the trainer is not staff of the other org
    unknown = await read(harness, location.rsplit("/", 1)[0] + f"/{uuid.uuid4()}")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "BULK_GRANT_JOB_NOT_FOUND")
    hostile = await read(harness, location.rsplit("/", 1)[0] + "/%00")
    assert hostile.status_code in (400, 404)


async def test_the_worker_runs_a_queued_job_to_its_end(live: Any) -> None:
    h: Harness = await live()
    org, course = await h.shop(price=4900)
    users = "userId\n" + "\n".join(f"user_{i:04d}" for i in range(450)) + "\n"
    r = await start(h, org, course, users, reason="cohort")
    assert r.status_code == 202, r.text
    location = r.headers["location"]

    async def done() -> bool:
        return bool((await read(h, location)).json()["status"] == "done")

    # the job runs in the service's background worker, after the upload's answer
    await wait_for(done, timeout=60, message="the bulk grant job done")
    body = (await read(h, location)).json()
    assert (body["processed"], body["percent"], body["counts"]["granted"]) == (450, 100, 450)
    assert len(await h.rows(entitlements)) == 450
