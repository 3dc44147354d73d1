"""The handshake's comparison on stored checksums: every outcome at once, over HTTP."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
import sqlalchemy as sa
from litestar.testing import AsyncTestClient

from coursemesh.chassis.db import Database
from coursemesh.chassis.testing import TestIdentity
from coursemesh.customgen.adapters.tables import custom_courses
from coursemesh.customgen.domain.course import calculate_checksum
from coursemesh.customgen.main import create_app
from coursemesh.customgen.settings import Settings

from .conftest import BUYER, ORG, OTHER_BUYER, make_settings

HANDSHAKE = "/me/custom-courses/handshake"


@pytest.fixture
def quiet_settings(database_url: str, nats_url: str, identity: TestIdentity, s3: Any) -> Settings:
    return make_settings(database_url, nats_url, identity, s3, run_workers=False, catch_up=False)


@pytest.fixture
async def client(quiet_settings: Settings) -> AsyncIterator[Any]:
    async with AsyncTestClient(create_app(quiet_settings)) as test_client:
        yield test_client


async def _course(db: Database, user_id: str, title: str, status: str = "ready") -> dict[str, Any]:
    """A stored course (straight into the table: generating one would test the TTS engine)."""
    course_id = uuid.uuid4()
    # Quotes and a line separator: passed through as stored, never decoded and re-encoded.
    data = {"schema_version": 1, "metadata": {"title": title}, "scripts": ['"Be" \u2028 calm']}
    summed = calculate_checksum(data)
    async with db.engine.begin() as conn:
        await conn.execute(
            sa.insert(custom_courses).values(
                id=course_id,
                user_id=user_id,
                organization_id=ORG,
                purchase_id=uuid.uuid4(),
                course_code="X99ENB",
                title=title,
                description="",
                data=summed.text,
                checksum=summed.checksum,
                file_size_bytes=summed.size_bytes,
                status=status,
                version=1,
            )
        )
    return {"id": str(course_id), "checksum": summed.checksum, "text": summed.text}


async def test_changed_missing_removed_and_unchanged_together(
    db: Database, client: Any, identity: TestIdentity
) -> None:
    same, edited, dropped_by_client, other = (
        [await _course(db, BUYER, f"C{n}") for n in range(3)]
    ) + [await _course(db, OTHER_BUYER, "Theirs")]
    generating = await _course(db, BUYER, "Not yet", status="generating")
    unknown = str(uuid.uuid4())
    held = [
        {"id": edited["id"], "checksum": "f" * 32},
        {"id": same["id"].upper(), "checksum": same["checksum"]},  # any UUID form
        {"id": unknown, "checksum": "0" * 32},
        {"id": other["id"], "checksum": other["checksum"]},  # not the caller's
        {"id": generating["id"], "checksum": generating["checksum"]},  # not ready
        # Sent twice: counted once, where first sent, with the checksum sent last.
        {"id": edited["id"], "checksum": "e" * 32},
    ]

    answer = await client.post(HANDSHAKE, json={"courses": held}, headers=identity.headers(BUYER))

    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert [c["id"] for c in body["changed"]] == [edited["id"]]
    assert [c["id"] for c in body["missing"]] == [dropped_by_client["id"]]
    assert body["removed"] == [unknown, other["id"], generating["id"]]
    assert body["unchangedCount"] == 1
    # The stored text, byte for byte, inside the answer.
    assert f'"data":{edited["text"]}'.encode() in answer.content
    assert msgspec.json.decode(answer.content)["changed"][0]["checksum"] == edited["checksum"]

    everything = [{"id": c["id"], "checksum": c["checksum"]} for c in (same, edited)]
    everything.append({"id": dropped_by_client["id"], "checksum": dropped_by_client["checksum"]})
    answer = await client.post(
        HANDSHAKE, json={"courses": everything}, headers=identity.headers(BUYER)
    )
    assert answer.content == b'{"changed":[],"missing":[],"removed":[],"unchangedCount":3}'


# --- decoding: the fast path refuses exactly what the declared Struct refuses -----------------

ID = "0195f0a0-0000-7000-8000-000000000001"
GOOD = "0" * 31 + "f"


@pytest.mark.parametrize(
    "courses",
    [
        [{"id": ID, "checksum": GOOD}] * 3,
        [{"id": ID.upper().replace("-", ""), "checksum": GOOD}],
        [{"id": ID, "checksum": GOOD.upper()}],
        [{"id": ID, "checksum": GOOD[:-1]}, {"id": ID, "checksum": GOOD + "0"}],  # 31 + 33
        [{"id": ID, "checksum": "\u00e9" * 32}],
        [{"id": ID, "checksum": GOOD[:16] + " " + GOOD[17:]}],
        [{"id": ID, "checksum": GOOD}, {"id": "nope", "checksum": "zz"}],
        [{"checksum": "zz", "id": "nope"}],  # the first error in document order
        [{"id": "nope", "checksum": "zz"}],
        [{"id": ID, "checksum": GOOD, "more": 1}],
        [{"id": ID}],
    ],
)
def test_the_fast_decoding_agrees_with_the_declared_struct(courses: list[dict[str, str]]) -> None:
    from coursemesh.chassis.body import decode_json_body
    from coursemesh.customgen.http.handshake import Handshake, decode_handshake

    body = msgspec.json.encode({"courses": courses})

    def outcome(decode: Any) -> Any:
        try:
            return [(c.id, c.checksum) for c in decode()]
        except Exception as exc:  # the refusal: its type, errors and cause
            return (type(exc), getattr(exc, "extra", None), type(exc.__cause__))

    strict = msgspec.json.Decoder(Handshake)
    assert outcome(lambda: decode_handshake(body)) == outcome(
        lambda: decode_json_body(body, strict).courses
    )
