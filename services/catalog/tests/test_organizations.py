"""Organizations and memberships: the creator becomes owner, roles, the last-owner rule,
events with full state and per-(organization, user) versions, and the bad-input list."""

from __future__ import annotations

import uuid

from coursemesh.catalog.testing import OWNER, Api, error_paths, problem, table_state
from coursemesh.chassis.db import Database
from coursemesh.chassis.testing import outbox_events

ADMIN = "user_admin"
TRAINER = "user_trainer"
MEMBER = "user_member"


async def test_create_organization_makes_creator_owner_and_publishes(
    api: Api, db: Database
) -> None:
    org = await api.create_org()
    r = await api.request("GET", f"/organizations/{org}")
    assert r.status_code == 200
    assert r.json() == {
        "id": org,
        "name": "Move Studio",
        "slug": r.json()["slug"],
        "logoUrl": "https://cdn.example.com/logo.png",
        "currency": "EUR",
        "role": "owner",
    }
    (upserted,) = await outbox_events(db, "catalog.organization.upserted.v1")
    assert (upserted.aggregate_id, upserted.aggregate_version) == (org, 1)
    assert upserted.payload.currency == "EUR"
    (owner,) = await outbox_events(db, "catalog.membership.changed.v1")
    assert owner.aggregate_id == f"{org}:{OWNER}"
    assert (owner.payload.role, owner.payload.is_staff, owner.aggregate_version) == (
        "owner",
        True,
        1,
    )


async def test_patch_organization_by_admin_bumps_version(api: Api, db: Database) -> None:
    org = await api.create_org()
    await api.add_member(org, ADMIN, "admin")
    r = await api.request(
        "PATCH", f"/organizations/{org}", ADMIN, json={"name": "Renamed", "logoUrl": None}
    )
    assert r.status_code == 200, r.text
    assert (r.json()["name"], r.json()["logoUrl"], r.json()["currency"]) == ("Renamed", None, "EUR")
    events = await outbox_events(db, "catalog.organization.upserted.v1")
    assert [e.aggregate_version for e in events] == [1, 2]
    assert events[-1].payload.name == "Renamed"


async def test_duplicate_slug_is_refused_and_nothing_changes(api: Api, db: Database) -> None:
    await api.create_org(slug="taken-slug")
    other = await api.create_org("user_other")
    before = await table_state(db)
    r = await api.request(
        "POST",
        "/organizations",
        json={"name": "X", "slug": "taken-slug", "currency": "USD"},
    )
    assert error_paths(problem(r, 409, "SLUG_TAKEN")) == ["$.slug"]
    r = await api.request(
        "PATCH", f"/organizations/{other}", "user_other", json={"slug": "taken-slug"}
    )
    problem(r, 409, "SLUG_TAKEN")
    assert await table_state(db) == before


async def test_invalid_currency_is_refused(api: Api, db: Database) -> None:
    org = await api.create_org()
    before = await table_state(db)
    r = await api.request(
        "POST", "/organizations", json={"name": "X", "slug": "x-y", "currency": "XYZ"}
    )
    assert error_paths(problem(r, 422, "INVALID_CURRENCY")) == ["$.currency"]
    r = await api.request(
        "POST", "/organizations", json={"name": "X", "slug": "x-y", "currency": "usd"}
    )
    assert error_paths(problem(r, 400, "VALIDATION_FAILED")) == ["$.currency"]
    r = await api.request("PATCH", f"/organizations/{org}", json={"currency": "ABC"})
    problem(r, 422, "INVALID_CURRENCY")
    assert await table_state(db) == before


async def test_malformed_json_unknown_fields_and_missing_token(api: Api, db: Database) -> None:
    org = await api.create_org()
    before = await table_state(db)
    r = await api.request(
        "POST", "/organizations", content=b'{"name": ', headers={"content-type": "application/json"}
    )
    problem(r, 400, "MALFORMED_JSON")
    r = await api.request(
        "POST",
        "/organizations",
        json={"name": "X", "slug": "x-y", "currency": "USD", "owner": "me"},
    )
    body = problem(r, 400, "VALIDATION_FAILED")
    # The chassis reports an unknown field at the body's root with the field named in the
    # message (msgspec does not give it a path).
    assert "unknown field `owner`" in body["errors"][0]["message"]
    r = await api.request(
        "POST", "/organizations", None, json={"name": "X", "slug": "x-y", "currency": "USD"}
    )
    problem(r, 401, "MISSING_TOKEN")
    r = await api.request("GET", f"/organizations/{org}", None)
    problem(r, 401, "MISSING_TOKEN")
    assert await table_state(db) == before


