"""The one staff check of services that keep catalog's memberships (``chassis.memberships``).

A use case asks a :class:`StaffDirectory` (a port: the service's adapter reads its membership
projection; a unit test passes a fake) and refuses anyone else with a 404: a refusal that
differed from "not found" would tell an outsider which organizations exist and which ids are
theirs.
"""

from __future__ import annotations

import uuid
from typing import Protocol

from coursemesh.chassis.errors import DomainError, NotFound


class StaffDirectory(Protocol):
    async def is_staff(self, organization_id: uuid.UUID, user_id: str) -> bool:
        """Whether ``user_id`` is staff (owner, admin, trainer) of the organization."""
        ...


async def require_staff(
    directory: StaffDirectory,
    organization_id: uuid.UUID,
    user_id: str,
    *,
    refusal: DomainError | None = None,
) -> None:
    """Return if ``user_id`` is staff of the organization; raise ``refusal`` (by default 404
    ``NOT_FOUND``) otherwise."""
    if not await directory.is_staff(organization_id, user_id):
        raise refusal or NotFound("Not found", code="NOT_FOUND")
