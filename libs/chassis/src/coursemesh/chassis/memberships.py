"""The membership projection: services that authorize staff actions keep catalog's memberships.

Each such service owns a ``memberships`` table in its schema with at least ``organization_id``
and ``user_id`` (the key), ``role``, ``is_staff`` and ``version``; ``membership_id`` is kept too
when the table has that column.
"""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa

from coursemesh.chassis.consumer import Handler
from coursemesh.chassis.db import UnitOfWork
from coursemesh.chassis.projection import upsert_if_newer
from coursemesh.chassis.transaction import Driver
from coursemesh.contracts import Envelope
from coursemesh.contracts.catalog import MembershipChanged


def membership_projector(table: sa.Table) -> Handler:
    """The handler of ``catalog.membership.changed.v1`` that keeps ``table`` at the newest
    version of each (organization, user) membership."""

    async def on_membership_changed(uow: UnitOfWork, env: Envelope[Any]) -> None:
        payload: MembershipChanged = env.payload
        values: dict[str, Any] = {
            "organization_id": payload.organization_id,
            "user_id": payload.user_id,
            "role": payload.role,
            "is_staff": payload.is_staff,
            "version": env.aggregate_version,
        }
        if "membership_id" in table.c:
            values["membership_id"] = payload.membership_id
        await upsert_if_newer(uow.session, table, values, key=["organization_id", "user_id"])

    return on_membership_changed


class DriverStaffDirectory:
    """A :class:`~coursemesh.chassis.staff.StaffDirectory` over the service's ``memberships``
    projection (found through the connection's ``search_path``), on a driver connection."""

    _SQL = "SELECT is_staff FROM memberships WHERE organization_id = $1 AND user_id = $2"

    def __init__(self, driver: Driver) -> None:
        self._driver = driver

    async def is_staff(self, organization_id: uuid.UUID, user_id: str) -> bool:
        return bool(await self._driver.fetchval(self._SQL, organization_id, user_id))
