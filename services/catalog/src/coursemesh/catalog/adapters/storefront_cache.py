"""The storefront's in-process read cache: course id -> its exact 200 page (ETag and bytes), in
front of the storefront use case and behind the same port
(:class:`~coursemesh.catalog.app.ports.StorefrontPages`).

Exact rather than time-based, because every way the answer can change clears it:
- any commit of a unit of work in this process clears it before the writer's request returns,
  so a process reads its own writes;
- triggers on every table the storefront reads ``NOTIFY catalog_storefront`` at commit
  (migration ``catalog_0003``), whoever writes: another replica, a migration, psql;
- the cache only answers while its LISTEN connection is up; it is emptied when that connection
  is (re)established or lost, since notifications sent meanwhile are never delivered;
- a generation counter, bumped by every clear, keeps a query that started before a clear from
  storing what it read.
Errors (404s) are not cached: they are cheap, and a course may open at any moment.
"""

from __future__ import annotations

import uuid

from cachetools import LRUCache

from coursemesh.catalog.app.ports import StorefrontPages
from coursemesh.catalog.app.views import StorefrontPage
from coursemesh.chassis.db import Database, asyncpg_dsn
from coursemesh.chassis.notify import listen_forever

STOREFRONT_CHANNEL = "catalog_storefront"  # also written out in migration catalog_0003
# A connection cut without the server noticing drops notifications silently: this bounds how
# long the cache can stay stale in that case.
HEALTH_CHECK_SECONDS = 5.0


class StorefrontCache:
    """An LRU of pages in front of ``source``, holding nothing while it cannot hear about
    changes."""

    def __init__(self, source: StorefrontPages, max_entries: int) -> None:
        self.source = source
        self.max_entries = max_entries
        # maxsize 0 would refuse every put: put() checks max_entries first.
        self._pages: LRUCache[uuid.UUID, StorefrontPage] = LRUCache(maxsize=max(1, max_entries))
        self._generation = 0
        self._enabled = False
        self.connections = 0  # LISTEN connections established so far
        # Notifications arrive in commit order, so seeing a payload of one's own means every
        # earlier commit has been seen too (tests use it as a barrier).
        self.last_notification: str | None = None

    async def page(self, course_id: uuid.UUID) -> StorefrontPage:
        page = self._pages.get(course_id)
        if page is not None:
            return page
        generation = self._generation
        page = await self.source.page(course_id)
        self.put(course_id, page, generation)
        return page

    @property
    def enabled(self) -> bool:
        return self._enabled

    @property
    def generation(self) -> int:
        """Take it before reading the source; hand it to :meth:`put`."""
        return self._generation

    def __len__(self) -> int:
        return len(self._pages)

    def __contains__(self, course_id: uuid.UUID) -> bool:
        return course_id in self._pages

    def get(self, course_id: uuid.UUID) -> StorefrontPage | None:
        return self._pages.get(course_id)

    def put(self, course_id: uuid.UUID, page: StorefrontPage, generation: int) -> bool:
        """Store ``page`` unless something was cleared since ``generation`` was taken (the page
        may predate that change) or the cache cannot hear about changes."""
        if not self._enabled or generation != self._generation or self.max_entries == 0:
            return False
        self._pages[course_id] = page
        return True

    def clear(self) -> None:
        self._generation += 1
        self._pages.clear()

    def on_notify(self, payload: str) -> None:
        # Writes are rare and reads many: dropping everything is simpler than being precise
        # (a workout or an organization is shown by many courses).
        self.clear()
        self.last_notification = payload

    def connected(self) -> None:
        self.clear()
        self.connections += 1
        self._enabled = True

    def lost(self) -> None:
        self._enabled = False
        self.clear()


async def keep_fresh(cache: StorefrontCache, db: Database, *, application_name: str) -> None:
    """Run until cancelled: listen for storefront changes, switching the cache on and off."""
    await listen_forever(
        asyncpg_dsn(db.url),
        STOREFRONT_CHANNEL,
        cache.on_notify,
        on_connected=cache.connected,
        on_lost=cache.lost,
        name="storefront cache",
        application_name=application_name,
        health_check_interval=HEALTH_CHECK_SECONDS,
    )