async def test_members_add_change_remove_and_events(api: Api, db: Database) -> None:
    org = await api.create_org()
    await api.add_member(org, TRAINER, "trainer")
    r = await api.request(
        "PATCH", f"/organizations/{org}/members/{TRAINER}", json={"role": "member"}
    )
    assert r.status_code == 200
    assert r.json()["role"] == "member"
    r = await api.request("DELETE", f"/organizations/{org}/members/{TRAINER}")
    assert r.status_code == 204
    await api.add_member(org, TRAINER, "admin")  # re-added: same membership, next version
    r = await api.request("GET", f"/organizations/{org}/members")
    assert sorted((m["userId"], m["role"]) for m in r.json()) == [
        (OWNER, "owner"),
        (TRAINER, "admin"),
    ]
    events = [
        e
        for e in await outbox_events(db, "catalog.membership.changed.v1")
        if e.payload.user_id == TRAINER
    ]
    assert [(e.aggregate_version, e.payload.role, e.payload.is_staff) for e in events] == [
        (1, "trainer", True),
        (2, "member", False),
        (3, None, False),
        (4, "admin", True),
    ]
    assert len({e.payload.membership_id for e in events}) == 1
    assert {e.aggregate_id for e in events} == {f"{org}:{TRAINER}"}


async def test_last_owner_cannot_be_removed_or_demoted(api: Api, db: Database) -> None:
    org = await api.create_org()
    before = await table_state(db)
    r = await api.request("DELETE", f"/organizations/{org}/members/{OWNER}")
    problem(r, 409, "LAST_OWNER")
    r = await api.request("PATCH", f"/organizations/{org}/members/{OWNER}", json={"role": "admin"})
    problem(r, 409, "LAST_OWNER")
    assert await table_state(db) == before
    # With a second owner, the first may step down.
    await api.add_member(org, "user_owner2", "owner")
    r = await api.request("PATCH", f"/organizations/{org}/members/{OWNER}", json={"role": "admin"})
    assert r.status_code == 200, r.text


async def test_admin_cannot_touch_owners_and_members_cannot_manage(api: Api, db: Database) -> None:
    org = await api.create_org()
    await api.add_member(org, ADMIN, "admin")
    await api.add_member(org, MEMBER, "member")
    before = await table_state(db)
    r = await api.request(
        "POST", f"/organizations/{org}/members", ADMIN, json={"userId": "u9", "role": "owner"}
    )
    problem(r, 403, "OWNER_ROLE_REQUIRED")
    r = await api.request("DELETE", f"/organizations/{org}/members/{OWNER}", ADMIN)
    problem(r, 403, "OWNER_ROLE_REQUIRED")
    r = await api.request(
        "POST", f"/organizations/{org}/members", MEMBER, json={"userId": "u9", "role": "member"}
    )
    problem(r, 403, "ADMIN_ROLE_REQUIRED")
    r = await api.request("PATCH", f"/organizations/{org}", MEMBER, json={"name": "Mine"})
    problem(r, 403, "ADMIN_ROLE_REQUIRED")
    r = await api.request("PATCH", f"/organizations/{org}", "user_stranger", json={"name": "Mine"})
    problem(r, 404, "ORGANIZATION_NOT_FOUND")
    r = await api.request(
        "POST", f"/organizations/{org}/members", json={"userId": MEMBER, "role": "trainer"}
    )
    assert error_paths(problem(r, 409, "MEMBER_EXISTS")) == ["$.userId"]
    r = await api.request(
        "POST", f"/organizations/{org}/members", json={"userId": "u9", "role": "superuser"}
    )
    assert error_paths(problem(r, 400, "VALIDATION_FAILED")) == ["$.role"]
    r = await api.request("DELETE", f"/organizations/{org}/members/nobody")
    problem(r, 404, "MEMBER_NOT_FOUND")
    r = await api.request("GET", f"/organizations/{uuid.uuid4()}")
    problem(r, 404, "ORGANIZATION_NOT_FOUND")
    assert await table_state(db) == before


