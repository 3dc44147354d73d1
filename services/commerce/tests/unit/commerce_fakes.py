"""In-memory fakes of commerce's ports: one ``Memory`` stands for the database; a transaction
works on it and puts it back as it was when the use case raises (a rollback)."""

from __future__ import annotations

import copy
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from coursemesh.chassis.transaction import Driver
from coursemesh.commerce.app.ports import (
    BundlePurchase,
    BuyerStanding,
    ExpiryOutcome,
    HostedPayment,
    HostedPaymentRequest,
    LeadEntry,
    OnboardingLink,
    PaymentDraft,
    PendingCheckout,
    Plan,
    PlanDraft,
    ProviderName,
    RefundRequest,
    Saved,
    StoredAnswer,
)
from coursemesh.commerce.domain.accounts import AccountEvent, AccountState, PaymentAccount
from coursemesh.commerce.domain.checkout import CourseFacts, LeadLink, Offer, Opening
from coursemesh.commerce.domain.entitlements import Entitlement, Transition
from coursemesh.commerce.domain.events import (
    entitlement_events,
    lead_created,
    transition_events,
)
from coursemesh.commerce.domain.history import LinkedPayment, RecordedStep
from coursemesh.commerce.domain.payments import (
    SUPERSEDED,
    WEBHOOK_ACTOR,
    LateReason,
    Payment,
    PaymentEvent,
    Purchase,
    PurchaseStatus,
    Receipt,
    Seller,
)
from coursemesh.contracts import Envelope, Event, envelope

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


@dataclass
class Course:
    organization_id: uuid.UUID
    status: str = "published"
    name: str | None = "30-day reset"


