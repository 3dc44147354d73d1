"""Use cases for organizations and their members."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, cast

import msgspec
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from coursemesh.catalog.adapters.access import caller_role
from coursemesh.catalog.adapters.tables import memberships, organizations
from coursemesh.catalog.app.views import MemberView, OrganizationView
from coursemesh.catalog.domain.organization import check_currency
from coursemesh.catalog.domain.roles import check_membership_change, require_admin
from coursemesh.chassis.db import Database, UnitOfWork
from coursemesh.chassis.errors import Conflict, NotFound
from coursemesh.contracts.catalog import (
    MembershipChanged,
    OrganizationUpserted,
    membership_aggregate_id,
)
from coursemesh.contracts.types import Role, is_staff_role

UNSET = msgspec.UNSET
Unset = msgspec.UnsetType


def _slug_taken(slug: str) -> Conflict:
    return Conflict(
        f"The slug {slug!r} is already taken",
        code="SLUG_TAKEN",
        extra={"errors": [{"path": "$.slug", "message": "already taken"}]},
    )


def _org_view(row: sa.Row[Any], role: Role | None = None) -> OrganizationView:
    return OrganizationView(
        id=row.id,
        name=row.name,
        slug=row.slug,
        logo_url=row.logo_url,
        currency=row.currency,
        role=role,
    )


def _publish_org(uow: UnitOfWork, row: sa.Row[Any]) -> None:
    uow.publish(
        OrganizationUpserted(
            organization_id=row.id,
            name=row.name,
            slug=row.slug,
            logo_url=row.logo_url,
            currency=row.currency,
        ),
        aggregate_id=row.id,
        aggregate_version=row.version,
    )


def _publish_membership(uow: UnitOfWork, row: sa.Row[Any]) -> None:
    role = cast(Role | None, row.role)
    uow.publish(
        MembershipChanged(
            organization_id=row.organization_id,
            user_id=row.user_id,
            membership_id=row.id,
            role=role,
            is_staff=is_staff_role(role),
        ),
        aggregate_id=membership_aggregate_id(row.organization_id, row.user_id),
        aggregate_version=row.version,
    )


async def create_organization(
    db: Database, *, actor: str, name: str, slug: str, logo_url: str | None, currency: str
) -> OrganizationView:
    """The creator becomes the organization's first owner (both in one transaction)."""
    check_currency(currency)
    now = datetime.now(UTC)
    try:
        async with db.unit_of_work() as uow:
            org = (
                await uow.session.execute(
                    sa.insert(organizations)
                    .values(
                        id=uuid.uuid4(),
                        name=name,
                        slug=slug,
                        logo_url=logo_url,
                        currency=currency,
                        version=1,
                        created_at=now,
                        updated_at=now,
                    )
                    .returning(*organizations.c)
                )
            ).one()
            member = (
                await uow.session.execute(
                    sa.insert(memberships)
                    .values(
                        id=uuid.uuid4(),
                        organization_id=org.id,
                        user_id=actor,
                        role="owner",
                        version=1,
                        created_at=now,
                        updated_at=now,
                    )
                    .returning(*memberships.c)
                )
            ).one()
            _publish_org(uow, org)
            _publish_membership(uow, member)
    except IntegrityError as exc:
        raise _slug_taken(slug) from exc
    return _org_view(org, "owner")


async def get_organization(
    db: Database, *, actor: str, organization_id: uuid.UUID
) -> OrganizationView:
    async with db.sessions() as session:
        role = await caller_role(session, organization_id, actor)
        row = (
            await session.execute(
                sa.select(organizations).where(organizations.c.id == organization_id)
            )
        ).one()
    return _org_view(row, role)


async def update_organization(
    db: Database,
    *,
    actor: str,
    organization_id: uuid.UUID,
    name: str | Unset = UNSET,
    slug: str | Unset = UNSET,
    logo_url: str | Unset | None = UNSET,
    currency: str | Unset = UNSET,
) -> OrganizationView:
    if not isinstance(currency, Unset):
        check_currency(currency)
    changes: dict[str, Any] = {
        key: value
        for key, value in {
            "name": name,
            "slug": slug,
            "logo_url": logo_url,
            "currency": currency,
        }.items()
        if not isinstance(value, Unset)
    }
    try:
        async with db.unit_of_work() as uow:
            role = await caller_role(uow.session, organization_id, actor)
            require_admin(role)
            row = (
                await uow.session.execute(
                    sa.update(organizations)
                    .where(organizations.c.id == organization_id)
                    .values(
                        **changes,
                        version=organizations.c.version + 1,
                        updated_at=datetime.now(UTC),
                    )
                    .returning(*organizations.c)
                )
            ).one()
            _publish_org(uow, row)
    except IntegrityError as exc:
        raise _slug_taken(str(slug)) from exc
    return _org_view(row, role)


