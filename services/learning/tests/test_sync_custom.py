"""Custom courses in the buyer's sync: custom-gen's content events projected on PostgreSQL, then
served by ``/me/sync`` and checked by ``/me/sync/sanity``."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
import nats
from litestar.testing import AsyncTestClient

from coursemesh.chassis.db import Database
from coursemesh.chassis.testing import TestIdentity, deliver, service_settings
from coursemesh.contracts import encode, envelope, examples, subject_for
from coursemesh.contracts.customgen import CourseFile, CustomCourseContent
from coursemesh.learning.events.projections import subscriptions
from coursemesh.learning.main import create_app
from coursemesh.learning.service import SERVICE

from .conftest import BUYER, COURSE, NOW, ORG, OTHER_BUYER, World

CUSTOM = examples.CUSTOM_COURSE
SYNC = "/me/sync"
SANITY = "/me/sync/sanity"
OPERATIONS = "/me/sync/operations"
FILE_1 = "0195f0a0-0000-7000-8000-0000000000a1"
FILE_2 = "0195f0a0-0000-7000-8000-0000000000a2"


def canonical(data: dict[str, Any]) -> str:
    """As custom-gen serialises a course's data: the checksum is over these bytes."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def course_file(file_id: str, session: int, sha256: str | None) -> CourseFile:
    return CourseFile(
        file_id=file_id,
        session=session,
        md5=hashlib.md5(f"{file_id}{sha256}".encode()).hexdigest(),
        sha256=sha256,
        size_bytes=1000 * session,
        content_type="audio/mpeg",
    )


def content(
    version: int, second_sha256: str = "b" * 64, user_id: str = BUYER
) -> CustomCourseContent:
    data = {
        "metadata": {"course_code": "X99ENB", "title": "Schlaf für Sam"},
        "audio_files": [
            {"id": FILE_1, "session": 1, "sha256": "a" * 64},
            {"id": FILE_2, "session": 2, "sha256": second_sha256},
        ],
    }
    document = canonical(data)
    return CustomCourseContent(
        custom_course_id=CUSTOM,
        user_id=user_id,
        organization_id=ORG,
        version=version,
        checksum=hashlib.md5(document.encode()).hexdigest(),
        file_size_bytes=len(document.encode()),
        document=document,
        files=[course_file(FILE_1, 1, "a" * 64), course_file(FILE_2, 2, second_sha256)],
    )


async def post(client: Any, identity: TestIdentity, path: str, body: Any, user: str = BUYER) -> Any:
    answer = await client.post(path, json=body, headers=identity.headers(user))
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_a_custom_course_reaches_the_sync_with_its_files(
    client: Any, world: World, identity: TestIdentity
) -> None:
    await world.course()
    await world.entitle()
    event = content(1)
    await world.event(event, CUSTOM, 1)

    body = await post(client, identity, SYNC, {})

    kinds = {c["courseId"]: c["kind"] for c in body["courses"]}
    assert kinds == {str(COURSE): "trainer", str(CUSTOM): "custom"}
    custom = next(c for c in body["courses"] if c["kind"] == "custom")
    assert custom == {
        "kind": "custom",
        "courseId": str(CUSTOM),
        "checksum": event.checksum,
        "sizeBytes": event.file_size_bytes,
        "data": json.loads(event.document),
    }
    # A device verifies the data as the handshake's clients do: MD5 of its canonical JSON.
    assert hashlib.md5(canonical(custom["data"]).encode()).hexdigest() == custom["checksum"]
    assert body["files"] == [
        {
            "courseId": str(CUSTOM),
            "fileId": f.file_id,
            "session": f.session,
            "md5": f.md5,
            "sha256": f.sha256,
            "sizeBytes": f.size_bytes,
            "contentType": "audio/mpeg",
            "path": f"/me/custom-courses/{CUSTOM}/files/{f.file_id}",
        }
        for f in event.files
    ]
    again = await post(client, identity, SYNC, {"cursor": body["cursor"]})
    assert again == {
        "cursor": body["cursor"],
        "courses": [],
        "removed": [],
        "files": [],
        "more": False,
    }


async def test_a_regeneration_returns_the_course_with_exactly_that_file_changed(
    client: Any, world: World, identity: TestIdentity
) -> None:
    await world.event(content(1), CUSTOM, 1)
    first = await post(client, identity, SYNC, {})

    await world.event(content(3, second_sha256="c" * 64), CUSTOM, 3)
    second = await post(client, identity, SYNC, {"cursor": first["cursor"]})

    (course,) = second["courses"]
    assert course["courseId"] == str(CUSTOM)
    assert course["checksum"] == content(3, second_sha256="c" * 64).checksum
    assert course["checksum"] != first["courses"][0]["checksum"]
    assert second["files"][0] == first["files"][0]
    assert second["files"][1]["sha256"] == "c" * 64
    assert {k for k in second["files"][1] if second["files"][1][k] != first["files"][1][k]} == {
        "sha256",
        "md5",
    }


