"""Content-addressed audio and the file routes on real PostgreSQL and SeaweedFS: identical
bytes are stored once and never uploaded again; the manifest describes the stored bytes; a
download resumes by ranges and verifies by SHA-256; conditional and refused requests."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from coursemesh.chassis.db import Database
from coursemesh.chassis.testing import TestIdentity
from coursemesh.customgen.adapters.courses_sql import SqlCourseStore
from coursemesh.customgen.adapters.s3 import S3AudioStore
from coursemesh.customgen.app import regen
from coursemesh.customgen.app.ports import Pcm
from coursemesh.customgen.bootstrap import build_adapters, build_runner, build_store
from coursemesh.customgen.domain.intake import Voice
from coursemesh.customgen.main import create_app
from coursemesh.customgen.settings import Settings

from .conftest import BUYER, ORG, OTHER_BUYER, STAFF, generate_now, make_settings, make_staff


class SteadySpeech:
    """Speech whose samples depend on the text alone. eSpeak NG varies its output from one call
    to the next, so identical bytes (what content addressing deduplicates) need a steady voice;
    the encoder and the store stay real."""

    async def synthesize(self, text: str, voice: Voice) -> Pcm:
        digest = hashlib.sha256(f"{voice}:{text}".encode()).digest()
        return Pcm(digest * 500, 16_000)


class CountingStore(S3AudioStore):
    """The real store, counting the uploads that reach S3."""

    uploads: list[str]

    async def put(self, key: str, body: bytes, content_type: str, md5_hex: str) -> None:
        self.uploads.append(key)
        await super().put(key, body, content_type, md5_hex)


def counting_store(settings: Settings) -> CountingStore:
    real = build_store(settings)
    store = CountingStore(
        endpoint=settings.s3_endpoint,
        access_key=settings.s3_access_key,
        secret_key=settings.s3_secret_key,
        bucket=real.bucket,
        region=settings.s3_region,
    )
    store.uploads = []
    return store


@dataclass
class World:
    settings: Settings
    store: CountingStore
    bucket: str
    s3: Any
    courses: tuple[uuid.UUID, uuid.UUID]
    """Two ready courses of the buyer from the same intake: the same audio bytes."""

    def sha256_objects(self) -> list[str]:
        listing = self.s3.client().list_objects_v2(Bucket=self.bucket, Prefix="audio/sha256/")
        return [o["Key"] for o in listing.get("Contents", [])]

    def object(self, key: str) -> bytes:
        body: bytes = self.s3.client().get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return body


@pytest.fixture
async def world(
    database_url: str, nats_url: str, identity: TestIdentity, s3: Any, db: Database
) -> World:
    # A bucket of its own: the objects counted are this test's only.
    bucket = f"cg-files-{uuid.uuid4().hex[:12]}"
    s3.ensure_bucket(bucket)
    settings = make_settings(
        database_url, nats_url, identity, s3, s3_bucket=bucket, run_workers=False, catch_up=False
    )
    store = counting_store(settings)
    first = await generate_now(db, settings, store=store, speech=SteadySpeech())
    second = await generate_now(db, settings, store=store, speech=SteadySpeech())
    return World(settings, store, bucket, s3, (first, second))


async def audio_of(db: Database, course_id: uuid.UUID) -> list[dict[str, Any]]:
    async with SqlCourseStore(db).reading() as reader:
        course = await reader.course_document(BUYER, course_id)
    assert course is not None
    files: list[dict[str, Any]] = json.loads(course.data)["audio_files"]
    return files


async def test_identical_audio_of_two_courses_is_one_object(world: World, db: Database) -> None:
    (one,) = await audio_of(db, world.courses[0])
    (two,) = await audio_of(db, world.courses[1])
    assert one["id"] != two["id"]
    assert one["sha256"] == two["sha256"]
    assert (
        one["object_key"]
        == two["object_key"]
        == f"audio/sha256/{one['sha256'][:2]}/{one['sha256']}.mp3"
    )
    assert world.sha256_objects() == [one["object_key"]]
    assert world.store.uploads == [one["object_key"]]
    body = world.object(one["object_key"])
    assert hashlib.sha256(body).hexdigest() == one["sha256"]
    assert hashlib.md5(body).hexdigest() == one["checksum"]
    assert (len(body), one["content_type"]) == (one["size_bytes"], "audio/mpeg")


async def test_a_regeneration_with_identical_bytes_uploads_nothing_and_deletes_nothing(
    world: World, db: Database
) -> None:
    await make_staff(db)
    course_id = world.courses[0]
    (before,) = await audio_of(db, course_id)
    store = SqlCourseStore(db)
    created = await regen.create_regen_request(
        store,
        user_id=BUYER,
        course_id=course_id,
        audio_id=uuid.UUID(before["id"]),
        reason="Once more",
        daily_limit=3,
    )
    await regen.decide_on_regen_request(
        store,
        organization_id=ORG,
        request_id=created.id,
        staff_user_id=STAFF,
        approve=True,
        note=None,
    )
    uploads = list(world.store.uploads)
    adapters = build_adapters(world.settings, world.store)
    adapters.speech = SteadySpeech()
    runner = build_runner(db, world.settings, adapters)
    while await runner.run_once():
        pass
    (after,) = await audio_of(db, course_id)
    assert after["generation"] == 2
    assert (after["object_key"], after["sha256"]) == (before["object_key"], before["sha256"])
    assert world.store.uploads == uploads
    # The object both courses name is still there.
    assert world.sha256_objects() == [before["object_key"]]


@pytest.fixture
async def client(world: World) -> AsyncIterator[Any]:
    async with AsyncTestClient(create_app(world.settings)) as test_client:
        yield test_client


async def test_the_manifest_describes_the_stored_bytes(
    world: World, client: Any, identity: TestIdentity
) -> None:
    course_id = world.courses[0]
    answer = await client.get(
        f"/me/custom-courses/{course_id}/files", headers=identity.headers(BUYER)
    )
    assert answer.status_code == 200, answer.text
    manifest = answer.json()
    assert manifest["customCourseId"] == str(course_id)
    course = (
        await client.get(f"/me/custom-courses/{course_id}", headers=identity.headers(BUYER))
    ).json()
    assert manifest["checksum"] == course["checksum"]
    (file,) = manifest["files"]
    (entry,) = course["data"]["audio_files"]
    assert (file["fileId"], file["session"]) == (entry["id"], 1)
    body = world.object(entry["object_key"])
    assert file["md5"] == hashlib.md5(body).hexdigest()
    assert file["sha256"] == hashlib.sha256(body).hexdigest()
    assert (file["sizeBytes"], file["contentType"]) == (len(body), "audio/mpeg")
    assert file["path"] == f"/me/custom-courses/{course_id}/files/{entry['id']}"
    expires = datetime.fromisoformat(file["urlExpiresAt"])
    assert expires > datetime.now(UTC)
    async with httpx.AsyncClient() as http:
        fetched = await http.get(file["url"])
    assert fetched.content == body


async def test_a_download_resumes_by_ranges_and_verifies(
    world: World, client: Any, identity: TestIdentity
) -> None:
    me = identity.headers(BUYER)
    course_id = world.courses[0]
    (file,) = (await client.get(f"/me/custom-courses/{course_id}/files", headers=me)).json()[
        "files"
    ]
    path, size, etag = file["path"], file["sizeBytes"], f'"{file["sha256"]}"'
    half = size // 2

    first = await client.get(path, headers={**me, "Range": f"bytes=0-{half - 1}"})
    assert first.status_code == 206, first.text
    assert first.headers["content-range"] == f"bytes 0-{half - 1}/{size}"
    assert first.headers["content-length"] == str(half)
    assert (first.headers["etag"], first.headers["accept-ranges"]) == (etag, "bytes")
    assert first.headers["content-type"] == "audio/mpeg"
    rest = await client.get(path, headers={**me, "Range": f"bytes={half}-", "If-Range": etag})
    assert rest.status_code == 206
    assert rest.headers["content-range"] == f"bytes {half}-{size - 1}/{size}"
    assert hashlib.sha256(first.content + rest.content).hexdigest() == file["sha256"]

    whole = await client.get(path, headers=me)
    assert whole.status_code == 200
    assert whole.headers["content-length"] == str(size)
    assert hashlib.md5(whole.content).hexdigest() == file["md5"]
    tail = await client.get(path, headers={**me, "Range": "bytes=-10"})
    assert (tail.status_code, tail.content) == (206, whole.content[-10:])

    not_modified = await client.get(path, headers={**me, "If-None-Match": etag})
    assert (not_modified.status_code, not_modified.content) == (304, b"")
    assert not_modified.headers["etag"] == etag
    changed = await client.get(path, headers={**me, "Range": "bytes=0-9", "If-Range": '"old"'})
    assert (changed.status_code, changed.content) == (200, whole.content)
    malformed = await client.get(path, headers={**me, "Range": "bytes=oops"})
    assert (malformed.status_code, malformed.content) == (200, whole.content)

    past = await client.get(path, headers={**me, "Range": f"bytes={size}-"})
    assert past.status_code == 416
    assert past.headers["content-range"] == f"bytes */{size}"
    assert past.headers["content-type"].startswith("application/problem+json")
    assert past.json()["code"] == "RANGE_NOT_SATISFIABLE"


async def test_only_the_owner_gets_the_files(
    world: World, client: Any, identity: TestIdentity
) -> None:
    course_id = world.courses[0]
    me = identity.headers(BUYER)
    (file,) = (await client.get(f"/me/custom-courses/{course_id}/files", headers=me)).json()[
        "files"
    ]
    other = identity.headers(OTHER_BUYER)
    for path in (f"/me/custom-courses/{course_id}/files", file["path"]):
        refused = await client.get(path, headers=other)
        assert refused.status_code == 404
        assert refused.json()["code"] == "CUSTOM_COURSE_NOT_FOUND"
        assert (await client.get(path)).status_code == 401
    unknown = await client.get(f"/me/custom-courses/{course_id}/files/{uuid.uuid4()}", headers=me)
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "FILE_NOT_FOUND"
    missing = await client.get(f"/me/custom-courses/{uuid.uuid4()}/files", headers=me)
    assert missing.json()["code"] == "CUSTOM_COURSE_NOT_FOUND"
    # The v1 handshake answers as before.
    synced = await client.post("/me/custom-courses/handshake", json={"courses": []}, headers=me)
    assert synced.status_code == 200
    assert sorted(c["id"] for c in synced.json()["missing"]) == sorted(
        str(c) for c in world.courses
    )