async def list_members(db: Database, *, actor: str, organization_id: uuid.UUID) -> list[MemberView]:
    """Any member may see who else is in the organization (staff need it to manage courses,
    members to know their trainers)."""
    async with db.sessions() as session:
        await caller_role(session, organization_id, actor)
        rows = (
            await session.execute(
                sa.select(memberships)
                .where(
                    memberships.c.organization_id == organization_id,
                    memberships.c.role.is_not(None),
                )
                .order_by(memberships.c.created_at, memberships.c.user_id)
            )
        ).all()
    return [MemberView(membership_id=r.id, user_id=r.user_id, role=r.role) for r in rows]


async def _owner_count(uow: UnitOfWork, organization_id: uuid.UUID) -> int:
    # Locking the owner rows serialises concurrent demotions, so two admins cannot each
    # remove "the other" last owner at the same time.
    rows = await uow.session.execute(
        sa.select(memberships.c.id)
        .where(
            memberships.c.organization_id == organization_id,
            memberships.c.role == "owner",
        )
        .with_for_update()
    )
    return len(rows.all())


async def _locked_membership(
    uow: UnitOfWork, organization_id: uuid.UUID, user_id: str
) -> sa.Row[Any] | None:
    return (
        await uow.session.execute(
            sa.select(memberships)
            .where(
                memberships.c.organization_id == organization_id,
                memberships.c.user_id == user_id,
            )
            .with_for_update()
        )
    ).one_or_none()


async def add_member(
    db: Database, *, actor: str, organization_id: uuid.UUID, user_id: str, role: Role
) -> MemberView:
    async with db.unit_of_work() as uow:
        actor_role = await caller_role(uow.session, organization_id, actor)
        check_membership_change(actor_role=actor_role, current=None, new=role, owner_count=0)
        existing = await _locked_membership(uow, organization_id, user_id)
        now = datetime.now(UTC)
        if existing is not None and existing.role is not None:
            raise Conflict(
                "The user is already a member of the organization",
                code="MEMBER_EXISTS",
                extra={"errors": [{"path": "$.userId", "message": "already a member"}]},
            )
        if existing is not None:
            # Re-adding a removed member keeps the membership id and its version counter.
            statement: Any = (
                sa.update(memberships)
                .where(memberships.c.id == existing.id)
                .values(role=role, version=memberships.c.version + 1, updated_at=now)
            )
        else:
            statement = sa.insert(memberships).values(
                id=uuid.uuid4(),
                organization_id=organization_id,
                user_id=user_id,
                role=role,
                version=1,
                created_at=now,
                updated_at=now,
            )
        row = (await uow.session.execute(statement.returning(*memberships.c))).one()
        _publish_membership(uow, row)
    return MemberView(membership_id=row.id, user_id=row.user_id, role=role)


async def change_member(
    db: Database,
    *,
    actor: str,
    organization_id: uuid.UUID,
    user_id: str,
    role: Role | None,
) -> MemberView | None:
    """Change a member's role, or remove them (``role=None``)."""
    async with db.unit_of_work() as uow:
        actor_role = await caller_role(uow.session, organization_id, actor)
        owners = await _owner_count(uow, organization_id)
        existing = await _locked_membership(uow, organization_id, user_id)
        if existing is None or existing.role is None:
            raise NotFound("Member not found", code="MEMBER_NOT_FOUND")
        check_membership_change(
            actor_role=actor_role, current=existing.role, new=role, owner_count=owners
        )
        row = (
            await uow.session.execute(
                sa.update(memberships)
                .where(memberships.c.id == existing.id)
                .values(role=role, version=memberships.c.version + 1, updated_at=datetime.now(UTC))
                .returning(*memberships.c)
            )
        ).one()
        _publish_membership(uow, row)
    if role is None:
        return None
    return MemberView(membership_id=row.id, user_id=row.user_id, role=role)
