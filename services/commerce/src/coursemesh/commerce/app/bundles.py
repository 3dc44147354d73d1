"""Course bundles: staff define and list them, anyone sees an available one, a buyer checks one
out (``domain.bundles`` has the rules).

A bundle checkout is a course checkout of each course it includes, in one transaction, paid by
ONE payment: each course's entitlement is opened as the course checkout opens it (a new row, or
the buyer's pending or revoked one reopened), the payments still open for those entitlements
(a course checkout's, an earlier bundle checkout's) are superseded first, and one hosted
payment is opened for the whole amount, naming the bundle purchase. The provider's webhook then
settles every entitlement of the purchase (``app.webhooks``). A free bundle (or one whose
prorated price is 0) opens every course at once."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import msgspec

from coursemesh.chassis.staff import require_staff
from coursemesh.commerce.app.checkout import (
    NO_RETURN,
    Checkout,
    CheckoutResponse,
    ReturnRequest,
    answer_once,
    checkout_fingerprint,
)
from coursemesh.commerce.app.ports import (
    BundleCheckoutStore,
    BundleCheckoutTransaction,
    BundleCourse,
    BundleItem,
    BundlePurchase,
    BundleStore,
    CheckoutStore,
    PaymentProvider,
    TransactionalCheckoutStore,
)
from coursemesh.commerce.domain.bundles import (
    Bundle,
    BundleNotFound,
    CourseOffer,
    available,
    bundle_reason,
    new_bundle,
    quote_bundle,
)
from coursemesh.commerce.domain.checkout import (
    Buyer,
    Charge,
    CourseFacts,
    Opening,
    OpeningKind,
    lead_link,
)
from coursemesh.commerce.domain.entitlements import Entitlement, open_for_checkout


def _now() -> datetime:
    return datetime.now(UTC)


def _offer(course: BundleCourse) -> CourseOffer:
    return CourseOffer(
        course_id=course.course_id,
        organization_id=course.organization_id,
        name=course.name,
        status=course.status,
        price_in_cents=course.price_in_cents,
        currency=course.currency,
    )


@dataclass(frozen=True, slots=True)
class BundleDraft:
    name: str
    course_ids: list[uuid.UUID]
    price_in_cents: int


@dataclass(frozen=True, slots=True)
class PublicBundle:
    bundle: Bundle
    courses: list[BundleCourse]


class Bundles:
    def __init__(
        self,
        store: BundleStore,
        *,
        clock: Callable[[], datetime] = _now,
        new_id: Callable[[], uuid.UUID] = uuid.uuid4,
    ) -> None:
        self._store = store
        self._clock = clock
        self._new_id = new_id

    async def create(self, organization_id: uuid.UUID, user_id: str, draft: BundleDraft) -> Bundle:
        async with self._store.transaction() as tx:
            await require_staff(tx.directory, organization_id, user_id)
            courses = await tx.bundle_courses(list(dict.fromkeys(draft.course_ids)))
            bundle = new_bundle(
                id=self._new_id(),
                organization_id=organization_id,
                name=draft.name,
                course_ids=draft.course_ids,
                price_in_cents=draft.price_in_cents,
                offers={c: _offer(course) for c, course in courses.items()},
                now=self._clock(),
            )
            await tx.add_bundle(bundle, user_id)
        return bundle

    async def listed(
        self, organization_id: uuid.UUID, user_id: str, offset: int, limit: int
    ) -> tuple[list[Bundle], int]:
        async with self._store.transaction() as tx:
            await require_staff(tx.directory, organization_id, user_id)
            return await tx.bundles(organization_id, offset, limit)

    async def public(self, bundle_id: uuid.UUID) -> PublicBundle:
        """An available bundle with its courses (their list prices); else 404."""
        async with self._store.transaction() as tx:
            bundle = await tx.bundle(bundle_id)
            if bundle is None:
                raise BundleNotFound("No such bundle")
            courses = await tx.bundle_courses(list(bundle.course_ids))
        if not available(bundle, {c: _offer(course) for c, course in courses.items()}):
            raise BundleNotFound("This bundle is not available")
        return PublicBundle(bundle, [courses[c] for c in bundle.course_ids])


class BundleCourseView(msgspec.Struct, rename="camel"):
    course_id: uuid.UUID
    entitlement_id: uuid.UUID
    list_price_in_cents: int


class BundleCheckoutResponse(CheckoutResponse):
    """A bundle checkout: what it charges and the courses it includes (``excludedCourseIds``:
    left out because the buyer owns them)."""

    bundle_id: uuid.UUID | None = None
    bundle_purchase_id: uuid.UUID | None = None
    amount_in_cents: int = 0
    currency: str = ""
    courses: list[BundleCourseView] = msgspec.field(default_factory=list)
    excluded_course_ids: list[uuid.UUID] = msgspec.field(default_factory=list)


class BundleCheckout(Checkout):
    """The course checkout's rules, one payment for the courses of a bundle."""

    def __init__(
        self,
        *,
        bundles: BundleCheckoutStore,
        fast: CheckoutStore,
        store: TransactionalCheckoutStore,
        provider: PaymentProvider,
        checkout_ttl: timedelta,
        public_base_url: str,
        platform_fee_bps: int = 0,
        clock: Callable[[], datetime] = _now,
        new_id: Callable[[], uuid.UUID] = uuid.uuid4,
    ) -> None:
        super().__init__(
            fast=fast,
            store=store,
            provider=provider,
            checkout_ttl=checkout_ttl,
            public_base_url=public_base_url,
            platform_fee_bps=platform_fee_bps,
            clock=clock,
            new_id=new_id,
        )
        self._bundles = bundles

    async def bundle(
        self,
        bundle_id: uuid.UUID,
        buyer: Buyer,
        idempotency_key: str | None,
        returns: ReturnRequest = NO_RETURN,
    ) -> BundleCheckoutResponse:
        now = self._clock()
        async with self._bundles.write() as tx:

            async def run() -> CheckoutResponse:
                return await self._bundle_in(tx, bundle_id, buyer, now, returns)

            fingerprint = checkout_fingerprint("bundle", bundle_id, returns)
            answer = await answer_once(
                tx, buyer.user_id, idempotency_key, fingerprint, run, BundleCheckoutResponse
            )
        assert isinstance(answer, BundleCheckoutResponse)
        return answer

    async def _facts(
        self, tx: BundleCheckoutTransaction, bundle: Bundle, buyer: Buyer
    ) -> dict[uuid.UUID, CourseFacts | None]:
        """Each course's checkout facts, its buyer's entitlement locked (in the courses' id
        order, so two checkouts of overlapping bundles wait for each other, never deadlock)."""
        return {c: await tx.course_facts(c, buyer.user_id) for c in sorted(bundle.course_ids)}

    async def _bundle_in(
        self,
        tx: BundleCheckoutTransaction,
        bundle_id: uuid.UUID,
        buyer: Buyer,
        now: datetime,
        returns: ReturnRequest,
    ) -> BundleCheckoutResponse:
        bundle = await tx.bundle(bundle_id)
        if bundle is None:
            raise BundleNotFound("No such bundle")
        facts = await self._facts(tx, bundle, buyer)
        offers = {
            c: CourseOffer(c, f.organization_id, f.name, f.status, f.price_in_cents, f.currency)
            for c, f in facts.items()
            if f is not None
        }
        ents = {c: f.entitlement if f else None for c, f in facts.items()}
        quote = quote_bundle(bundle, offers, ents)
        org = bundle.organization_id
        urls = await self._return_urls(tx, org, returns)
        free = quote.amount_in_cents == 0
        account = None if free else await self._account(tx, org)
        payment_id = None if free else self._new_id()
        purchase_id = self._new_id()
        items: list[BundleItem] = []
        lead_done = False
        for course_id in quote.included:
            course = facts[course_id]
            assert course is not None
            assert course.price_in_cents is not None
            opening = await self._open_course(
                tx,
                bundle,
                course_id,
                course,
                buyer,
                now,
                payment_id=payment_id,
                with_lead=not lead_done,
            )
            lead_done = True
            items.append(BundleItem(course_id, opening.entitlement.id, course.price_in_cents))
            if opening.kind == "reopen":
                await self._supersede_open_payments(
                    tx, opening.entitlement.id, buyer, payment_id, now
                )
        await tx.add_bundle_purchase(
            BundlePurchase(
                id=purchase_id,
                bundle_id=bundle.id,
                organization_id=org,
                user_id=buyer.user_id,
                amount_in_cents=quote.amount_in_cents,
                currency=quote.currency,
                payment_transaction_id=payment_id,
                items=tuple(items),
                excluded_course_ids=quote.excluded,
            )
        )
        url = None
        if payment_id is not None:
            assert account is not None
            url = await self._open_payment(
                tx,
                account=account,
                organization_id=org,
                buyer=buyer,
                charge=Charge(quote.amount_in_cents, quote.currency, bundle.name),
                now=now,
                urls=urls,
                transaction_id=payment_id,
                bundle_purchase_id=purchase_id,
            )
        return BundleCheckoutResponse(
            payment_page_url=url,
            payment_id=payment_id,
            bundle_id=bundle.id,
            bundle_purchase_id=purchase_id,
            amount_in_cents=quote.amount_in_cents,
            currency=quote.currency,
            courses=[
                BundleCourseView(i.course_id, i.entitlement_id, i.list_price_in_cents)
                for i in items
            ],
            excluded_course_ids=list(quote.excluded),
        )

    async def _open_course(
        self,
        tx: BundleCheckoutTransaction,
        bundle: Bundle,
        course_id: uuid.UUID,
        facts: CourseFacts,
        buyer: Buyer,
        now: datetime,
        *,
        payment_id: uuid.UUID | None,
        with_lead: bool,
    ) -> Opening:
        """The course's entitlement opened as a course checkout opens it (free: active at
        once; paid: pending, its step naming the bundle's payment). A concurrent checkout of
        the same buyer that inserted the row first is decided again on that row."""
        while True:
            existing: Entitlement | None = facts.entitlement
            transition = open_for_checkout(
                existing,
                new_id=self._new_id(),
                user_id=buyer.user_id,
                course_id=course_id,
                organization_id=bundle.organization_id,
                membership_id=facts.membership_id,
                buyer_email=buyer.email,
                free=payment_id is None,
                now=now,
            )
            transition = replace(
                transition, reason=bundle_reason(bundle), payment_transaction_id=payment_id
            )
            lead = (
                lead_link(
                    organization_id=bundle.organization_id,
                    buyer=buyer,
                    source="course_purchase",
                    membership_id=facts.membership_id,
                    lead_id=facts.lead_id,
                    linked=facts.linked,
                    new_lead_id=self._new_id(),
                )
                if with_lead
                else None
            )
            kind: OpeningKind = (
                "reopen"
                if existing is not None
                else "free_new"
                if payment_id is None
                else "paid_new"
            )
            opening = Opening(kind, transition, lead, None)
            if await tx.save(opening, now) == "saved":
                return opening
            again = await tx.course_facts(course_id, buyer.user_id)
            assert again is not None
            facts = again
