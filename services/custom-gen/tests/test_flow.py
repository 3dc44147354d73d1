"""The whole story on real PostgreSQL, NATS and SeaweedFS: purchase -> submit -> audio objects
with matching MD5 -> data valid against its schema -> checksum recomputes -> handshake ->
a staff-approved regen swaps one file and the checksum; a staff decision is announced with the
course's events."""

from __future__ import annotations

import contextlib
import hashlib
import json
import uuid
from typing import Any

import httpx
import nats
import pytest
import sqlalchemy as sa
from litestar.testing import AsyncTestClient
from nats.js.errors import NotFoundError

from coursemesh.chassis.db import Database
from coursemesh.chassis.testing import TestIdentity, outbox_events, wait_for
from coursemesh.contracts.customgen import RegenRequestDecided
from coursemesh.customgen.adapters.tables import custom_courses, generation_jobs, purchases
from coursemesh.customgen.app.course_data import validate_data
from coursemesh.customgen.main import create_app
from coursemesh.customgen.settings import Settings

from .conftest import (
    BRIEF_INTAKE,
    BUCKET,
    BUYER,
    ORG,
    STAFF,
    generate_now,
    make_settings,
    make_staff,
    purchase,
)


async def ready_course(client: Any, identity: TestIdentity, course_id: str) -> dict[str, Any]:
    me = identity.headers(BUYER)

    async def is_ready() -> bool:
        body = (await client.get(f"/me/custom-courses/{course_id}", headers=me)).json()
        assert body["status"] != "failed", body
        return bool(body["status"] == "ready")

    await wait_for(is_ready, timeout=60, message="course ready")
    response = await client.get(f"/me/custom-courses/{course_id}", headers=me)
    result: dict[str, Any] = response.json()
    return result


def md5(data: Any) -> str:
    raw = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.md5(raw.encode()).hexdigest()


@pytest.fixture
async def quiet_streams(nats_url: str) -> None:
    """The streams this service consumes, emptied: other services' tests publish purchases for
    the same test buyer, and this app's consumers apply whatever the streams hold before the
    purchase list answers."""
    nc = await nats.connect(nats_url)
    try:
        for stream in ("COMMERCE", "CATALOG"):
            with contextlib.suppress(NotFoundError):
                await nc.jetstream().purge_stream(stream)
    finally:
        await nc.close()


def assert_content(payload: Any, course: dict[str, Any], manifest: dict[str, Any]) -> None:
    """The content event carries the stored course: its canonical document under its checksum,
    and the manifest's files."""
    assert json.loads(payload.document) == course["data"]
    assert hashlib.md5(payload.document.encode()).hexdigest() == course["checksum"]
    assert payload.checksum == course["checksum"]
    assert payload.file_size_bytes == course["fileSizeBytes"] == len(payload.document.encode())
    assert (payload.user_id, payload.organization_id) == (BUYER, ORG)
    assert [
        {
            "fileId": f.file_id,
            "session": f.session,
            "md5": f.md5,
            "sha256": f.sha256,
            "sizeBytes": f.size_bytes,
            "contentType": f.content_type,
        }
        for f in payload.files
    ] == [
        {k: f[k] for k in ("fileId", "session", "md5", "sha256", "sizeBytes", "contentType")}
        for f in manifest["files"]
    ]


async def same_transaction(db: Database, *envs: Any) -> bool:
    """Outbox rows of one transaction share its start instant (``now()``)."""
    outbox = db.spine.outbox
    async with db.engine.connect() as conn:
        found = await conn.execute(
            sa.select(outbox.c.created_at)
            .distinct()
            .where(outbox.c.event_id.in_([e.id for e in envs]))
        )
        return len(found.all()) == 1


