"""Every refusal: status, stable code, and nothing changed (rows and outbox identical)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from coursemesh.chassis.db import Database
from coursemesh.chassis.testing import TestIdentity
from coursemesh.customgen.main import create_app
from coursemesh.customgen.settings import Settings

from .conftest import (
    BRIEF_INTAKE,
    BUYER,
    ORG,
    OTHER_BUYER,
    STAFF,
    generate_now,
    make_settings,
    make_staff,
    purchase,
    snapshot,
)


@pytest.fixture
def quiet_settings(database_url: str, nats_url: str, identity: TestIdentity, s3: Any) -> Settings:
    # No workers: a refused request must change nothing by itself, not thanks to timing.
    return make_settings(
        database_url,
        nats_url,
        identity,
        s3,
        run_workers=False,
        catch_up=False,
        handshake_max_courses=3,
        regen_daily_limit=2,
    )


@pytest.fixture
async def client(quiet_settings: Settings) -> AsyncIterator[Any]:
    async with AsyncTestClient(create_app(quiet_settings)) as test_client:
        yield test_client


async def refused(
    db: Database, client: Any, method: str, path: str, status: int, code: str, **kw: Any
) -> dict[str, Any]:
    before = await snapshot(db)
    response = await client.request(method, path, **kw)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    assert await snapshot(db) == before
    return body


async def test_submit_without_token_is_401(db: Database, client: Any) -> None:
    purchase_id = await purchase(db)
    body = {"purchaseId": str(purchase_id), "intake": BRIEF_INTAKE}
    await refused(db, client, "POST", "/me/custom-courses", 401, "MISSING_TOKEN", json=body)


async def test_submit_with_a_foreign_purchase_is_404(
    db: Database, client: Any, identity: TestIdentity
) -> None:
    purchase_id = await purchase(db, OTHER_BUYER)
    body = {"purchaseId": str(purchase_id), "intake": BRIEF_INTAKE}
    headers = identity.headers(BUYER)
    await refused(
        db,
        client,
        "POST",
        "/me/custom-courses",
        404,
        "PURCHASE_NOT_FOUND",
        json=body,
        headers=headers,
    )


async def test_submit_with_a_used_purchase_is_409(
    db: Database, client: Any, identity: TestIdentity
) -> None:
    purchase_id = await purchase(db)
    body = {"purchaseId": str(purchase_id), "intake": BRIEF_INTAKE}
    headers = identity.headers(BUYER)
    first = await client.post("/me/custom-courses", json=body, headers=headers)
    assert first.status_code == 202
    problem = await refused(
        db,
        client,
        "POST",
        "/me/custom-courses",
        409,
        "PURCHASE_ALREADY_USED",
        json=body,
        headers=headers,
    )
    assert problem["customCourseId"] == first.json()["id"]


@pytest.mark.parametrize(
    ("intake", "path"),
    [
        ({"preferredName": "Sam"}, "$.intake"),
        ({"goal": "ok", "preferredName": "Sam"}, "$.intake.goal"),
        ({"goal": "x" * 501, "preferredName": "Sam"}, "$.intake.goal"),
        (
            {"goal": "Sleep well", "preferredName": "Sam", "sessionCount": 0},
            "$.intake.sessionCount",
        ),
        ({"goal": "Sleep well", "preferredName": "Sam", "voice": "robot"}, "$.intake.voice"),
        ({"goal": "Sleep well", "preferredName": "Sam", "mood": "x"}, "$.intake"),
    ],
    ids=["no-goal", "short-goal", "long-goal", "zero-sessions", "bad-voice", "unknown-field"],
)
async def test_malformed_intake_is_400(
    db: Database, client: Any, identity: TestIdentity, intake: dict[str, Any], path: str
) -> None:
    purchase_id = await purchase(db)
    problem = await refused(
        db,
        client,
        "POST",
        "/me/custom-courses",
        400,
        "VALIDATION_FAILED",
        json={"purchaseId": str(purchase_id), "intake": intake},
        headers=identity.headers(BUYER),
    )
    assert any(e["path"].startswith(path) for e in problem["errors"]), problem


async def test_blank_goal_is_refused(db: Database, client: Any, identity: TestIdentity) -> None:
    purchase_id = await purchase(db)
    intake = {"goal": "      ", "preferredName": "Sam"}
    await refused(
        db,
        client,
        "POST",
        "/me/custom-courses",
        400,
        "INTAKE_INVALID",
        json={"purchaseId": str(purchase_id), "intake": intake},
        headers=identity.headers(BUYER),
    )


async def test_oversized_body_is_413(db: Database, client: Any, identity: TestIdentity) -> None:
    purchase_id = await purchase(db)
    intake = {**BRIEF_INTAKE, "goal": "x" * 2_000_000}
    await refused(
        db,
        client,
        "POST",
        "/me/custom-courses",
        413,
        "PAYLOAD_TOO_LARGE",
        json={"purchaseId": str(purchase_id), "intake": intake},
        headers=identity.headers(BUYER),
    )


async def test_reads_need_a_token_and_the_owner(
    db: Database, settings: Settings, client: Any, identity: TestIdentity
) -> None:
    course_id = await generate_now(db, settings)
    await refused(db, client, "GET", f"/me/custom-courses/{course_id}", 401, "MISSING_TOKEN")
    await refused(db, client, "GET", "/me/custom-courses", 401, "MISSING_TOKEN")
    await refused(
        db,
        client,
        "POST",
        "/me/custom-courses/handshake",
        401,
        "MISSING_TOKEN",
        json={"courses": []},
    )
    other = identity.headers(OTHER_BUYER)
    await refused(
        db,
        client,
        "GET",
        f"/me/custom-courses/{course_id}",
        404,
        "CUSTOM_COURSE_NOT_FOUND",
        headers=other,
    )
    assert (await client.get("/me/custom-courses", headers=other)).json() == []
    # A foreign course id in a handshake is reported as removed, never returned.
    answer = await client.post(
        "/me/custom-courses/handshake",
        json={"courses": [{"id": str(course_id), "checksum": "0" * 32}]},
        headers=other,
    )
    assert answer.json() == {
        "changed": [],
        "missing": [],
        "removed": [str(course_id)],
        "unchangedCount": 0,
    }
    await refused(
        db,
        client,
        "GET",
        f"/me/custom-courses/{uuid.uuid4()}",
        404,
        "CUSTOM_COURSE_NOT_FOUND",
        headers=identity.headers(BUYER),
    )


async def test_oversized_handshake_is_413(
    db: Database, client: Any, identity: TestIdentity
) -> None:
    courses = [{"id": str(uuid.uuid4()), "checksum": "0" * 32} for _ in range(4)]
    await refused(
        db,
        client,
        "POST",
        "/me/custom-courses/handshake",
        413,
        "HANDSHAKE_TOO_LARGE",
        json={"courses": courses},
        headers=identity.headers(BUYER),
    )


@pytest.mark.parametrize("checksum", ["abc", "0" * 31 + "G", "0" * 32 + "0", "A" * 32])
async def test_badly_formed_checksum_is_400(
    db: Database, client: Any, identity: TestIdentity, checksum: str
) -> None:
    problem = await refused(
        db,
        client,
        "POST",
        "/me/custom-courses/handshake",
        400,
        "VALIDATION_FAILED",
        json={"courses": [{"id": str(uuid.uuid4()), "checksum": checksum}]},
        headers=identity.headers(BUYER),
    )
    assert problem["errors"][0]["path"] == "$.courses[0].checksum"


@pytest.mark.parametrize(
    ("content", "code", "path"),
    [
        (b'{"courses": [', "MALFORMED_JSON", None),
        (b'{"courses": []} trailing', "MALFORMED_JSON", None),
        (b'{"courses": [], "\xff": 1}', "VALIDATION_FAILED", "$.\\xff"),  # not UTF-8
        (b'{"courses": [], "x": "\\u0000"}', "VALIDATION_FAILED", "$.x"),  # not storable
        (b"[" * 40 + b"]" * 40, "JSON_TOO_DEEP", None),
        (b"", "VALIDATION_FAILED", "$"),  # no body: `null`
        (b"[]", "VALIDATION_FAILED", "$"),
        (b"{}", "VALIDATION_FAILED", "$.courses"),
        (b'{"courses": [], "x": 1}', "VALIDATION_FAILED", "$.x"),
        (
            b'{"courses": [{"id": "nope", "checksum": "' + b"0" * 32 + b'"}]}',
            "VALIDATION_FAILED",
            "$.courses[0].id",
        ),
        (
            b'{"courses": [{"id": "' + str(uuid.UUID(int=1)).encode() + b'"}]}',
            "VALIDATION_FAILED",
            "$.courses[0].checksum",
        ),
    ],
)
async def test_a_handshake_body_that_is_not_one_is_400(
    db: Database,
    client: Any,
    identity: TestIdentity,
    content: bytes,
    code: str,
    path: str | None,
) -> None:
    problem = await refused(
        db,
        client,
        "POST",
        "/me/custom-courses/handshake",
        400,
        code,
        content=content,
        headers={**identity.headers(BUYER), "Content-Type": "application/json"},
    )
    assert [e["path"] for e in problem.get("errors", [])] == ([] if path is None else [path])


async def test_a_handshake_without_a_token_is_401_before_its_body_is_read(
    db: Database, client: Any
) -> None:
    await refused(
        db, client, "POST", "/me/custom-courses/handshake", 401, "MISSING_TOKEN", content=b"{"
    )


async def test_regen_request_refusals(
    db: Database, settings: Settings, client: Any, identity: TestIdentity
) -> None:
    course_id = await generate_now(db, settings)
    me = identity.headers(BUYER)
    detail = (await client.get(f"/me/custom-courses/{course_id}", headers=me)).json()
    audio_id = detail["data"]["audio_files"][0]["id"]
    path = f"/me/custom-courses/{course_id}/regen-requests"
    good = {"audioId": audio_id, "reason": "Too fast"}

    await refused(db, client, "POST", path, 401, "MISSING_TOKEN", json=good)
    await refused(
        db,
        client,
        "POST",
        path,
        404,
        "CUSTOM_COURSE_NOT_FOUND",
        json=good,
        headers=identity.headers(OTHER_BUYER),
    )
    await refused(
        db,
        client,
        "POST",
        f"/me/custom-courses/{uuid.uuid4()}/regen-requests",
        404,
        "CUSTOM_COURSE_NOT_FOUND",
        json=good,
        headers=me,
    )
    await refused(
        db,
        client,
        "POST",
        path,
        404,
        "AUDIO_NOT_FOUND",
        json={"audioId": str(uuid.uuid4()), "reason": "Too fast"},
        headers=me,
    )
    await refused(
        db,
        client,
        "POST",
        path,
        400,
        "VALIDATION_FAILED",
        json={"audioId": audio_id, "reason": ""},
        headers=me,
    )
    assert (await client.post(path, json=good, headers=me)).status_code == 201
    await refused(db, client, "POST", path, 409, "REGEN_ALREADY_OPEN", json=good, headers=me)


async def test_regen_daily_limit_is_429(
    db: Database, settings: Settings, client: Any, identity: TestIdentity
) -> None:
    course_id = await generate_now(db, settings, session_count=3)
    me = identity.headers(BUYER)
    detail = (await client.get(f"/me/custom-courses/{course_id}", headers=me)).json()
    ids = [a["id"] for a in detail["data"]["audio_files"]]
    path = f"/me/custom-courses/{course_id}/regen-requests"
    for audio_id in ids[:2]:  # the limit in these settings is 2
        created = await client.post(path, json={"audioId": audio_id, "reason": "Again"}, headers=me)
        assert created.status_code == 201
    await refused(
        db,
        client,
        "POST",
        path,
        429,
        "REGEN_DAILY_LIMIT",
        json={"audioId": ids[2], "reason": "Again"},
        headers=me,
    )


async def test_staff_routes_are_404_to_all_but_staff_and_refuse_decided_requests(
    db: Database, settings: Settings, client: Any, identity: TestIdentity
) -> None:
    course_id = await generate_now(db, settings)
    await make_staff(db)
    await make_staff(db, "user_member", role="member")
    await make_staff(db, "user_elsewhere", org=uuid.uuid4())
    # Staff removed later: the projection follows the newest version only.
    await make_staff(db, "user_former", version=1)
    await make_staff(db, "user_former", version=2, role=None)
    await make_staff(db, "user_former", version=1)  # stale redelivery, ignored
    me = identity.headers(BUYER)
    detail = (await client.get(f"/me/custom-courses/{course_id}", headers=me)).json()
    audio_id = detail["data"]["audio_files"][0]["id"]
    request = await client.post(
        f"/me/custom-courses/{course_id}/regen-requests",
        json={"audioId": audio_id, "reason": "Too fast"},
        headers=me,
    )
    request_id = request.json()["id"]
    approve = f"/organizations/{ORG}/regen-requests/{request_id}/approve"

    def staff_routes(org: uuid.UUID) -> list[tuple[str, str]]:
        requests = f"/organizations/{org}/regen-requests"
        return [
            ("GET", f"/organizations/{org}/custom-courses"),
            ("GET", requests),
            ("POST", f"{requests}/{request_id}/approve"),
            ("POST", f"{requests}/{request_id}/reject"),
        ]

    # The buyer, a plain member, staff of another organization and a removed member are told
    # exactly what an organization that does not exist tells them.
    unknown_org = uuid.uuid4()
    for outsider in (BUYER, "user_member", "user_elsewhere", "user_former"):
        headers = identity.headers(outsider)
        for (method, path), (_, unknown_path) in zip(
            staff_routes(ORG), staff_routes(unknown_org), strict=True
        ):
            body = await refused(db, client, method, path, 404, "NOT_FOUND", headers=headers)
            nowhere = await refused(
                db, client, method, unknown_path, 404, "NOT_FOUND", headers=headers
            )
            assert (body["title"], body["detail"]) == (nowhere["title"], nowhere["detail"])
    await refused(db, client, "POST", approve, 401, "MISSING_TOKEN")
    staff = identity.headers(STAFF)
    await refused(
        db,
        client,
        "POST",
        f"/organizations/{ORG}/regen-requests/{uuid.uuid4()}/approve",
        404,
        "REGEN_REQUEST_NOT_FOUND",
        headers=staff,
    )
    # Staff of another organization cannot reach it through their own.
    other_org = uuid.uuid4()
    await make_staff(db, STAFF, org=other_org)
    await refused(
        db,
        client,
        "POST",
        f"/organizations/{other_org}/regen-requests/{request_id}/approve",
        404,
        "REGEN_REQUEST_NOT_FOUND",
        headers=staff,
    )
    rejected = await client.post(
        f"/organizations/{ORG}/regen-requests/{request_id}/reject",
        json={"note": "It sounds right to us"},
        headers=staff,
    )
    assert rejected.status_code == 200
    assert rejected.json()["status"] == "rejected"
    await refused(db, client, "POST", approve, 409, "REGEN_ALREADY_DECIDED", headers=staff)
    mine = (await client.get(f"/me/custom-courses/{course_id}/regen-requests", headers=me)).json()
    assert [(r["status"], r["decisionNote"]) for r in mine] == [
        ("rejected", "It sounds right to us")
    ]
