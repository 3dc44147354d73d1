"""Organizations (pure): their profile, its rules, and what creating or editing one emits."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime

import msgspec
import pycountry

from coursemesh.catalog.domain.outcome import Emit, given
from coursemesh.catalog.domain.roles import Membership, first_owner
from coursemesh.chassis.errors import Conflict, Unprocessable
from coursemesh.contracts.catalog import OrganizationUpserted

UNSET = msgspec.UNSET
Unset = msgspec.UnsetType


@dataclass(frozen=True, slots=True)
class Organization:
    id: uuid.UUID
    name: str
    slug: str
    logo_url: str | None
    currency: str
    version: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class OrganizationEdit:
    """The fields a PATCH sent; ``UNSET`` leaves a field as it is."""

    name: str | Unset = UNSET
    slug: str | Unset = UNSET
    logo_url: str | Unset | None = UNSET
    currency: str | Unset = UNSET


@dataclass(frozen=True, slots=True)
class Founded:
    organization: Organization
    owner: Membership
    events: tuple[Emit, ...]


@dataclass(frozen=True, slots=True)
class OrganizationOutcome:
    organization: Organization
    events: tuple[Emit, ...]


def check_currency(code: str) -> None:
    """The shape (``^[A-Z]{3}$``) is checked at the edge; here, that ISO 4217 knows the code."""
    if pycountry.currencies.get(alpha_3=code) is None:
        raise Unprocessable(
            f"{code} is not an ISO 4217 currency code",
            code="INVALID_CURRENCY",
            extra={"errors": [{"path": "$.currency", "message": "unknown ISO 4217 code"}]},
        )


def slug_taken(slug: str) -> Conflict:
    return Conflict(
        f"The slug {slug!r} is already taken",
        code="SLUG_TAKEN",
        extra={"errors": [{"path": "$.slug", "message": "already taken"}]},
    )


def organization_upserted(organization: Organization) -> Emit:
    return Emit(
        OrganizationUpserted(
            organization_id=organization.id,
            name=organization.name,
            slug=organization.slug,
            logo_url=organization.logo_url,
            currency=organization.currency,
        ),
        aggregate_id=organization.id,
        aggregate_version=organization.version,
    )


def found_organization(
    *,
    organization_id: uuid.UUID,
    membership_id: uuid.UUID,
    creator: str,
    name: str,
    slug: str,
    logo_url: str | None,
    currency: str,
    now: datetime,
) -> Founded:
    """A new organization whose creator is its first owner (both at version 1)."""
    check_currency(currency)
    organization = Organization(
        id=organization_id,
        name=name,
        slug=slug,
        logo_url=logo_url,
        currency=currency,
        version=1,
        created_at=now,
        updated_at=now,
    )
    owner = first_owner(
        membership_id=membership_id, organization_id=organization_id, user_id=creator, now=now
    )
    return Founded(
        organization, owner.membership, (organization_upserted(organization), *owner.events)
    )


def edit_organization(
    organization: Organization, edit: OrganizationEdit, now: datetime
) -> OrganizationOutcome:
    """Apply the fields sent; every accepted edit is a new version (even one that changes
    nothing)."""
    edited = replace(
        organization,
        name=given(edit.name, organization.name),
        slug=given(edit.slug, organization.slug),
        logo_url=given(edit.logo_url, organization.logo_url),
        currency=given(edit.currency, organization.currency),
        version=organization.version + 1,
        updated_at=now,
    )
    return OrganizationOutcome(edited, (organization_upserted(edited),))


def check_edit(edit: OrganizationEdit) -> None:
    """What an edit can be refused for before anyone looks at the organization."""
    if not isinstance(edit.currency, Unset):
        check_currency(edit.currency)