async def test_an_older_version_arriving_late_or_a_replay_changes_nothing(
    client: Any, world: World, identity: TestIdentity, db: Database
) -> None:
    newest = envelope(content(3, second_sha256="c" * 64), aggregate_id=CUSTOM, aggregate_version=3)
    await deliver(db, subscriptions(), newest)
    synced = await post(client, identity, SYNC, {})

    await world.event(content(1), CUSTOM, 1)  # late: an older version
    await deliver(db, subscriptions(), newest)  # the same message again
    await world.event(content(3, second_sha256="c" * 64), CUSTOM, 3)  # republished as is

    after = await post(client, identity, SYNC, {"cursor": synced["cursor"]})
    assert (after["cursor"], after["courses"], after["files"]) == (synced["cursor"], [], [])
    fresh = await post(client, identity, SYNC, {})
    assert fresh["courses"] == synced["courses"]
    assert fresh["files"] == synced["files"]


async def test_another_buyer_never_sees_it(
    client: Any, world: World, identity: TestIdentity
) -> None:
    await world.course()
    await world.entitle(user_id=OTHER_BUYER)
    await world.event(content(1), CUSTOM, 1)

    body = await post(client, identity, SYNC, {}, user=OTHER_BUYER)
    report = await post(
        client,
        identity,
        SANITY,
        {"counts": {"courses": 1}, "checksums": {str(CUSTOM): content(1).checksum}},
        user=OTHER_BUYER,
    )

    assert [c["courseId"] for c in body["courses"]] == [str(COURSE)]
    assert body["files"] == []
    assert report["remove"] == [str(CUSTOM)]


async def test_sanity_reports_a_stale_custom_checksum(
    client: Any, world: World, identity: TestIdentity
) -> None:
    await world.event(content(1), CUSTOM, 1)
    held = {str(CUSTOM): content(1).checksum}
    await world.event(content(2, second_sha256="c" * 64), CUSTOM, 2)

    stale = await post(client, identity, SANITY, {"counts": {"courses": 1}, "checksums": held})
    current = {str(CUSTOM): content(2, second_sha256="c" * 64).checksum}
    fine = await post(client, identity, SANITY, {"counts": {"courses": 1}, "checksums": current})
    empty = await post(client, identity, SANITY, {"counts": {"courses": 0}, "checksums": {}})

    assert stale == {"ok": False, "refetch": [str(CUSTOM)], "remove": [], "missing": []}
    assert fine["ok"] is True
    assert empty["missing"] == [str(CUSTOM)]


async def test_an_offline_operation_on_a_custom_course_is_refused(
    client: Any, world: World, identity: TestIdentity
) -> None:
    await world.event(content(1), CUSTOM, 1)
    operation = {
        "id": str(uuid.uuid4()),
        "type": "start",
        "courseId": str(CUSTOM),
        "at": (NOW - timedelta(minutes=1)).isoformat(),
    }

    body = await post(client, identity, OPERATIONS, {"operations": [operation]})

    assert body["applied"] == []
    assert [(r["id"], r["code"]) for r in body["rejected"]] == [
        (operation["id"], "COURSE_NOT_OWNED")
    ]


async def test_a_content_event_on_jetstream_is_in_the_very_next_sync(
    database_url: str, nats_url: str, tmp_path: Path
) -> None:
    """The consumer reads custom-gen's stream, and the sync route catches up with it first."""
    identity = TestIdentity(tmp_path)
    settings = service_settings(
        SERVICE, database_url=database_url, nats_url=nats_url, identity=identity
    )
    user = f"user_{uuid.uuid4().hex[:8]}"
    course_id = uuid.uuid4()
    payload = msgspec.structs.replace(content(1, user_id=user), custom_course_id=course_id)
    async with AsyncTestClient(create_app(settings)) as client:
        nc = await nats.connect(nats_url)
        try:
            env = envelope(payload, aggregate_id=course_id, aggregate_version=1)
            await nc.jetstream().publish(
                subject_for(env.type), encode(env), headers={"Nats-Msg-Id": str(env.id)}
            )
        finally:
            await nc.close()

        body = await post(client, identity, SYNC, {}, user=user)

    assert [(c["courseId"], c["kind"]) for c in body["courses"]] == [(str(course_id), "custom")]
    assert [f["path"] for f in body["files"]] == [
        f"/me/custom-courses/{course_id}/files/{f.file_id}" for f in payload.files
    ]