async def _org_named(api: Api, name: str, user: str = OWNER) -> dict[str, object]:
    r = await api.request(
        "POST",
        "/organizations",
        user,
        json={
            "name": name,
            "slug": f"s-{uuid.uuid4().hex[:10]}",
            "logoUrl": "https://cdn.example.com/logo.png",
            "currency": "USD",
        },
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_list_my_organizations_any_role_by_name_then_id_paged(api: Api, db: Database) -> None:
    zen = await _org_named(api, "Zen Yoga")
    barre_1 = await _org_named(api, "Barre")
    barre_2 = await _org_named(api, "Barre")  # same name: the id decides
    pilates = await _org_named(api, "Pilates", "user_other")
    aerial = await _org_named(api, "Aerial", "user_other")  # another user's, never listed
    crossfit = await _org_named(api, "CrossFit", "user_other")
    await api.add_member(str(pilates["id"]), OWNER, "admin", actor="user_other")
    await api.add_member(str(crossfit["id"]), OWNER, "member", actor="user_other")
    gone = await _org_named(api, "Dance", "user_other")
    await api.add_member(str(gone["id"]), OWNER, "trainer", actor="user_other")
    r = await api.request("DELETE", f"/organizations/{gone['id']}/members/{OWNER}", "user_other")
    assert r.status_code == 204  # a removed membership lists nothing

    def mine(org: dict[str, object], role: str) -> dict[str, object]:
        return {**org, "role": role}

    barres = sorted([barre_1, barre_2], key=lambda o: uuid.UUID(str(o["id"])))
    expected = [
        mine(barres[0], "owner"),
        mine(barres[1], "owner"),
        mine(crossfit, "member"),
        mine(pilates, "admin"),
        mine(zen, "owner"),
    ]
    before = await table_state(db)
    r = await api.request("GET", "/organizations")
    assert r.status_code == 200, r.text
    assert r.json() == {"items": expected, "total": 5, "limit": 50, "offset": 0}
    # Each item is what the single-organization GET answers.
    single = await api.request("GET", f"/organizations/{pilates['id']}")
    assert r.json()["items"][3] == single.json()

    r = await api.request("GET", "/organizations", params={"limit": 2, "offset": 2})
    assert r.json() == {"items": expected[2:4], "total": 5, "limit": 2, "offset": 2}
    r = await api.request("GET", "/organizations", params={"limit": 100, "offset": 4})
    assert r.json() == {"items": expected[4:], "total": 5, "limit": 100, "offset": 4}
    r = await api.request("GET", "/organizations", params={"offset": 5})
    assert r.json() == {"items": [], "total": 5, "limit": 50, "offset": 5}
    r = await api.request("GET", "/organizations", params={"offset": 1_000_000_000})
    assert r.json() == {"items": [], "total": 5, "limit": 50, "offset": 1_000_000_000}

    r = await api.request("GET", "/organizations", "user_other")
    assert [o["name"] for o in r.json()["items"]] == [
        "Aerial",
        "CrossFit",
        "Dance",
        "Pilates",
    ]
    assert {o["role"] for o in r.json()["items"]} == {"owner"}
    assert aerial["id"] not in {o["id"] for o in expected}
    r = await api.request("GET", "/organizations", "user_nobody")
    assert r.json() == {"items": [], "total": 0, "limit": 50, "offset": 0}
    assert await table_state(db) == before  # a read writes nothing


async def test_list_my_organizations_refuses_bad_paging_and_anonymous_callers(api: Api) -> None:
    await api.create_org()
    for params in (
        {"limit": 0},
        {"limit": 101},
        {"limit": "ten"},
        {"offset": -1},
        {"offset": 1_000_000_001},
    ):
        r = await api.request("GET", "/organizations", params=params)
        problem(r, 400, "VALIDATION_FAILED")
    r = await api.request("GET", "/organizations", None)
    problem(r, 401, "MISSING_TOKEN")
    r = await api.request("GET", "/organizations", None, headers={"Authorization": "Bearer x"})
    problem(r, 401, "INVALID_TOKEN")


async def test_a_new_organization_is_listed_by_the_very_next_call(api: Api) -> None:
    for n in range(5):
        created = await _org_named(api, f"Studio {n}")
        r = await api.request("GET", "/organizations", params={"limit": 100})
        assert r.status_code == 200, r.text
        assert {**created, "role": "owner"} in r.json()["items"]
        assert r.json()["total"] == n + 1
