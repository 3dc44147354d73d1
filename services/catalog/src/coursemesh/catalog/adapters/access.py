"""Who the caller is in an organization: the one query every staff endpoint starts with."""

from __future__ import annotations

import uuid
from typing import cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from coursemesh.catalog.adapters.tables import memberships
from coursemesh.chassis.errors import NotFound
from coursemesh.contracts.types import Role


async def caller_role(session: AsyncSession, organization_id: uuid.UUID, user_id: str) -> Role:
    """The caller's role, or 404 when the organization does not exist or the caller is not in
    it: outsiders cannot tell the two apart, so organization ids cannot be probed."""
    role = await session.scalar(
        sa.select(memberships.c.role).where(
            memberships.c.organization_id == organization_id,
            memberships.c.user_id == user_id,
            memberships.c.role.is_not(None),
        )
    )
    if role is None:
        raise NotFound("Organization not found", code="ORGANIZATION_NOT_FOUND")
    return cast(Role, role)