@dataclass
class Memory:
    """The state the fakes share: commerce's tables as dictionaries."""

    courses: dict[uuid.UUID, Course] = field(default_factory=dict)
    plans: dict[uuid.UUID, Plan] = field(default_factory=dict)  # by course
    organizations: dict[uuid.UUID, tuple[Seller, str]] = field(default_factory=dict)  # currency
    memberships: dict[tuple[uuid.UUID, str], uuid.UUID] = field(default_factory=dict)
    staff: set[tuple[uuid.UUID, str]] = field(default_factory=set)
    leads: dict[str, uuid.UUID] = field(default_factory=dict)  # by user
    links: set[tuple[uuid.UUID, uuid.UUID]] = field(default_factory=set)  # (org, lead)
    entitlements: dict[uuid.UUID, Entitlement] = field(default_factory=dict)
    transitions: list[Transition] = field(default_factory=list)
    answers: dict[tuple[str, str], StoredAnswer] = field(default_factory=dict)
    offers: dict[str, Offer] = field(default_factory=dict)
    purchases: dict[uuid.UUID, Purchase] = field(default_factory=dict)
    payments: dict[uuid.UUID, Payment] = field(default_factory=dict)
    webhook_events: set[tuple[str, str]] = field(default_factory=set)
    receipts: dict[uuid.UUID, Receipt] = field(default_factory=dict)
    events: list[Envelope[Event]] = field(default_factory=list)
    #: payment_transitions: (transaction, from, to, cause, actor)
    payment_transitions: list[tuple[uuid.UUID, str, str, str, str]] = field(default_factory=list)
    superseded_by: dict[uuid.UUID, uuid.UUID | None] = field(default_factory=dict)
    #: payment_transactions.payment_page_url, by transaction
    payment_pages: dict[uuid.UUID, str] = field(default_factory=dict)
    #: the organization each recorded webhook event was recorded for
    event_organizations: dict[tuple[str, str], uuid.UUID] = field(default_factory=dict)
    #: payment_accounts, by organization
    accounts: dict[uuid.UUID, PaymentAccount] = field(default_factory=dict)
    #: return_url_allowlists, by organization
    allowlists: dict[uuid.UUID, tuple[str, ...]] = field(default_factory=dict)
    #: (organization, urls, actor, at) of every allowlist written
    allowlist_writes: list[tuple[uuid.UUID, tuple[str, ...], str, datetime]] = field(
        default_factory=list
    )
    #: the staff (in ``staff`` too) who are owners or admins
    admins: set[tuple[uuid.UUID, str]] = field(default_factory=set)

    # --- helpers for the tests --------------------------------------------------------

    def organization(self, name: str = "Peak Form Studio", currency: str = "USD") -> uuid.UUID:
        org = uuid.uuid4()
        self.organizations[org] = (Seller(name, "https://cdn.example.com/logo.png"), currency)
        return org

    def account(
        self,
        org: uuid.UUID,
        *,
        enabled: bool = True,
        provider: ProviderName = "sandbox",
        account_id: str | None = None,
    ) -> PaymentAccount:
        """Give the organization a payment account (charges enabled unless told)."""
        account = PaymentAccount(
            organization_id=org,
            provider=provider,
            account_id=account_id or f"acct_{uuid.uuid4().hex[:16]}",
            charges_enabled=enabled,
            payouts_enabled=enabled,
            details_submitted=enabled,
            version=1,
        )
        self.accounts[org] = account
        return account

    def admin(self, org: uuid.UUID, user_id: str) -> None:
        """Make the user an owner/admin of the organization (staff included)."""
        self.staff.add((org, user_id))
        self.admins.add((org, user_id))

    def course(
        self, org: uuid.UUID, price: int | None = 0, *, status: str = "published"
    ) -> uuid.UUID:
        course = uuid.uuid4()
        self.courses[course] = Course(org, status)
        if price is not None:
            self.plans[course] = Plan(uuid.uuid4(), course, org, price, "USD", True, 1)
        return course

    def entitlement_of(self, user_id: str, course_id: uuid.UUID) -> Entitlement | None:
        for ent in self.entitlements.values():
            if (ent.user_id, ent.course_id) == (user_id, course_id):
                return ent
        return None

    def event_types(self) -> list[str]:
        return [e.type for e in self.events]

    def snapshot(self) -> dict[str, Any]:
        return copy.deepcopy(dict(vars(self).items()))

    def restore(self, snapshot: dict[str, Any]) -> None:
        for k, v in snapshot.items():
            setattr(self, k, v)

    def facts(self, course_id: uuid.UUID, user_id: str) -> CourseFacts | None:
        course = self.courses.get(course_id)
        if course is None:
            return None
        plan = self.plans.get(course_id)
        active = plan if plan is not None and plan.is_active else None
        org = course.organization_id
        lead_id = self.leads.get(user_id)
        return CourseFacts(
            status=course.status,
            organization_id=org,
            name=course.name,
            price_in_cents=active.price_in_cents if active else None,
            currency=active.currency if active else None,
            membership_id=self.memberships.get((org, user_id)),
            lead_id=lead_id,
            linked=lead_id is not None and (org, lead_id) in self.links,
            entitlement=self.entitlement_of(user_id, course_id),
        )


class FakeTransaction:
    """A :class:`~coursemesh.chassis.transaction.Transaction` on ``Memory``: events staged,
    then committed with the state or dropped with it."""

    def __init__(self, memory: Memory) -> None:
        self.memory = memory
        self.staged: list[Envelope[Event]] = []
        self.callbacks: list[Callable[[], Awaitable[None] | None]] = []

    def publish(
        self, payload: Event, *, aggregate_id: str | uuid.UUID, aggregate_version: int
    ) -> Envelope[Event]:
        env = envelope(payload, aggregate_id=aggregate_id, aggregate_version=aggregate_version)
        self.staged.append(env)
        return env

    def after_commit(self, callback: Callable[[], Awaitable[None] | None]) -> None:
        self.callbacks.append(callback)

    async def driver(self) -> Driver:
        raise AssertionError("the unit tests' fakes have no driver")


@asynccontextmanager
async def transaction(memory: Memory) -> AsyncIterator[FakeTransaction]:
    """Commit on a clean exit (events kept, callbacks run), roll back on an exception."""
    before = memory.snapshot()
    tx = FakeTransaction(memory)
    try:
        yield tx
    except BaseException:
        memory.restore(before)
        raise
    memory.events.extend(tx.staged)
    for callback in tx.callbacks:
        result = callback()
        if result is not None:
            await result


