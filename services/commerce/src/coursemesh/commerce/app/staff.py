"""Staff use cases of an organization: price, revoke, custom course offers, reads.

Authorization: staff = owner/admin/trainer membership of the org (projected from catalog). A
caller who is not staff of the org gets 404 for everything under ``/organizations/:orgId``, so
neither the org's resources nor their ids can be probed from outside.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from coursemesh.chassis.errors import Conflict, NotFound, Unprocessable
from coursemesh.chassis.staff import require_staff
from coursemesh.commerce.app.ports import (
    BuyerDirectory,
    DirectoryUnavailable,
    LeadEntry,
    Plan,
    PlanDraft,
    StaffStore,
    StaffTransaction,
    UserDirectoryUnavailable,
)
from coursemesh.commerce.domain.checkout import Offer
from coursemesh.commerce.domain.entitlements import (
    Entitlement,
    Transition,
    grant,
    transition,
    user_actor,
)
from coursemesh.contracts.commerce import PlanPriced


def _not_synced() -> Conflict:
    return Conflict(
        "The organization's profile has not reached commerce yet; retry shortly",
        code="ORGANIZATION_NOT_SYNCED",
    )


async def require_course(
    tx: StaffTransaction, organization_id: uuid.UUID, course_id: uuid.UUID
) -> None:
    """The course is one of the org's (any status) in commerce's projection."""
    if await tx.course_organization(course_id) != organization_id:
        raise NotFound("No such course in this organization", code="COURSE_NOT_FOUND")


def _now() -> datetime:
    return datetime.now(UTC)


class UserNotFound(Unprocessable):
    code = "USER_NOT_FOUND"


@dataclass(frozen=True, slots=True)
class GrantTarget:
    """Whom a grant is for: a user id, or an e-mail address (exactly one)."""

    user_id: str | None = None
    email: str | None = None


async def grant_in(
    tx: StaffTransaction,
    organization_id: uuid.UUID,
    course_id: uuid.UUID,
    staff_id: str,
    user_id: str,
    reason: str,
    *,
    new_id: uuid.UUID,
    now: datetime,
    write: bool,
) -> Transition:
    """The grant's transition for ``user_id`` (raises as :func:`grant` does), saved when
    ``write``. A checkout of the same user that inserts first is decided again on its row."""
    membership_id = await tx.membership_id(organization_id, user_id)
    while True:
        existing = await tx.user_entitlement(user_id, course_id)
        t = grant(
            existing,
            new_id=new_id,
            user_id=user_id,
            course_id=course_id,
            organization_id=organization_id,
            membership_id=membership_id,
            staff_id=staff_id,
            reason=reason,
            now=now,
        )
        if not write:
            return t
        if existing is not None:
            await tx.entitlements.save(t)
            return t
        if await tx.add_entitlement(t):
            return t


class Staff:
    def __init__(
        self,
        store: StaffStore,
        *,
        directory: BuyerDirectory | None = None,
        clock: Callable[[], datetime] = _now,
        new_id: Callable[[], uuid.UUID] = uuid.uuid4,
    ) -> None:
        self._store = store
        self._directory = directory
        self._clock = clock
        self._new_id = new_id

    async def user_with_email(self, email: str) -> str | None:
        """The identity provider's user with this address (None: none, or several)."""
        if self._directory is None:
            return None
        try:
            return await self._directory.user_with_email(email)
        except DirectoryUnavailable as exc:
            raise UserDirectoryUnavailable(
                "The identity provider could not be asked for this e-mail address; try again"
            ) from exc

    async def set_price(
        self,
        organization_id: uuid.UUID,
        course_id: uuid.UUID,
        user_id: str,
        price_in_cents: int,
        is_active: bool,
        refund_window_days: int | None = None,
        *,
        keep_refund_window: bool = True,
        access_days: int | None = None,
        keep_access_days: bool = True,
    ) -> Plan:
        """Upsert the course's plan (type 'course', keyed on the course, currency from the
        org) and publish ``plan.priced``; the refund window and the access duration are left
        as they are unless given."""
        async with self._store.transaction() as tx:
            await require_staff(tx.directory, organization_id, user_id)
            await require_course(tx, organization_id, course_id)
            currency = await tx.organization_currency(organization_id)
            if currency is None:
                raise _not_synced()
            plan = await tx.upsert_plan(
                PlanDraft(
                    course_id,
                    organization_id,
                    price_in_cents,
                    currency,
                    is_active,
                    refund_window_days,
                    keep_refund_window,
                    access_days,
                    keep_access_days,
                )
            )
            tx.transaction.publish(
                PlanPriced(
                    plan_id=plan.id,
                    course_id=course_id,
                    organization_id=organization_id,
                    price_in_cents=plan.price_in_cents,
                    currency=plan.currency,
                    is_active=plan.is_active,
                ),
                aggregate_id=plan.id,
                aggregate_version=plan.version,
            )
            return plan

    async def revoke_entitlement(
        self, organization_id: uuid.UUID, entitlement_id: uuid.UUID, user_id: str, reason: str
    ) -> Entitlement:
        async with self._store.transaction() as tx:
            await require_staff(tx.directory, organization_id, user_id)
            ent = await tx.entitlements.lock(entitlement_id, organization_id)
            if ent is None:
                raise NotFound("No such entitlement", code="ENTITLEMENT_NOT_FOUND")
            t = transition(
                ent, "staff_revoked", actor=user_actor(user_id), now=self._clock(), reason=reason
            )
            await tx.entitlements.save(t)
            return t.entitlement

    async def grant(
        self,
        organization_id: uuid.UUID,
        course_id: uuid.UUID,
        staff_id: str,
        target: GrantTarget,
        reason: str,
    ) -> Entitlement:
        """Give the user (by id, or by the address the identity provider knows them by) the
        course without a payment (comp access): a new entitlement, or their revoked one active
        again; audited with the staff member and the reason."""
        async with self._store.transaction() as tx:
            await require_staff(tx.directory, organization_id, staff_id)
        user_id = target.user_id or await self.user_with_email(target.email or "")
        if user_id is None:
            raise UserNotFound(f"No user has the e-mail address {target.email}")
        async with self._store.transaction() as tx:
            await require_staff(tx.directory, organization_id, staff_id)
            await require_course(tx, organization_id, course_id)
            t = await grant_in(
                tx,
                organization_id,
                course_id,
                staff_id,
                user_id,
                reason,
                new_id=self._new_id(),
                now=self._clock(),
                write=True,
            )
            return t.entitlement

    async def create_offer(
        self,
        organization_id: uuid.UUID,
        user_id: str,
        code: str,
        title: str,
        price_in_cents: int,
    ) -> Offer:
        async with self._store.transaction() as tx:
            await require_staff(tx.directory, organization_id, user_id)
            currency = await tx.organization_currency(organization_id)
            if currency is None:
                raise _not_synced()
            offer = Offer(self._new_id(), organization_id, code, title, price_in_cents, currency)
            if not await tx.add_offer(offer):
                raise Conflict("This offer code is taken", code="OFFER_CODE_TAKEN")
            return offer

    async def course_entitlements(
        self,
        organization_id: uuid.UUID,
        course_id: uuid.UUID,
        user_id: str,
        limit: int,
        offset: int,
    ) -> tuple[Sequence[Entitlement], int]:
        async with self._store.transaction() as tx:
            await require_staff(tx.directory, organization_id, user_id)
            await require_course(tx, organization_id, course_id)
            return await tx.course_entitlements(organization_id, course_id, limit, offset)

    async def organization_leads(
        self, organization_id: uuid.UUID, user_id: str, limit: int, offset: int
    ) -> tuple[Sequence[LeadEntry], int]:
        async with self._store.transaction() as tx:
            await require_staff(tx.directory, organization_id, user_id)
            return await tx.organization_leads(organization_id, limit, offset)
