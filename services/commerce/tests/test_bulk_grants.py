"""Bulk grants from a CSV against real PostgreSQL through the app: a dry run says what each
row would do and writes nothing; the upload grants row by row (in several transactions for a
long file); uploading the same file again changes nothing; a file that cannot be read is
refused whole."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from commerce_support import BUYER, TRAINER, Harness

from coursemesh.chassis.testing import outbox_events
from coursemesh.commerce.adapters.tables import entitlements

FILE = (
    "userId,reason\n"
    "user_a,winner\n"
    "user_b,\n"  # the reason parameter
    " ,no user\n"
    "user_a,twice\n"
    "user_active,again\n"
    f"{BUYER},pays now\n"
    "user_c,third\n"
)


async def upload(
    h: Harness,
    org: uuid.UUID,
    course: uuid.UUID,
    content: bytes | str,
    by: str = TRAINER,
    **params: Any,
) -> Any:
    return await h.client.post(
        f"/organizations/{org}/courses/{course}/grants/bulk",
        content=content.encode() if isinstance(content, str) else content,
        params=params,
        headers={**h.auth(by), "content-type": "text/csv"},
    )


async def prepared(h: Harness) -> tuple[uuid.UUID, uuid.UUID]:
    """A course one user already has (granted) and the buyer is paying for (pending)."""
    org, course = await h.shop(price=4900)
    r = await h.client.post(
        f"/organizations/{org}/courses/{course}/grants",
        json={"userId": "user_active", "reason": "earlier"},
        headers=h.auth(TRAINER),
    )
    assert r.status_code == 201, r.text
    assert (await h.checkout(course)).status_code == 201
    return org, course


def outcomes(body: dict[str, Any]) -> list[tuple[int, str, str]]:
    return [(r["row"], r["userId"], r["outcome"]) for r in body["rows"]]


EXPECTED = [
    (1, "user_a", "granted"),
    (2, "user_b", "granted"),
    (3, None, "invalid"),
    (4, "user_a", "duplicate"),
    (5, "user_active", "already_active"),
    (6, BUYER, "pending_payment"),
    (7, "user_c", "granted"),
]


async def test_a_dry_run_says_what_each_row_would_do_and_writes_nothing(harness: Harness) -> None:
    org, course = await prepared(harness)
    before = await harness.snapshot()
    r = await upload(harness, org, course, FILE, dryRun="true", reason="giveaway")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["dryRun"], body["total"]) == (True, 7)
    assert outcomes(body) == EXPECTED
    assert body["counts"] == {
        "granted": 3,
        "regranted": 0,
        "already_active": 1,
        "pending_payment": 1,
        "invalid": 1,
        "duplicate": 1,
    }
    assert body["rows"][2]["detail"] == "no userId or email"
    assert body["rows"][3]["detail"] == "the same user as row 1"
    assert await harness.snapshot() == before


async def test_the_upload_grants_and_the_same_file_again_changes_nothing(harness: Harness) -> None:
    org, course = await prepared(harness)
    r = await upload(harness, org, course, FILE, reason="giveaway")
    assert r.status_code == 200, r.text
    assert outcomes(r.json()) == EXPECTED
    active = {e["user_id"] for e in await harness.rows(entitlements) if e["status"] == "active"}
    assert active == {"user_a", "user_b", "user_c", "user_active"}
    granted = [
        e.payload for e in await outbox_events(harness.db, "commerce.entitlement.changed.v2")
    ]
    reasons = {p.user_id: p.reason for p in granted if p.cause == "staff_granted"}
    assert reasons == {
        "user_active": "earlier",
        "user_a": "winner",
        "user_b": "giveaway",
        "user_c": "third",
    }
    before = await harness.snapshot()
    again = await upload(harness, org, course, FILE, reason="giveaway")
    assert again.json()["counts"]["granted"] == 0
    assert again.json()["counts"]["already_active"] == 4
    assert await harness.snapshot() == before


async def test_a_long_file_is_granted_in_several_transactions(harness: Harness) -> None:
    org, course = await harness.shop(price=4900)
    users = [f"user_{i:04d}" for i in range(450)]
    r = await upload(harness, org, course, "userId\n" + "\n".join(users) + "\n", reason="cohort")
    assert r.status_code == 200, r.text
    assert r.json()["counts"]["granted"] == 450
    assert len(await harness.rows(entitlements)) == 450


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"userId\n\xff\xfe\n", "not UTF-8"),
        ("name\nguest\n", "no userId or email column"),
        ("userId,plan\nuser_a,gold\n", "an unknown column"),
        ("userId,reason\n", "no user"),
        ("", "empty"),
        ("userId\n" + "u\n" * 10_001, "too many rows"),
        ('userId\n"unclosed\n', "unclosed quote"),
    ],
)
async def test_a_file_that_cannot_be_read_is_refused_whole(
    harness: Harness, content: bytes | str, why: str
) -> None:
    org, course = await harness.shop(price=4900)
    before = await harness.snapshot()
    r = await upload(harness, org, course, content, reason="x")
    assert (r.status_code, r.json()["code"]) == (422, "CSV_INVALID"), why
    assert await harness.snapshot() == before


async def test_only_staff_upload(harness: Harness) -> None:
    org, course = await harness.shop(price=4900)
    before = await harness.snapshot()
    r = await upload(harness, org, course, "userId\nuser_x\n", by=BUYER, reason="mine")
    assert r.status_code == 404
    assert await harness.snapshot() == before


async def test_rows_may_name_users_by_their_e_mail_address(harness: Harness) -> None:
    org, course = await harness.shop(price=4900)
    domain = harness.settings.dev_email_domain
    content = (
        "userId,email,reason\n"
        f",user_x@{domain},by address\n"
        "user_x,,by id\n"
        f",nobody@elsewhere.example,unknown\n"
        f"user_y,user_y@{domain},both\n"
    )
    r = await upload(harness, org, course, content)
    assert r.status_code == 200, r.text
    assert [
        (row["userId"], row["email"], row["outcome"], row["detail"]) for row in r.json()["rows"]
    ] == [
        ("user_x", f"user_x@{domain}", "granted", None),
        ("user_x", None, "duplicate", "the same user as row 1"),
        (None, "nobody@elsewhere.example", "invalid", "no user has this e-mail address"),
        ("user_y", f"user_y@{domain}", "invalid", "both userId and email: give one"),
    ]