class FakeEntitlements:
    def __init__(self, tx: FakeTransaction) -> None:
        self._tx = tx
        self._memory = tx.memory

    async def lock(
        self, entitlement_id: uuid.UUID, organization_id: uuid.UUID | None = None
    ) -> Entitlement | None:
        ent = self._memory.entitlements.get(entitlement_id)
        if ent is None or (organization_id is not None and ent.organization_id != organization_id):
            return None
        return ent

    async def save(self, t: Transition) -> None:
        self._memory.entitlements[t.entitlement.id] = t.entitlement
        self._memory.transitions.append(t)
        for event in transition_events(t):
            self._tx.publish(
                event, aggregate_id=t.entitlement.id, aggregate_version=t.entitlement.version
            )

    async def refresh(self, ent: Entitlement) -> None:
        self._memory.entitlements[ent.id] = ent
        for event in entitlement_events(
            ent, previous_status="active", cause="payment_completed", reason=None
        ):
            self._tx.publish(event, aggregate_id=ent.id, aggregate_version=ent.version)


# --- checkout ----------------------------------------------------------------------------------


class FakeFastWrite:
    """The fast store: a new free entitlement written whole, or ``lost`` (nothing written) when
    a row it would write exists already."""

    def __init__(self, store: FakeFastStore) -> None:
        self._store = store
        self._memory = store.memory
        self._tx = FakeTransaction(store.memory)

    async def course_facts(self, course_id: uuid.UUID, user_id: str) -> CourseFacts | None:
        facts = self._memory.facts(course_id, user_id)
        if self._store.between_read_and_write is not None:
            hook, self._store.between_read_and_write = self._store.between_read_and_write, None
            await hook()
        return facts

    def accepts(self, opening: Opening) -> bool:
        return opening.kind == "free_new"

    async def save(self, opening: Opening, now: datetime) -> Saved:
        memory, ent, lead = self._memory, opening.entitlement, opening.lead
        assert opening.kind == "free_new"
        taken = memory.entitlement_of(ent.user_id, ent.course_id) is not None or (
            lead is not None
            and (
                (lead.new and lead.user_id in memory.leads)
                or (lead.organization_id, lead.lead_id) in memory.links
            )
        )
        self._store.saves.append("lost" if taken else "saved")
        if taken:
            return "lost"
        if lead is not None:
            memory.leads.setdefault(lead.user_id, lead.lead_id)
            memory.links.add((lead.organization_id, lead.lead_id))
            self._tx.publish(
                lead_created(lead, lead.lead_id, now),
                aggregate_id=lead.lead_id,
                aggregate_version=1,
            )
        memory.entitlements[ent.id] = ent
        memory.transitions.append(opening.transition)
        for event in transition_events(opening.transition):
            self._tx.publish(event, aggregate_id=ent.id, aggregate_version=1)
        memory.events.extend(self._tx.staged)
        return "saved"


class FakeFastStore:
    def __init__(self, memory: Memory) -> None:
        self.memory = memory
        self.saves: list[Saved] = []
        #: run once between the next read and its write (a concurrent checkout)
        self.between_read_and_write: Callable[[], Awaitable[None]] | None = None

    @asynccontextmanager
    async def write(self) -> AsyncIterator[FakeFastWrite]:
        yield FakeFastWrite(self)