async def test_purchase_submit_generate_handshake_regenerate(
    db: Database, settings: Settings, identity: TestIdentity, s3: Any, quiet_streams: None
) -> None:
    purchase_id = await purchase(db)
    await make_staff(db)
    me = identity.headers(BUYER)
    bucket = s3.client()
    async with AsyncTestClient(create_app(settings)) as client:
        listed = (await client.get("/me/custom-course-purchases", headers=me)).json()
        assert [(p["purchaseId"], p["status"]) for p in listed] == [
            (str(purchase_id), "awaiting_intake")
        ]

        submitted = await client.post(
            "/me/custom-courses",
            json={"purchaseId": str(purchase_id), "intake": BRIEF_INTAKE},
            headers=me,
        )
        assert submitted.status_code == 202, submitted.text
        course_id = submitted.json()["id"]
        running = (await client.get(f"/me/custom-courses/{course_id}", headers=me)).json()
        assert running["status"] in {"generating", "ready"}
        assert running["progress"]["sessionsTotal"] == 2

        course = await ready_course(client, identity, course_id)
        assert course["progress"] == {
            "step": "done",
            "sessionsDone": 2,
            "sessionsTotal": 2,
            "attempts": 0,
            "failedStep": None,
            "lastError": None,
        }
        data = course["data"]
        assert course["courseCode"] == "X99ENB"
        assert course["title"] == "Restful Sleep for Sam"
        validate_data(data)
        # The stored checksum recomputes from the data, exactly as a client does it.
        assert course["checksum"] == md5(data)
        raw = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert course["fileSizeBytes"] == len(raw.encode())
        assert [s["title"] for s in data["workbooks"]] == [s["title"] for s in data["scripts"]]
        assert "evening worries" in data["scripts"][0]["sections"][2]["text"]

        # Every audio object exists once, with the MD5 we stored (computed by us, not the ETag).
        audio = data["audio_files"]
        assert [a["session"] for a in audio] == [1, 2]
        for entry in audio:
            body = bucket.get_object(Bucket=BUCKET, Key=entry["object_key"])["Body"].read()
            assert hashlib.md5(body).hexdigest() == entry["checksum"]
            assert len(body) == entry["size_bytes"]
            assert entry["duration_ms"] > 1000
            # The presigned URL in the response really fetches it.
            async with httpx.AsyncClient() as http:
                fetched = await http.get(course["audioUrls"][entry["id"]])
            assert fetched.status_code == 200
            assert fetched.content == body
            assert (
                entry["object_key"] == f"audio/sha256/{entry['sha256'][:2]}/{entry['sha256']}.mp3"
            )
            assert hashlib.sha256(body).hexdigest() == entry["sha256"]

        requested = await outbox_events(db, "customgen.custom_course.requested.v1")
        assert [str(e.payload.custom_course_id) for e in requested] == [course_id]
        (ready,) = await outbox_events(db, "customgen.custom_course.ready.v1")
        assert ready.payload.checksum == course["checksum"]
        assert ready.payload.file_size_bytes == course["fileSizeBytes"]
        manifest = (await client.get(f"/me/custom-courses/{course_id}/files", headers=me)).json()
        (content,) = await outbox_events(db, "customgen.custom_course.content.v1")
        assert_content(content.payload, course, manifest)
        assert content.payload.version == ready.aggregate_version
        assert await same_transaction(db, ready, content)

        # Handshake: a client that holds the current version gets nothing but a count.
        held = [{"id": course_id, "checksum": course["checksum"]}]
        same = (
            await client.post("/me/custom-courses/handshake", json={"courses": held}, headers=me)
        ).json()
        assert same == {"changed": [], "missing": [], "removed": [], "unchangedCount": 1}
        fresh = (
            await client.post("/me/custom-courses/handshake", json={"courses": []}, headers=me)
        ).json()
        assert [c["id"] for c in fresh["missing"]] == [course_id]
        assert fresh["missing"][0]["data"] == data

        # Regen: buyer asks, staff approve, one file changes, the JSON and checksum follow.
        target = audio[1]
        created = await client.post(
            f"/me/custom-courses/{course_id}/regen-requests",
            json={"audioId": target["id"], "reason": "The voice sounded rushed"},
            headers=me,
        )
        assert created.status_code == 201, created.text
        request_id = created.json()["id"]
        staff = identity.headers(STAFF)
        queue = (
            await client.get(f"/organizations/{ORG}/regen-requests?status=open", headers=staff)
        ).json()
        assert [r["id"] for r in queue] == [request_id]
        approved = await client.post(
            f"/organizations/{ORG}/regen-requests/{request_id}/approve", headers=staff
        )
        assert approved.status_code == 200
        assert approved.json()["status"] == "approved"
        # The decision is in the outbox, written by the approval's own transaction.
        (decided,) = await outbox_events(db, "customgen.regen_request.decided.v1")
        assert decided.payload == RegenRequestDecided(
            regen_request_id=uuid.UUID(request_id),
            custom_course_id=uuid.UUID(course_id),
            organization_id=ORG,
            user_id=BUYER,
            audio_id=uuid.UUID(target["id"]),
            decision="approved",
            decided_by=STAFF,
            note=None,
        )
        assert (decided.source, decided.aggregate_id) == ("customgen", course_id)
        assert decided.aggregate_version == ready.aggregate_version + 1

        async def completed() -> bool:
            mine = (
                await client.get(f"/me/custom-courses/{course_id}/regen-requests", headers=me)
            ).json()
            return bool(mine[0]["status"] == "completed")

        await wait_for(completed, timeout=30, message="regen completed")

        async def job_finished() -> bool:
            async with db.engine.connect() as conn:
                pending = await conn.scalar(
                    sa.select(sa.func.count())
                    .select_from(generation_jobs)
                    .where(generation_jobs.c.status != "done")
                )
            return pending == 0

        await wait_for(job_finished, timeout=30, message="regeneration job done")
        after = (await client.get(f"/me/custom-courses/{course_id}", headers=me)).json()
        new_audio = after["data"]["audio_files"]
        assert new_audio[0] == audio[0]  # the other file is untouched
        assert new_audio[1]["generation"] == 2
        assert new_audio[1]["id"] == target["id"]
        body = bucket.get_object(Bucket=BUCKET, Key=new_audio[1]["object_key"])["Body"].read()
        assert hashlib.md5(body).hexdigest() == new_audio[1]["checksum"]
        assert hashlib.sha256(body).hexdigest() == new_audio[1]["sha256"]
        # Content-addressed objects may be shared by other courses: the replaced one stays.
        bucket.head_object(Bucket=BUCKET, Key=target["object_key"])
        assert after["checksum"] != course["checksum"]
        assert after["checksum"] == md5(after["data"])

        # The old client copy is now "changed"; the handshake returns exactly that course.
        changed = (
            await client.post("/me/custom-courses/handshake", json={"courses": held}, headers=me)
        ).json()
        assert [c["id"] for c in changed["changed"]] == [course_id]
        assert changed["changed"][0]["checksum"] == after["checksum"]
        assert changed["unchangedCount"] == 0

        (updated,) = await outbox_events(db, "customgen.custom_course.updated.v1")
        assert updated.payload.reason == "audio_regenerated"
        assert updated.payload.checksum == after["checksum"]
        (regenerated,) = await outbox_events(db, "customgen.audio.regenerated.v1")
        assert str(regenerated.payload.regen_request_id) == request_id
        assert regenerated.payload.audio_checksum == new_audio[1]["checksum"]
        new_manifest = (
            await client.get(f"/me/custom-courses/{course_id}/files", headers=me)
        ).json()
        first, second = await outbox_events(db, "customgen.custom_course.content.v1")
        assert first == content
        assert_content(second.payload, after, new_manifest)
        assert second.payload.version == regenerated.aggregate_version
        assert await same_transaction(db, updated, second)
        # A regeneration changes exactly that one file's entry.
        assert second.payload.files[0] == content.payload.files[0]
        assert second.payload.files[1] != content.payload.files[1]
        # One version counter per course: ready, the decision, then the swap's two events.
        assert [updated.aggregate_version, regenerated.aggregate_version] == [
            decided.aggregate_version + 1,
            decided.aggregate_version + 2,
        ]

    async with db.engine.connect() as conn:
        # The database holds the invariant too: checksum = md5 of the stored text.
        row = (
            await conn.execute(
                sa.select(
                    custom_courses.c.checksum,
                    sa.func.md5(sa.cast(custom_courses.c.data, sa.Text)),
                )
            )
        ).one()
        assert row[0] == row[1]
        status = (await conn.execute(sa.select(purchases.c.status))).scalar_one()
        assert status == "submitted"


