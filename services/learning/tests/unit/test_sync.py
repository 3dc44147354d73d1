"""Offline sync's pure parts (cursor, document and checksum, merge order) and the player's
superseded check on in-memory ports (unit: no I/O)."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec
import pytest

from coursemesh.chassis.errors import DomainError
from coursemesh.learning.app import player
from coursemesh.learning.domain.model import Clock
from coursemesh.learning.domain.sync import (
    CustomCourse,
    CustomFile,
    Operation,
    SyncDocument,
    course_document,
    custom_document,
    custom_files,
    decode_cursor,
    encode_cursor,
    merge_order,
    require_not_future,
)

from .fakes import COURSE, ITEM_A0, WORKOUT_A, FakeReader, FakeStorage, State, add_course, entitle

BUYER = "user_buyer"
NOW = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)
TOKYO = ZoneInfo("Asia/Tokyo")


def _code(raised: pytest.ExceptionInfo[DomainError]) -> str:
    return raised.value.code


# --- cursor ------------------------------------------------------------------------------------


def test_a_cursor_round_trips_and_is_deterministic() -> None:
    assert encode_cursor(42) == encode_cursor(42)
    assert decode_cursor(encode_cursor(42), counter=42) == 42
    assert decode_cursor(None, counter=7) == 0


@pytest.mark.parametrize("cursor", ["", "42", "v1.", "v1.-1", "v1.01", "v2.3", "v1.3 ", "v1.8"])
def test_a_cursor_the_buyer_cannot_hold_is_refused(cursor: str) -> None:
    with pytest.raises(DomainError) as raised:
        decode_cursor(cursor, counter=7)
    assert (raised.value.status, _code(raised)) == (422, "SYNC_CURSOR_INVALID")


# --- document ----------------------------------------------------------------------------------


async def test_the_checksum_is_the_md5_of_the_canonical_document() -> None:
    state = State()
    add_course(state)
    entitle(state, BUYER)
    snapshot = await FakeReader(state).snapshot(BUYER, COURSE)
    assert snapshot is not None

    document = course_document(snapshot)
    body = msgspec.to_builtins(document)
    signed = body.pop("checksum")
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    assert hashlib.md5(canonical.encode()).hexdigest() == signed
    assert course_document(snapshot) == document  # the same state, the same checksum
    assert [d["dayOffset"] for d in body["days"]] == [0, 1, 2]
    assert body["kind"] == "trainer"
    assert body["state"]["completedItemIds"] == []


async def test_a_completion_changes_the_checksum() -> None:
    state = State()
    add_course(state)
    entitle(state, BUYER)
    storage = FakeStorage(state)
    before = await FakeReader(state).snapshot(BUYER, COURSE)
    assert before is not None

    await player.mark_complete(storage, BUYER, COURSE, WORKOUT_A, 0, Clock(now=NOW, zone=TOKYO))
    after = await FakeReader(state).snapshot(BUYER, COURSE)
    assert after is not None

    assert course_document(after).checksum != course_document(before).checksum
    assert course_document(after).state.completed_item_ids == [str(ITEM_A0)]


# --- merge order -------------------------------------------------------------------------------


def test_operations_merge_by_instant_then_id() -> None:
    ids = sorted((uuid.uuid4() for _ in range(3)), key=str)
    late = Operation(id=ids[0], type="unmark", course_id=COURSE, at=NOW, workout_id=WORKOUT_A)
    tie_b = Operation(id=ids[2], type="complete", course_id=COURSE, at=NOW - timedelta(hours=1))
    tie_a = Operation(id=ids[1], type="start", course_id=COURSE, at=NOW - timedelta(hours=1))

    assert merge_order([late, tie_b, tie_a]) == [tie_a, tie_b, late]


def test_an_instant_beyond_the_clock_skew_is_refused() -> None:
    require_not_future(NOW + timedelta(minutes=5), NOW)
    with pytest.raises(DomainError) as raised:
        require_not_future(NOW + timedelta(minutes=6), NOW)
    assert _code(raised) == "AT_IN_FUTURE"
    with pytest.raises(DomainError) as raised:
        require_not_future(datetime.fromisoformat("0001-01-01T00:00:00+14:00"), NOW)
    assert _code(raised) == "AT_OUT_OF_RANGE"


# --- the player's superseded check ---------------------------------------------------------------


async def test_an_offline_change_older_than_the_items_last_change_is_superseded() -> None:
    state = State()
    add_course(state)
    entitle(state, BUYER)
    storage = FakeStorage(state)
    t1, t2 = NOW - timedelta(hours=2), NOW - timedelta(hours=1)

    await player.mark_complete(
        storage, BUYER, COURSE, WORKOUT_A, 0, Clock(now=t1, zone=TOKYO), offline=True
    )
    await player.unmark_complete(
        storage, BUYER, COURSE, WORKOUT_A, 0, Clock(now=t2, zone=TOKYO), offline=True
    )
    counter = state.sync_counters[BUYER]
    with pytest.raises(DomainError) as raised:
        await player.mark_complete(
            storage,
            BUYER,
            COURSE,
            WORKOUT_A,
            0,
            Clock(now=t1 + timedelta(minutes=30), zone=TOKYO),
            offline=True,
        )

    assert _code(raised) == "SUPERSEDED"
    assert state.completions.get(next(iter(state.entitlements)), {}) == {}
    assert state.sync_counters[BUYER] == counter  # the refusal stamped nothing
    assert counter == 2
    assert state.sync_library[(BUYER, COURSE)] == 2


async def test_a_completion_keeps_the_devices_instant() -> None:
    state = State()
    add_course(state)
    entitlement = entitle(state, BUYER)
    at = NOW - timedelta(days=1)

    await player.mark_complete(
        FakeStorage(state), BUYER, COURSE, WORKOUT_A, 0, Clock(now=at, zone=TOKYO), offline=True
    )

    assert state.completions[entitlement.entitlement_id][ITEM_A0].completed_at == at
    assert state.item_changes[(entitlement.entitlement_id, ITEM_A0)] == (at, True)


# --- custom courses ----------------------------------------------------------------------------


def test_a_custom_document_carries_the_data_its_checksum_is_over_and_its_files_paths() -> None:
    text = '{"audio_files":[],"title":"Schlaf für Sam"}'
    course_id = uuid.uuid4()
    held = CustomCourse(
        course_id=course_id,
        checksum=hashlib.md5(text.encode()).hexdigest(),
        size_bytes=len(text.encode()),
        document=text,
        files=[
            CustomFile(
                file_id="f1",
                session=1,
                md5="0" * 32,
                sha256=None,
                size_bytes=10,
                content_type="audio/mpeg",
            )
        ],
    )

    document = custom_document(held)
    encoded = json.loads(msgspec.json.encode(document))
    (file,) = custom_files(held)

    assert encoded["kind"] == "custom"
    assert encoded["data"] == json.loads(text)
    canonical = json.dumps(
        encoded["data"], sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    assert hashlib.md5(canonical.encode()).hexdigest() == document.checksum
    assert file.path == f"/me/custom-courses/{course_id}/files/f1"
    # The two kinds decode back by their tag.
    assert msgspec.json.decode(msgspec.json.encode(document), type=SyncDocument) == document