class FakeCheckoutTransaction:
    def __init__(self, tx: FakeTransaction) -> None:
        self._tx = tx
        self._memory = tx.memory

    @property
    def transaction(self) -> FakeTransaction:
        return self._tx

    async def course_facts(self, course_id: uuid.UUID, user_id: str) -> CourseFacts | None:
        return self._memory.facts(course_id, user_id)

    def accepts(self, opening: Opening) -> bool:
        return True

    async def save(self, opening: Opening, now: datetime) -> Saved:
        if opening.lead is not None:
            await self.save_lead(opening.lead, now)
        ent = opening.entitlement
        new = opening.transition.previous_status is None
        if new and self._memory.entitlement_of(ent.user_id, ent.course_id) is not None:
            return "lost"
        self._memory.entitlements[ent.id] = ent
        self._memory.transitions.append(opening.transition)
        for event in transition_events(opening.transition):
            self._tx.publish(event, aggregate_id=ent.id, aggregate_version=ent.version)
        return "saved"

    async def stored_answer(self, user_id: str, key: str) -> StoredAnswer | None:
        return self._memory.answers.get((user_id, key))

    async def store_answer(
        self, user_id: str, key: str, fingerprint: str, response: Mapping[str, Any]
    ) -> None:
        self._memory.answers[(user_id, key)] = StoredAnswer(fingerprint, dict(response))

    async def offer(self, code: str) -> Offer | None:
        return self._memory.offers.get(code)

    async def buyer_standing(self, organization_id: uuid.UUID, user_id: str) -> BuyerStanding:
        lead_id = self._memory.leads.get(user_id)
        return BuyerStanding(
            self._memory.memberships.get((organization_id, user_id)),
            lead_id,
            lead_id is not None and (organization_id, lead_id) in self._memory.links,
        )

    async def save_lead(self, lead: LeadLink, now: datetime) -> None:
        lead_id = self._memory.leads.setdefault(lead.user_id, lead.lead_id)
        if (lead.organization_id, lead_id) not in self._memory.links:
            self._memory.links.add((lead.organization_id, lead_id))
            self._tx.publish(
                lead_created(lead, lead_id, now), aggregate_id=lead_id, aggregate_version=1
            )

    async def add_purchase(
        self, purchase_id: uuid.UUID, offer: Offer, user_id: str, status: PurchaseStatus
    ) -> None:
        self._memory.purchases[purchase_id] = Purchase(
            purchase_id, offer.id, offer.organization_id, user_id, status, 1
        )

    async def add_payment(self, draft: PaymentDraft) -> None:
        self._memory.payments[draft.id] = Payment(
            id=draft.id,
            organization_id=draft.organization_id,
            user_id=draft.user_id,
            entitlement_id=draft.entitlement_id,
            custom_course_purchase_id=draft.custom_course_purchase_id,
            amount_in_cents=draft.amount_in_cents,
            currency=draft.currency,
            provider=draft.provider,
            provider_transaction_id=None,
            provider_payment_id=None,
            status="pending",
            buyer_email=draft.buyer_email,
            description=draft.description,
            version=1,
            provider_account_id=draft.provider_account_id,
        )

    async def seller(self, organization_id: uuid.UUID) -> Seller | None:
        found = self._memory.organizations.get(organization_id)
        return found[0] if found else None

    async def payment_account(self, organization_id: uuid.UUID) -> PaymentAccount | None:
        return self._memory.accounts.get(organization_id)

    async def return_allowlist(self, organization_id: uuid.UUID) -> tuple[str, ...]:
        return self._memory.allowlists.get(organization_id, ())

    async def set_provider_transaction(
        self, transaction_id: uuid.UUID, provider_transaction_id: str, payment_page_url: str
    ) -> None:
        payment = self._memory.payments[transaction_id]
        self._memory.payments[transaction_id] = replace(
            payment, provider_transaction_id=provider_transaction_id
        )
        self._memory.payment_pages[transaction_id] = payment_page_url

    async def entitlement_payments(self, entitlement_id: uuid.UUID) -> Sequence[Payment]:
        return [
            p
            for p in self._memory.payments.values()
            if p.entitlement_id == entitlement_id and p.status == "pending"
        ]

    async def supersede_payment(
        self, payment: Payment, superseded_by: uuid.UUID | None, actor: str, now: datetime
    ) -> None:
        self._memory.payments[payment.id] = replace(
            payment, status="superseded", status_reason=SUPERSEDED, version=payment.version + 1
        )
        self._memory.superseded_by[payment.id] = superseded_by
        self._memory.payment_transitions.append(
            (payment.id, payment.status, "superseded", SUPERSEDED, actor)
        )


