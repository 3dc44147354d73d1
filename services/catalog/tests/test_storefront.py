"""The public storefront: every branch (missing, not published, not purchasable, on sale),
previews, caching, and the plan projection fed by commerce.plan.priced.v1 (through the inbox,
and over real NATS)."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
import nats

from coursemesh.catalog.main import SUBSCRIPTIONS
from coursemesh.catalog.testing import Api, problem, table_state
from coursemesh.chassis.db import Database
from coursemesh.chassis.testing import deliver, wait_for
from coursemesh.contracts import Envelope, decode, encode, envelope
from coursemesh.contracts.commerce import PlanPriced

from .conftest import InApp


def plan_event(
    course: str, org: str, *, cents: int = 4900, active: bool = True, version: int = 1
) -> Envelope[Any]:
    plan_id = uuid.uuid5(uuid.NAMESPACE_URL, course)
    return envelope(
        PlanPriced(
            plan_id=plan_id,
            course_id=uuid.UUID(course),
            organization_id=uuid.UUID(org),
            price_in_cents=cents,
            currency="EUR",
            is_active=active,
        ),
        aggregate_id=plan_id,
        aggregate_version=version,
    )


async def test_storefront_course_or_config_missing_is_404(api: Api) -> None:
    r = await api.request("GET", f"/public/courses/{uuid.uuid4()}", None)
    problem(r, 404, "NOT_FOUND")


async def test_storefront_not_published_is_404_course_not_available(api: Api, db: Database) -> None:
    org = await api.create_org()
    course = await api.create_course(org)
    await deliver(db, SUBSCRIPTIONS, plan_event(course, org))
    r = await api.request("GET", f"/public/courses/{course}", None)
    assert problem(r, 404, "COURSE_NOT_AVAILABLE")["detail"] == "Course not available"
    org2, archived, _ = await api.published_course()
    await deliver(db, SUBSCRIPTIONS, plan_event(archived, org2))
    await api.request("DELETE", f"/organizations/{org2}/courses/{archived}")
    r = await api.request("GET", f"/public/courses/{archived}", None)
    problem(r, 404, "COURSE_NOT_AVAILABLE")


async def test_storefront_no_active_plan_is_404_not_purchasable(api: Api, db: Database) -> None:
    org, course, _ = await api.published_course()
    r = await api.request("GET", f"/public/courses/{course}", None)
    body = problem(r, 404, "COURSE_NOT_PURCHASABLE")
    assert body["detail"] == "Course is not available for purchase"
    await deliver(db, SUBSCRIPTIONS, plan_event(course, org, active=False))
    r = await api.request("GET", f"/public/courses/{course}", None)
    problem(r, 404, "COURSE_NOT_PURCHASABLE")


async def test_storefront_otherwise_returns_course_price_preview_and_branding(
    api: Api, db: Database
) -> None:
    org = await api.create_org(slug="move-studio")
    a = await api.create_workout(org, "A")
    b = await api.create_workout(org, "B")
    course = await api.create_course(org, duration_days=4, preview_type="first_day")
    await api.set_day(org, course, 0, is_rest=True)
    await api.set_day(org, course, 1, [b, a])
    await api.set_day(org, course, 3, [a])
    await api.publish(org, course)
    await deliver(db, SUBSCRIPTIONS, plan_event(course, org, cents=4900))
    r = await api.request("GET", f"/public/courses/{course}", None)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body == {
        "id": course,
        "name": "30-day reset",
        "description": "A gentle month.",
        "imageUrl": "https://cdn.example.com/c.png",
        "durationDays": 4,
        "workoutCount": 3,
        "price": {"cents": 4900, "currency": "EUR"},
        "previewType": "first_day",
        "previewWorkouts": [
            {
                "dayOffset": 1,
                "position": 0,
                "title": "B",
                "durationMinutes": 20,
                "description": "B description",
            },
            {
                "dayOffset": 1,
                "position": 1,
                "title": "A",
                "durationMinutes": 20,
                "description": "A description",
            },
        ],
        "seller": {
            "name": "Move Studio",
            "slug": "move-studio",
            "logoUrl": "https://cdn.example.com/logo.png",
        },
    }
    await api.request(
        "PATCH", f"/organizations/{org}/courses/{course}", json={"previewType": "all_titles"}
    )
    r = await api.request("GET", f"/public/courses/{course}", None)
    preview = r.json()["previewWorkouts"]
    assert [(p["dayOffset"], p["title"], p["description"]) for p in preview] == [
        (1, "B", None),
        (1, "A", None),
        (3, "A", None),
    ]
    await api.request(
        "PATCH", f"/organizations/{org}/courses/{course}", json={"previewType": "none"}
    )
    r = await api.request("GET", f"/public/courses/{course}", None)
    assert r.json()["previewWorkouts"] == []


async def test_storefront_etag_cache_control_and_304(
    api: Api, app_db: Database, in_app: InApp
) -> None:
    org, course, _ = await api.published_course()
    in_app(deliver, app_db, SUBSCRIPTIONS, plan_event(course, org, cents=4900))
    r = await api.request("GET", f"/public/courses/{course}", None)
    etag = r.headers["etag"]
    assert r.headers["cache-control"] == "public, max-age=30"
    assert r.headers["content-type"] == "application/json"
    assert int(r.headers["content-length"]) == len(r.content)
    r = await api.request(
        "GET", f"/public/courses/{course}", None, headers={"If-None-Match": f'"x", W/{etag}'}
    )
    assert r.status_code == 304
    assert r.content == b""
    assert r.headers["etag"] == etag
    assert r.headers["cache-control"] == "public, max-age=30"
    # A newer price changes the representation, so the old tag no longer matches. (Applied by
    # this process, as its consumer would, so the next read sees it at once.)
    in_app(deliver, app_db, SUBSCRIPTIONS, plan_event(course, org, cents=5900, version=2))
    r = await api.request("GET", f"/public/courses/{course}", None, headers={"If-None-Match": etag})
    assert r.status_code == 200
    assert r.json()["price"]["cents"] == 5900
    assert r.headers["etag"] != etag


async def test_plan_projection_ignores_stale_and_redelivered_events(api: Api, db: Database) -> None:
    org, course, _ = await api.published_course()
    newer = plan_event(course, org, cents=5900, version=2)
    await deliver(db, SUBSCRIPTIONS, newer)
    before = await table_state(db)
    await deliver(db, SUBSCRIPTIONS, plan_event(course, org, cents=100, version=1))  # stale
    await deliver(db, SUBSCRIPTIONS, newer)  # redelivery: the inbox drops it
    assert await table_state(db) == before
    r = await api.request("GET", f"/public/courses/{course}", None)
    assert r.json()["price"]["cents"] == 5900


async def test_plan_priced_over_nats_opens_the_storefront_and_events_reach_nats(
    api: Api, db: Database, nats_url: str
) -> None:
    org, course, _ = await api.published_course()
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        env = plan_event(course, org, cents=1234)
        await js.publish(
            "commerce.plan.priced.v1", encode(env), headers={"Nats-Msg-Id": str(env.id)}
        )

        async def purchasable() -> bool:
            r = await api.request("GET", f"/public/courses/{course}", None)
            return bool(r.status_code == 200)

        await wait_for(purchasable, timeout=15, message="plan projected from NATS")

        async def published_on_nats() -> bool:
            try:
                msg = await js.get_last_msg("CATALOG", "catalog.course.published.v1")
            except Exception:
                return False
            return msg.data is not None and decode(msg.data).aggregate_id == course

        await wait_for(published_on_nats, timeout=15, message="course.published relayed")
    finally:
        await nc.close()
    r = await api.request("GET", f"/public/courses/{course}", None)
    assert msgspec.json.decode(r.content)["price"] == {"cents": 1234, "currency": "EUR"}
