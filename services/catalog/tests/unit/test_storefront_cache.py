"""The storefront cache's rules on their own, in front of a fake page source (no database)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from coursemesh.catalog.adapters.storefront_cache import StorefrontCache
from coursemesh.catalog.app.storefront import render
from coursemesh.catalog.app.views import (
    PriceView,
    SellerView,
    StorefrontCourseView,
    StorefrontPage,
)


def view(course_id: uuid.UUID, name: str = "Course") -> StorefrontCourseView:
    return StorefrontCourseView(
        id=course_id,
        name=name,
        description=None,
        image_url=None,
        duration_days=1,
        workout_count=0,
        price=PriceView(cents=100, currency="EUR"),
        preview_type="none",
        preview_workouts=[],
        seller=SellerView(name="Seller", slug="seller", logo_url=None),
    )


class Source:
    """Stands in for the storefront use case; records the course ids it was asked for."""

    def __init__(self, make: Callable[[uuid.UUID], StorefrontCourseView] = view) -> None:
        self.calls: list[uuid.UUID] = []
        self.make = make

    async def page(self, course_id: uuid.UUID) -> StorefrontPage:
        self.calls.append(course_id)
        return render(self.make(course_id))


def listening_cache(source: Source | None = None, max_entries: int = 10) -> StorefrontCache:
    cache = StorefrontCache(source or Source(), max_entries)
    cache.connected()
    return cache


async def test_a_clear_during_the_query_keeps_its_result_out_of_the_cache() -> None:
    course_id = uuid.uuid4()
    names = iter(["before the write", "after the write"])

    def make(cid: uuid.UUID) -> StorefrontCourseView:
        result = view(cid, next(names))
        cache.clear()  # a commit lands while the (old) result is on its way back
        return result

    cache = listening_cache(Source(make))
    page = await cache.page(course_id)
    assert page == render(view(course_id, "before the write"))  # served to this request...
    assert cache.get(course_id) is None  # ...but never to the next one
    assert cache.put(course_id, page, cache.generation - 1) is False


async def test_a_quiet_query_fills_the_cache_and_the_next_read_skips_the_query() -> None:
    source = Source()
    cache = listening_cache(source)
    course_id = uuid.uuid4()
    first = await cache.page(course_id)
    assert await cache.page(course_id) is first
    assert source.calls == [course_id]


async def test_not_listening_means_every_read_goes_to_the_database() -> None:
    source = Source()
    cache = StorefrontCache(source, 10)  # not connected yet
    course_id = uuid.uuid4()
    calls = source.calls
    await cache.page(course_id)
    await cache.page(course_id)
    assert calls == [course_id, course_id]
    cache.connected()
    await cache.page(course_id)
    assert len(cache) == 1
    cache.lost()
    assert len(cache) == 0
    assert not cache.enabled
    await cache.page(course_id)
    assert len(calls) == 4
    assert len(cache) == 0


def test_connecting_and_notifications_empty_the_cache() -> None:
    cache = listening_cache()
    course_id = uuid.uuid4()
    page = render(view(course_id))
    assert cache.put(course_id, page, cache.generation)
    cache.on_notify("")
    assert cache.get(course_id) is None
    assert cache.put(course_id, page, cache.generation)
    cache.connected()  # a reconnect: what happened while deaf is unknown
    assert cache.get(course_id) is None


def test_the_least_recently_used_page_goes_first_and_zero_entries_keeps_nothing() -> None:
    cache = listening_cache(max_entries=2)
    a, b, c = (uuid.uuid4() for _ in range(3))
    for course_id in (a, b):
        cache.put(course_id, render(view(course_id)), cache.generation)
    assert cache.get(a) is not None  # a is now more recent than b
    cache.put(c, render(view(c)), cache.generation)
    assert (cache.get(a) is not None, cache.get(b), cache.get(c) is not None) == (True, None, True)
    off = listening_cache(max_entries=0)
    assert off.put(a, render(view(a)), off.generation) is False
    assert len(off) == 0