async def test_a_rejection_is_announced_with_its_note_and_starts_no_job(
    db: Database, database_url: str, nats_url: str, identity: TestIdentity, s3: Any
) -> None:
    settings = make_settings(database_url, nats_url, identity, s3, run_workers=False)
    course_id = await generate_now(db, settings)
    await make_staff(db)
    me = identity.headers(BUYER)
    async with AsyncTestClient(create_app(settings)) as client:
        detail = (await client.get(f"/me/custom-courses/{course_id}", headers=me)).json()
        audio_id = detail["data"]["audio_files"][0]["id"]
        created = await client.post(
            f"/me/custom-courses/{course_id}/regen-requests",
            json={"audioId": audio_id, "reason": "Too fast"},
            headers=me,
        )
        request_id = created.json()["id"]
        rejected = await client.post(
            f"/organizations/{ORG}/regen-requests/{request_id}/reject",
            json={"note": "It sounds right to us"},
            headers=identity.headers(STAFF),
        )
        assert rejected.status_code == 200, rejected.text
        assert rejected.json()["status"] == "rejected"

    (ready,) = await outbox_events(db, "customgen.custom_course.ready.v1")
    (decided,) = await outbox_events(db, "customgen.regen_request.decided.v1")
    assert decided.payload == RegenRequestDecided(
        regen_request_id=uuid.UUID(request_id),
        custom_course_id=course_id,
        organization_id=ORG,
        user_id=BUYER,
        audio_id=uuid.UUID(audio_id),
        decision="rejected",
        decided_by=STAFF,
        note="It sounds right to us",
    )
    assert (decided.aggregate_id, decided.aggregate_version) == (
        str(course_id),
        ready.aggregate_version + 1,
    )
    async with db.engine.connect() as conn:
        version = (await conn.execute(sa.select(custom_courses.c.version))).scalar_one()
        jobs = (
            await conn.execute(
                sa.select(sa.func.count())
                .select_from(generation_jobs)
                .where(generation_jobs.c.kind == "regenerate")
            )
        ).scalar_one()
    assert (version, jobs) == (decided.aggregate_version, 0)
