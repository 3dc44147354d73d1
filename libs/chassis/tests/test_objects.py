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