class FakeCheckoutStore:
    def __init__(self, memory: Memory) -> None:
        self.memory = memory
        self.opened = 0

    @asynccontextmanager
    async def write(self) -> AsyncIterator[FakeCheckoutTransaction]:
        self.opened += 1
        async with transaction(self.memory) as tx:
            yield FakeCheckoutTransaction(tx)


@dataclass
class FakeProvider:
    name: ProviderName = "sandbox"
    requests: list[HostedPaymentRequest] = field(default_factory=list)
    #: what ``confirm_event`` raises (None: the provider agrees)
    contradiction: Exception | None = None
    #: what ``expire_hosted_payment`` answers per session (default: expired)
    expiries: dict[str, ExpiryOutcome] = field(default_factory=dict)
    #: the sessions it was asked to expire, in order
    expired: list[str] = field(default_factory=list)
    #: the connected account named with each of ``expired``
    expired_on: list[str | None] = field(default_factory=list)
    #: what ``expire_hosted_payment`` and ``refund_payment`` raise (a provider failure)
    failure: Exception | None = None
    refunds: list[RefundRequest] = field(default_factory=list)
    #: the connected accounts as the provider has them (tests change them to "onboard")
    accounts: dict[str, AccountState] = field(default_factory=dict)
    #: (organization, seller name) of every account opened
    created: list[tuple[uuid.UUID, str]] = field(default_factory=list)
    #: the accounts read back
    retrieved: list[str] = field(default_factory=list)
    #: (account, return URL, refresh URL) of every onboarding link made
    links: list[tuple[str, str, str]] = field(default_factory=list)

    def calls(self) -> int:
        """How many times anything reached the provider."""
        return (
            len(self.requests)
            + len(self.expired)
            + len(self.refunds)
            + len(self.created)
            + len(self.retrieved)
            + len(self.links)
        )

    async def create_hosted_payment(self, tx: Any, request: HostedPaymentRequest) -> HostedPayment:
        self.requests.append(request)
        session = f"sbx_{len(self.requests)}"
        return HostedPayment(session, f"https://pay.example.com/pay/{session}")

    def verify_webhook(
        self, organization_id: uuid.UUID | None, body: bytes, headers: Mapping[str, str]
    ) -> PaymentEvent | AccountEvent:
        raise NotImplementedError

    async def create_account(
        self, tx: Any, organization_id: uuid.UUID, seller_name: str
    ) -> AccountState:
        self.created.append((organization_id, seller_name))
        state = AccountState(f"acct_fake{len(self.created)}", False, False, False)
        self.accounts[state.account_id] = state
        return state

    async def retrieve_account(self, tx: Any, account_id: str) -> AccountState:
        self.retrieved.append(account_id)
        return self.accounts[account_id]

    async def onboarding_link(
        self, tx: Any, account_id: str, return_url: str, refresh_url: str
    ) -> OnboardingLink:
        self.links.append((account_id, return_url, refresh_url))
        return OnboardingLink(
            f"https://connect.example.com/setup/{account_id}/{len(self.links)}",
            NOW + timedelta(minutes=5),
        )

    async def confirm_event(self, tx: Any, event: PaymentEvent) -> None:
        if self.contradiction is not None:
            raise self.contradiction

    async def expire_hosted_payment(
        self, tx: Any, provider_transaction_id: str, account_id: str | None
    ) -> ExpiryOutcome:
        if self.failure is not None:
            raise self.failure
        self.expired.append(provider_transaction_id)
        self.expired_on.append(account_id)
        return self.expiries.get(provider_transaction_id, "expired")

    async def refund_payment(self, tx: Any, request: RefundRequest) -> None:
        if self.failure is not None:
            raise self.failure
        self.refunds.append(request)


# --- staff -------------------------------------------------------------------------------------


class FakeDirectory:
    def __init__(self, memory: Memory) -> None:
        self._memory = memory

    async def is_staff(self, organization_id: uuid.UUID, user_id: str) -> bool:
        return (organization_id, user_id) in self._memory.staff


