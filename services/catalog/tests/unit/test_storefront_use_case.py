"""The storefront use case on a fake store: each branch of "on sale", and the page it renders."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import uuid

import pytest

from coursemesh.catalog.adapters.storefront_cache import StorefrontCache
from coursemesh.catalog.app.ports import StorefrontListing
from coursemesh.catalog.app.storefront import Storefront
from coursemesh.chassis.errors import NotFound

from .fakes import FakeStorefrontStore

PREVIEW = [
    {
        "dayOffset": 0,
        "position": 0,
        "title": "Mobility",
        "durationMinutes": 20,
        "description": "Slow.",
    }
]


def listing(**fields: object) -> StorefrontListing:
    base = StorefrontListing(
        id=uuid.uuid4(),
        name="30-day reset",
        description="A gentle month.",
        image_url=None,
        status="published",
        duration_days=30,
        preview_type="first_day",
        seller_name="Move Studio",
        seller_slug="move-studio",
        seller_logo_url=None,
        price_in_cents=4900,
        currency="EUR",
        plan_active=True,
        workout_count=24,
        preview=json.dumps(PREVIEW),
    )
    return dataclasses.replace(base, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"status": "draft"}, "COURSE_NOT_AVAILABLE"),
        ({"status": "archived"}, "COURSE_NOT_AVAILABLE"),
        ({"plan_active": None, "price_in_cents": None, "currency": None}, "COURSE_NOT_PURCHASABLE"),
        ({"plan_active": False}, "COURSE_NOT_PURCHASABLE"),
    ],
)
async def test_a_course_not_on_sale_is_its_own_404(fields: dict[str, object], code: str) -> None:
    store = FakeStorefrontStore()
    course = listing(**fields)
    store.listings[course.id] = course
    with pytest.raises(NotFound) as err:
        await Storefront(store).page(course.id)
    assert err.value.code == code


async def test_a_missing_course_is_not_found() -> None:
    with pytest.raises(NotFound) as err:
        await Storefront(FakeStorefrontStore()).page(uuid.uuid4())
    assert (err.value.code, err.value.detail) == ("NOT_FOUND", "Course not found")


async def test_a_course_on_sale_is_rendered_with_an_etag_of_its_exact_bytes() -> None:
    store = FakeStorefrontStore()
    course = listing()
    store.listings[course.id] = course
    page = await Storefront(store).page(course.id)
    assert json.loads(page.body) == {
        "id": str(course.id),
        "name": "30-day reset",
        "description": "A gentle month.",
        "imageUrl": None,
        "durationDays": 30,
        "workoutCount": 24,
        "price": {"cents": 4900, "currency": "EUR"},
        "previewType": "first_day",
        "previewWorkouts": PREVIEW,
        "seller": {"name": "Move Studio", "slug": "move-studio", "logoUrl": None},
    }
    assert page.etag == '"' + hashlib.blake2b(page.body, digest_size=16).hexdigest() + '"'
    store.listings[course.id] = dataclasses.replace(course, price_in_cents=5900)
    assert (await Storefront(store).page(course.id)).etag != page.etag


async def test_the_cache_serves_the_use_cases_pages_and_not_its_refusals() -> None:
    store = FakeStorefrontStore()
    course = listing()
    draft = listing(status="draft")
    store.listings.update({course.id: course, draft.id: draft})
    cache = StorefrontCache(Storefront(store), max_entries=10)
    cache.connected()
    first = await cache.page(course.id)
    assert await cache.page(course.id) is first
    for _ in range(2):
        with pytest.raises(NotFound):
            await cache.page(draft.id)
    assert store.reads == [course.id, draft.id, draft.id]
