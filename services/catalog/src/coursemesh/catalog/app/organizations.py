"""Use cases for organizations and their members."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from coursemesh.catalog.app.ports import CatalogStore, SlugTaken
from coursemesh.catalog.app.publishing import publish
from coursemesh.catalog.app.views import MemberView, OrganizationPage, OrganizationView
from coursemesh.catalog.domain import roles
from coursemesh.catalog.domain.organization import (
    Organization,
    OrganizationEdit,
    check_edit,
    edit_organization,
    found_organization,
    slug_taken,
)
from coursemesh.contracts.types import Role


def _view(organization: Organization, role: Role | None) -> OrganizationView:
    return OrganizationView(
        id=organization.id,
        name=organization.name,
        slug=organization.slug,
        logo_url=organization.logo_url,
        currency=organization.currency,
        role=role,
    )


async def create_organization(
    store: CatalogStore, *, actor: str, name: str, slug: str, logo_url: str | None, currency: str
) -> OrganizationView:
    """The creator becomes the organization's first owner (both in one transaction)."""
    founded = found_organization(
        organization_id=uuid.uuid4(),
        membership_id=uuid.uuid4(),
        creator=actor,
        name=name,
        slug=slug,
        logo_url=logo_url,
        currency=currency,
        now=datetime.now(UTC),
    )
    try:
        async with store.transaction() as tx:
            await tx.add_organization(founded.organization)
            await tx.add_membership(founded.owner)
            publish(tx, founded.events)
    except SlugTaken as exc:
        raise slug_taken(slug) from exc
    return _view(founded.organization, "owner")


async def get_organization(
    store: CatalogStore, *, actor: str, organization_id: uuid.UUID
) -> OrganizationView:
    async with store.reading() as reader:
        role = roles.require_member(await reader.role(organization_id, actor))
        organization = await reader.organization(organization_id)
    assert organization is not None  # a membership's organization exists
    return _view(organization, role)


async def list_my_organizations(
    store: CatalogStore, *, actor: str, limit: int, offset: int
) -> OrganizationPage:
    """The organizations the caller is a member of (any role), by name then id, with the
    caller's role in each. Catalog owns organizations and memberships, so the read goes to the
    tables every write goes to: an organization the caller just created is listed at once."""
    async with store.reading() as reader:
        found, total = await reader.organizations_of(actor, limit=limit, offset=offset)
    return OrganizationPage(
        items=[_view(m.organization, m.role) for m in found],
        total=total,
        limit=limit,
        offset=offset,
    )


async def update_organization(
    store: CatalogStore, *, actor: str, organization_id: uuid.UUID, edit: OrganizationEdit
) -> OrganizationView:
    check_edit(edit)
    try:
        async with store.transaction() as tx:
            role = roles.require_admin(await tx.role(organization_id, actor))
            organization = await tx.lock_organization(organization_id)
            assert organization is not None  # a membership's organization exists
            outcome = edit_organization(organization, edit, datetime.now(UTC))
            await tx.save_organization(outcome.organization)
            publish(tx, outcome.events)
    except SlugTaken as exc:
        raise slug_taken(str(edit.slug)) from exc
    return _view(outcome.organization, role)


async def list_members(
    store: CatalogStore, *, actor: str, organization_id: uuid.UUID
) -> list[MemberView]:
    """Any member may see who else is in the organization (staff need it to manage courses,
    members to know their trainers)."""
    async with store.reading() as reader:
        roles.require_member(await reader.role(organization_id, actor))
        members = await reader.members(organization_id)
    return [
        MemberView(membership_id=m.id, user_id=m.user_id, role=m.role)
        for m in members
        if m.role is not None
    ]


async def add_member(
    store: CatalogStore, *, actor: str, organization_id: uuid.UUID, user_id: str, role: Role
) -> MemberView:
    async with store.transaction() as tx:
        actor_role = roles.require_member(await tx.role(organization_id, actor))
        outcome = roles.add_member(
            actor_role=actor_role,
            existing=await tx.lock_membership(organization_id, user_id),
            organization_id=organization_id,
            user_id=user_id,
            role=role,
            membership_id=uuid.uuid4(),
            now=datetime.now(UTC),
        )
        if outcome.created:
            await tx.add_membership(outcome.membership)
        else:
            await tx.save_membership(outcome.membership)
        publish(tx, outcome.events)
    return MemberView(membership_id=outcome.membership.id, user_id=user_id, role=role)


async def change_member(
    store: CatalogStore,
    *,
    actor: str,
    organization_id: uuid.UUID,
    user_id: str,
    role: Role | None,
) -> MemberView | None:
    """Change a member's role, or remove them (``role=None``)."""
    async with store.transaction() as tx:
        actor_role = roles.require_member(await tx.role(organization_id, actor))
        owners = await tx.lock_owners(organization_id)
        outcome = roles.change_member(
            actor_role=actor_role,
            existing=await tx.lock_membership(organization_id, user_id),
            new=role,
            owner_count=owners,
            now=datetime.now(UTC),
        )
        await tx.save_membership(outcome.membership)
        publish(tx, outcome.events)
    if role is None:
        return None
    return MemberView(membership_id=outcome.membership.id, user_id=user_id, role=role)