class FakeStaffTransaction:
    def __init__(self, tx: FakeTransaction) -> None:
        self.transaction = tx
        self._memory = tx.memory
        self.directory = FakeDirectory(tx.memory)
        self.entitlements = FakeEntitlements(tx)

    async def course_organization(self, course_id: uuid.UUID) -> uuid.UUID | None:
        course = self._memory.courses.get(course_id)
        return course.organization_id if course else None

    async def organization_currency(self, organization_id: uuid.UUID) -> str | None:
        found = self._memory.organizations.get(organization_id)
        return found[1] if found else None

    async def upsert_plan(self, plan: PlanDraft) -> Plan:
        old = self._memory.plans.get(plan.course_id)
        saved = Plan(
            id=old.id if old else uuid.uuid4(),
            course_id=plan.course_id,
            organization_id=plan.organization_id,
            price_in_cents=plan.price_in_cents,
            currency=plan.currency,
            is_active=plan.is_active,
            version=old.version + 1 if old else 1,
        )
        self._memory.plans[plan.course_id] = saved
        return saved

    async def user_entitlement(self, user_id: str, course_id: uuid.UUID) -> Entitlement | None:
        for ent in self._memory.entitlements.values():
            if (ent.user_id, ent.course_id) == (user_id, course_id):
                return ent
        return None

    async def membership_id(self, organization_id: uuid.UUID, user_id: str) -> uuid.UUID | None:
        return self._memory.memberships.get((organization_id, user_id))

    async def add_entitlement(self, t: Transition) -> bool:
        ent = t.entitlement
        if await self.user_entitlement(ent.user_id, ent.course_id) is not None:
            return False
        self._memory.entitlements[ent.id] = ent
        self._memory.transitions.append(t)
        for event in transition_events(t):
            self.transaction.publish(event, aggregate_id=ent.id, aggregate_version=ent.version)
        return True

    async def add_offer(self, offer: Offer) -> bool:
        if offer.code in self._memory.offers:
            return False
        self._memory.offers[offer.code] = offer
        return True

    async def course_entitlements(
        self, organization_id: uuid.UUID, course_id: uuid.UUID, limit: int, offset: int
    ) -> tuple[Sequence[Entitlement], int]:
        found = [
            e
            for e in self._memory.entitlements.values()
            if (e.organization_id, e.course_id) == (organization_id, course_id)
        ]
        return found[offset : offset + limit], len(found)

    async def organization_leads(
        self, organization_id: uuid.UUID, limit: int, offset: int
    ) -> tuple[Sequence[LeadEntry], int]:
        by_id = {lead_id: user for user, lead_id in self._memory.leads.items()}
        found = [
            LeadEntry(lead_id, by_id[lead_id], None, "course_purchase", None, NOW)
            for org, lead_id in self._memory.links
            if org == organization_id
        ]
        return found[offset : offset + limit], len(found)


class FakeStaffStore:
    def __init__(self, memory: Memory) -> None:
        self.memory = memory

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[FakeStaffTransaction]:
        async with transaction(self.memory) as tx:
            yield FakeStaffTransaction(tx)


# --- access history ------------------------------------------------------------------------------


class FakeHistoryReader:
    """The audit rows are ``Memory.transitions`` (every saved step, in the order written)."""

    def __init__(self, memory: Memory) -> None:
        self._memory = memory
        self.directory = FakeDirectory(memory)

    async def entitlement_in(
        self, organization_id: uuid.UUID, entitlement_id: uuid.UUID
    ) -> Entitlement | None:
        ent = self._memory.entitlements.get(entitlement_id)
        return ent if ent is not None and ent.organization_id == organization_id else None

    async def own_entitlement(self, user_id: str, course_id: uuid.UUID) -> Entitlement | None:
        return self._memory.entitlement_of(user_id, course_id)

    async def steps(
        self, entitlement_id: uuid.UUID, limit: int, offset: int
    ) -> tuple[Sequence[RecordedStep], int]:
        found = [
            self._step(t) for t in self._memory.transitions if t.entitlement.id == entitlement_id
        ]
        return found[offset : offset + limit], len(found)

    def _step(self, t: Transition) -> RecordedStep:
        payment = None
        if t.payment_transaction_id is not None:
            p = self._memory.payments.get(t.payment_transaction_id)
            payment = LinkedPayment(
                t.payment_transaction_id,
                p.status if p else None,
                p.amount_in_cents if p else None,
                p.currency if p else None,
            )
        return RecordedStep(
            at=t.at,
            from_status=t.previous_status,
            to_status=t.entitlement.status,
            cause=t.cause,
            actor=t.actor,
            reason=t.reason,
            payment=payment,
        )


