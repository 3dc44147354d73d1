"""The access history of an entitlement: why its buyer gained or lost access, step by step,
oldest first, as the organization's staff see it and as the buyer sees their own.

Authorization as for every staff read: a caller who is not staff of the organization gets 404
``NOT_FOUND`` (``require_staff``); an entitlement that is not the organization's, or a course
the buyer holds no entitlement to, is 404 ``ENTITLEMENT_NOT_FOUND``, so neither view tells
whether someone else's entitlement exists.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from coursemesh.chassis.errors import NotFound
from coursemesh.chassis.staff import require_staff
from coursemesh.commerce.app.ports import HistoryReader, HistoryStore
from coursemesh.commerce.domain.entitlements import Entitlement
from coursemesh.commerce.domain.history import HistoryEntry, Viewer, history_entry


class EntitlementNotFound(NotFound):
    code = "ENTITLEMENT_NOT_FOUND"


@dataclass(frozen=True, slots=True)
class HistoryPage:
    entitlement_id: uuid.UUID
    items: Sequence[HistoryEntry]
    total: int
    limit: int
    offset: int


class AccessHistory:
    def __init__(self, store: HistoryStore) -> None:
        self._store = store

    async def entitlement_history(
        self,
        organization_id: uuid.UUID,
        entitlement_id: uuid.UUID,
        staff_user_id: str,
        offset: int,
        limit: int,
    ) -> HistoryPage:
        """Every step of one of the organization's entitlements, actors named."""
        async with self._store.reading() as reader:
            await require_staff(reader.directory, organization_id, staff_user_id)
            ent = await reader.entitlement_in(organization_id, entitlement_id)
            if ent is None:
                raise EntitlementNotFound("No such entitlement")
            return await _page(reader, ent, "staff", offset, limit)

    async def my_course_history(
        self, user_id: str, course_id: uuid.UUID, offset: int, limit: int
    ) -> HistoryPage:
        """Every step of the caller's own entitlement to the course; staff members unnamed."""
        async with self._store.reading() as reader:
            ent = await reader.own_entitlement(user_id, course_id)
            if ent is None:
                raise EntitlementNotFound("You hold no entitlement to this course")
            return await _page(reader, ent, "buyer", offset, limit)


async def _page(
    reader: HistoryReader, ent: Entitlement, viewer: Viewer, offset: int, limit: int
) -> HistoryPage:
    steps, total = await reader.steps(ent.id, limit, offset)
    items = [history_entry(s, buyer_id=ent.user_id, viewer=viewer) for s in steps]
    return HistoryPage(ent.id, items, total, limit, offset)
