"""The chassis' S3 bucket against a real S3 (the devstack plugin's SeaweedFS)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from coursemesh.chassis.objects import ObjectStoreError, S3Bucket


def _bucket(s3_config: Any, name: str) -> S3Bucket:
    return S3Bucket(
        endpoint=s3_config.endpoint,
        access_key=s3_config.access_key,
        secret_key=s3_config.secret_key,
        region=s3_config.region,
        bucket=name,
    )


async def test_a_put_object_is_got_back_with_its_content_type(s3_config: Any) -> None:
    bucket = _bucket(s3_config, f"chassis-{uuid.uuid4().hex[:12]}")
    await bucket.ensure_bucket()
    await bucket.ensure_bucket()  # a second call finds it

    await bucket.put("a/b.pdf", b"%PDF-1.4 body", "application/pdf")

    assert await bucket.get("a/b.pdf") == b"%PDF-1.4 body"
    head = s3_config.client().head_object(Bucket=bucket.bucket, Key="a/b.pdf")
    assert head["ContentType"] == "application/pdf"


async def test_a_missing_object_or_wrong_secret_is_an_object_store_error(s3_config: Any) -> None:
    bucket = _bucket(s3_config, f"chassis-{uuid.uuid4().hex[:12]}")
    await bucket.ensure_bucket()
    with pytest.raises(ObjectStoreError):
        await bucket.get("nothing-here")
    wrong = S3Bucket(
        endpoint=s3_config.endpoint,
        access_key=s3_config.access_key,
        secret_key="not-the-secret",
        region=s3_config.region,
        bucket=bucket.bucket,
    )
    with pytest.raises(ObjectStoreError):
        await wrong.put("x", b"x", "text/plain")


async def test_head_tells_size_and_type_and_none_for_a_missing_object(s3_config: Any) -> None:
    bucket = _bucket(s3_config, f"chassis-{uuid.uuid4().hex[:12]}")
    await bucket.ensure_bucket()
    assert await bucket.head("audio/none.mp3") is None

    await bucket.put("audio/one.mp3", b"ID3" + bytes(range(256)) * 4, "audio/mpeg")

    info = await bucket.head("audio/one.mp3")
    assert info is not None
    assert (info.size, info.content_type) == (3 + 1024, "audio/mpeg")
    assert info.etag


async def test_open_streams_a_range_and_honours_if_none_match(s3_config: Any) -> None:
    bucket = _bucket(s3_config, f"chassis-{uuid.uuid4().hex[:12]}")
    await bucket.ensure_bucket()
    body = bytes(range(256)) * 1000
    await bucket.put("blob.bin", body, "application/octet-stream")

    whole = await bucket.open("blob.bin")
    assert (whole.status, whole.length, whole.total_size) == (200, len(body), len(body))
    assert b"".join([c async for c in whole.chunks(chunk_bytes=10_000)]) == body

    part = await bucket.open("blob.bin", first=1000, last=1999)
    assert (part.status, part.length, part.total_size) == (206, 1000, len(body))
    assert part.content_range == f"bytes 1000-1999/{len(body)}"
    assert b"".join([c async for c in part.chunks()]) == body[1000:2000]

    tail = await bucket.open("blob.bin", first=len(body) - 5)
    assert b"".join([c async for c in tail.chunks()]) == body[-5:]

    assert whole.etag is not None
    unchanged = await bucket.open("blob.bin", if_none_match=whole.etag)
    assert (unchanged.status, unchanged.length) == (304, 0)
    assert [c async for c in unchanged.chunks()] == []

    with pytest.raises(ObjectStoreError):
        await bucket.open("missing.bin")
