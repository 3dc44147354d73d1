"""Membership roles and the rules for changing them (pure)."""

from __future__ import annotations

from coursemesh.chassis.errors import Conflict, Forbidden
from coursemesh.contracts.types import Role, is_staff_role

ADMIN_ROLES: frozenset[str] = frozenset({"owner", "admin"})

__all__ = [
    "ADMIN_ROLES",
    "Role",
    "check_membership_change",
    "is_staff_role",
    "require_admin",
    "require_staff",
]


def require_staff(role: Role) -> None:
    """The seed's ``isStaffRole`` guard for course, workout and curriculum actions."""
    if not is_staff_role(role):
        raise Forbidden(
            "Only staff (owner, admin, trainer) may do this", code="STAFF_ROLE_REQUIRED"
        )


def require_admin(role: Role) -> None:
    """Organization profile and member management belong to owners and admins."""
    if role not in ADMIN_ROLES:
        raise Forbidden("Only an owner or admin may do this", code="ADMIN_ROLE_REQUIRED")


def check_membership_change(
    *, actor_role: Role, current: Role | None, new: Role | None, owner_count: int
) -> None:
    """Whether an admin-level actor may move a member from ``current`` to ``new`` (None = out).

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