class FakeHistoryStore:
    def __init__(self, memory: Memory) -> None:
        self.memory = memory

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[FakeHistoryReader]:
        yield FakeHistoryReader(self.memory)


# --- the checkout sweeper ----------------------------------------------------------------------


class FakeSweeperBatch:
    def __init__(self, tx: FakeTransaction) -> None:
        self._memory = tx.memory
        self.entitlements = FakeEntitlements(tx)

    async def claim_pending(
        self, changed_before: datetime, limit: int
    ) -> Sequence[PendingCheckout]:
        pending = sorted(
            (
                e
                for e in self._memory.entitlements.values()
                if e.status == "pending" and e.status_changed_at < changed_before
            ),
            key=lambda e: e.status_changed_at,
        )[:limit]
        return [PendingCheckout(e, self._open_payment(e.id)) for e in pending]

    def _open_payment(self, entitlement_id: uuid.UUID) -> uuid.UUID | None:
        open_ids = [
            p.id
            for p in self._memory.payments.values()
            if p.entitlement_id == entitlement_id and p.status == "pending"
        ]
        return open_ids[-1] if open_ids else None


class FakeSweeperStore:
    def __init__(self, memory: Memory) -> None:
        self.memory = memory

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[FakeSweeperBatch]:
        async with transaction(self.memory) as tx:
            yield FakeSweeperBatch(tx)


# --- webhooks ----------------------------------------------------------------------------------


class FakeLedger:
    async def lock_bundle_purchase(self, purchase_id: uuid.UUID) -> BundlePurchase | None:
        return None  # the use case's unit tests buy no bundle

    def __init__(self, tx: FakeTransaction) -> None:
        self.transaction = tx
        self._memory = tx.memory
        self.entitlements = FakeEntitlements(tx)

    async def account_organization(
        self, provider: ProviderName, account_id: str
    ) -> uuid.UUID | None:
        for account in self._memory.accounts.values():
            if (account.provider, account.account_id) == (provider, account_id):
                return account.organization_id
        return None

    async def lock_account(self, organization_id: uuid.UUID) -> PaymentAccount | None:
        return self._memory.accounts.get(organization_id)

    async def save_account(self, account: PaymentAccount) -> None:
        assert account.organization_id in self._memory.accounts
        self._memory.accounts[account.organization_id] = account

    async def record_event(
        self,
        provider: ProviderName,
        event: PaymentEvent | AccountEvent,
        organization_id: uuid.UUID,
    ) -> bool:
        key = (provider, event.provider_event_id)
        if key in self._memory.webhook_events:
            return False
        self._memory.webhook_events.add(key)
        self._memory.event_organizations[key] = organization_id
        return True

    async def lock_payment(
        self,
        own_id: uuid.UUID | None,
        provider_transaction_id: str | None,
        provider_payment_id: str | None,
    ) -> Payment | None:
        for p in self._memory.payments.values():
            if (
                p.id == own_id
                or (
                    provider_transaction_id and p.provider_transaction_id == provider_transaction_id
                )
                or (provider_payment_id and p.provider_payment_id == provider_payment_id)
            ):
                return p
        return None

    async def course_organization(self, course_id: uuid.UUID) -> uuid.UUID | None:
        course = self._memory.courses.get(course_id)
        return course.organization_id if course else None

    async def lock_purchase(self, purchase_id: uuid.UUID) -> Purchase | None:
        return self._memory.purchases.get(purchase_id)

    async def offer_of(self, purchase: Purchase) -> Offer:
        return next(o for o in self._memory.offers.values() if o.id == purchase.offer_id)

    async def set_payment_status(
        self,
        payment: Payment,
        status: str,
        *,
        completed_at: datetime | None = None,
        provider_payment_id: str | None = None,
    ) -> int:
        changed = replace(payment, status=status, version=payment.version + 1)
        if completed_at is not None:
            changed = replace(changed, provider_payment_id=provider_payment_id)
        self._memory.payments[payment.id] = changed
        return changed.version

    async def set_purchase_status(
        self, purchase: Purchase, status: PurchaseStatus, transaction_id: uuid.UUID | None
    ) -> None:
        self._memory.purchases[purchase.id] = replace(
            purchase, status=status, version=purchase.version + 1
        )

    async def seller(self, organization_id: uuid.UUID) -> Seller | None:
        found = self._memory.organizations.get(organization_id)
        return found[0] if found else None

    async def queue_receipt(self, receipt: Receipt) -> None:
        self._memory.receipts.setdefault(receipt.transaction_id, receipt)

    async def record_late_refund(
        self,
        payment: Payment,
        reason: LateReason,
        *,
        provider_payment_id: str | None,
        now: datetime,
    ) -> int:
        changed = replace(
            payment,
            status="refunded",
            status_reason=reason,
            provider_payment_id=provider_payment_id,
            version=payment.version + 1,
        )
        self._memory.payments[payment.id] = changed
        self._memory.payment_transitions.append(
            (payment.id, payment.status, "refunded", reason, WEBHOOK_ACTOR)
        )
        return changed.version


