"""Memberships, roles and the rules for changing them (pure).

Who may do what in an organization:

- anyone who is not a current member (no row, or a removed one) is told the organization does
  not exist (404 ``ORGANIZATION_NOT_FOUND``), so organization ids cannot be probed;
- course, workout and curriculum actions need a staff role (owner, admin, trainer; a ``member``
  gets 403 ``STAFF_ROLE_REQUIRED``);
- the profile and the member list are managed by owners and admins (403 ``ADMIN_ROLE_REQUIRED``);
  only an owner grants or takes away the owner role, and the last owner stays.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime

from coursemesh.catalog.domain.outcome import Emit
from coursemesh.chassis.errors import Conflict, Forbidden, NotFound
from coursemesh.contracts.catalog import MembershipChanged, membership_aggregate_id
from coursemesh.contracts.types import Role, is_staff_role

ADMIN_ROLES: frozenset[str] = frozenset({"owner", "admin"})

__all__ = [
    "ADMIN_ROLES",
    "Membership",
    "MembershipOutcome",
    "Role",
    "add_member",
    "change_member",
    "check_membership_change",
    "is_staff_role",
    "require_admin",
    "require_member",
    "require_staff",
]


@dataclass(frozen=True, slots=True)
class Membership:
    """One (organization, user) pair; ``role`` is ``None`` once removed (the row, its id and its
    version counter survive, so re-adding continues them)."""

    id: uuid.UUID
    organization_id: uuid.UUID
    user_id: str
    role: Role | None
    version: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class MembershipOutcome:
    membership: Membership
    created: bool
    """A new row (otherwise an existing row changes)."""
    events: tuple[Emit, ...]


def require_member(role: Role | None) -> Role:
    """The caller's role, or 404 when they are not in the organization (or it does not exist:
    an outsider cannot tell the two apart)."""
    if role is None:
        raise NotFound("Organization not found", code="ORGANIZATION_NOT_FOUND")
    return role


def require_staff(role: Role | None) -> Role:
    """Course, workout and curriculum actions: staff only (owner, admin, trainer)."""
    role = require_member(role)
    if not is_staff_role(role):
        raise Forbidden(
            "Only staff (owner, admin, trainer) may do this", code="STAFF_ROLE_REQUIRED"
        )
    return role


def require_admin(role: Role | None) -> Role:
    """Organization profile and member management belong to owners and admins."""
    role = require_member(role)
    if role not in ADMIN_ROLES:
        raise Forbidden("Only an owner or admin may do this", code="ADMIN_ROLE_REQUIRED")
    return role


def check_membership_change(
    *, actor_role: Role, current: Role | None, new: Role | None, owner_count: int
) -> None:
    """Whether an actor may move a member from ``current`` to ``new`` (None = out).

    Only an owner grants or takes away the owner role, so an admin cannot promote themselves
    over the owners; and the last owner can be neither removed nor demoted, so an organization
    is never left without someone who can manage it.
    """
    require_admin(actor_role)
    touches_owner = current == "owner" or new == "owner"
    if touches_owner and actor_role != "owner":
        raise Forbidden(
            "Only an owner may grant or remove the owner role", code="OWNER_ROLE_REQUIRED"
        )
    if current == "owner" and new != "owner" and owner_count <= 1:
        raise Conflict(
            "The last owner of an organization cannot be removed or demoted", code="LAST_OWNER"
        )


def membership_changed(membership: Membership) -> Emit:
    return Emit(
        MembershipChanged(
            organization_id=membership.organization_id,
            user_id=membership.user_id,
            membership_id=membership.id,
            role=membership.role,
            is_staff=is_staff_role(membership.role),
        ),
        aggregate_id=membership_aggregate_id(membership.organization_id, membership.user_id),
        aggregate_version=membership.version,
    )


def first_owner(
    *, membership_id: uuid.UUID, organization_id: uuid.UUID, user_id: str, now: datetime
) -> MembershipOutcome:
    """The creator of an organization is its first owner."""
    owner = Membership(
        id=membership_id,
        organization_id=organization_id,
        user_id=user_id,
        role="owner",
        version=1,
        created_at=now,
        updated_at=now,
    )
    return MembershipOutcome(owner, created=True, events=(membership_changed(owner),))


def add_member(
    *,
    actor_role: Role,
    existing: Membership | None,
    organization_id: uuid.UUID,
    user_id: str,
    role: Role,
    membership_id: uuid.UUID,
    now: datetime,
) -> MembershipOutcome:
    """Add ``user_id`` with ``role``: a removed member comes back with their membership id and
    version counter; a current member is 409 ``MEMBER_EXISTS``."""
    check_membership_change(actor_role=actor_role, current=None, new=role, owner_count=0)
    if existing is not None and existing.role is not None:
        raise Conflict(
            "The user is already a member of the organization",
            code="MEMBER_EXISTS",
            extra={"errors": [{"path": "$.userId", "message": "already a member"}]},
        )
    if existing is not None:
        member = replace(existing, role=role, version=existing.version + 1, updated_at=now)
        return MembershipOutcome(member, created=False, events=(membership_changed(member),))
    member = Membership(
        id=membership_id,
        organization_id=organization_id,
        user_id=user_id,
        role=role,
        version=1,
        created_at=now,
        updated_at=now,
    )
    return MembershipOutcome(member, created=True, events=(membership_changed(member),))


def change_member(
    *,
    actor_role: Role,
    existing: Membership | None,
    new: Role | None,
    owner_count: int,
    now: datetime,
) -> MembershipOutcome:
    """Give a current member the role ``new``, or remove them (``new=None``)."""
    if existing is None or existing.role is None:
        raise NotFound("Member not found", code="MEMBER_NOT_FOUND")
    check_membership_change(
        actor_role=actor_role, current=existing.role, new=new, owner_count=owner_count
    )
    member = replace(existing, role=new, version=existing.version + 1, updated_at=now)
    return MembershipOutcome(member, created=False, events=(membership_changed(member),))