class FakeWebhookStore:
    def __init__(self, memory: Memory) -> None:
        self.memory = memory

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[FakeLedger]:
        async with transaction(self.memory) as tx:
            yield FakeLedger(tx)


# --- sellers' payment settings ---------------------------------------------------------------


class FakeAccountTransaction:
    def __init__(self, tx: FakeTransaction) -> None:
        self.transaction = tx
        self._memory = tx.memory

    async def is_admin(self, organization_id: uuid.UUID, user_id: str) -> bool:
        key = (organization_id, user_id)
        return key in self._memory.admins and key in self._memory.staff

    async def is_staff(self, organization_id: uuid.UUID, user_id: str) -> bool:
        return (organization_id, user_id) in self._memory.staff

    async def seller(self, organization_id: uuid.UUID) -> Seller | None:
        found = self._memory.organizations.get(organization_id)
        return found[0] if found else None

    async def payment_account(self, organization_id: uuid.UUID) -> PaymentAccount | None:
        return self._memory.accounts.get(organization_id)

    async def lock_account(self, organization_id: uuid.UUID) -> PaymentAccount | None:
        return self._memory.accounts.get(organization_id)

    async def add_account(self, account: PaymentAccount) -> None:
        assert account.organization_id not in self._memory.accounts  # the primary key
        self._memory.accounts[account.organization_id] = account

    async def save_account(self, account: PaymentAccount) -> None:
        assert account.organization_id in self._memory.accounts
        self._memory.accounts[account.organization_id] = account

    async def return_allowlist(self, organization_id: uuid.UUID) -> tuple[str, ...]:
        return self._memory.allowlists.get(organization_id, ())

    async def set_return_allowlist(
        self, organization_id: uuid.UUID, urls: tuple[str, ...], actor: str, now: datetime
    ) -> None:
        self._memory.allowlists[organization_id] = urls
        self._memory.allowlist_writes.append((organization_id, urls, actor, now))


class FakeAccountStore:
    def __init__(self, memory: Memory) -> None:
        self.memory = memory

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[FakeAccountTransaction]:
        async with transaction(self.memory) as tx:
            yield FakeAccountTransaction(tx)


def ids(values: Iterable[object]) -> list[str]:
    return [str(v) for v in values]
