"""Payment webhooks: verified provider events change payments, entitlements and purchases."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa
from opentelemetry import trace
from sqlalchemy.dialects.postgresql import insert as pg_insert

from coursemesh.chassis.db import Database, UnitOfWork
from coursemesh.chassis.errors import DomainError, Forbidden, NotFound, Unprocessable
from coursemesh.commerce.adapters.tables import (
    courses,
    custom_course_offers,
    custom_course_purchases,
    organizations,
    payment_transactions,
    receipts,
    webhook_events,
)
from coursemesh.commerce.app import entitlement_store as store
from coursemesh.commerce.app.checkout import publish_purchase
from coursemesh.commerce.app.metrics import (
    webhook_cross_org_mismatches,
    webhook_payment_mismatches,
)
from coursemesh.commerce.app.ports import (
    META_ENTITLEMENT,
    META_PURCHASE,
    META_TRANSACTION,
    Outcome,
    PaymentEvent,
    PaymentProvider,
)
from coursemesh.commerce.domain.entitlements import Cause, refresh_payment_link, transition
from coursemesh.commerce.domain.pricing import format_amount
from coursemesh.contracts.commerce import PaymentCompleted, PaymentFailed, PaymentRefunded

log = logging.getLogger("coursemesh.commerce.webhooks")

Handled = Literal["applied", "duplicate", "ignored"]
# The receipt sender's wake-up of the current webhook (set per call; contextvars keep
# concurrent requests apart).
_receipt_nudge: ContextVar[Callable[[], None]] = ContextVar("receipt_nudge")
ACTOR = "provider-webhook"
_OUTCOME_CAUSES: dict[Outcome, Cause] = {
    "completed": "payment_completed",
    "failed": "payment_failed",
    "expired": "checkout_expired",
    "refunded": "payment_refunded",
    "disputed": "payment_disputed",
}


def _uuid(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None


async def handle_payment_event(
    db: Database,
    organization_id: uuid.UUID,
    provider: PaymentProvider,
    event: PaymentEvent,
    nudge_receipts: Callable[[], None] = lambda: None,
) -> Handled:
    """Apply one verified webhook. The provider event id is recorded in the same transaction,
    so a replay changes nothing; any rejection rolls back, recording nothing.
    ``nudge_receipts`` wakes the receipt sender after a commit that queued one."""
    _receipt_nudge.set(nudge_receipts)
    now = datetime.now(UTC)
    async with db.unit_of_work() as uow:
        recorded = await uow.session.execute(
            pg_insert(webhook_events)
            .values(
                provider=provider.name,
                provider_event_id=event.provider_event_id,
                organization_id=organization_id,
                type=event.type,
            )
            .on_conflict_do_nothing()
            .returning(webhook_events.c.provider_event_id)
        )
        if recorded.first() is None:
            return "duplicate"
        if event.outcome is None:
            return "ignored"
        txn = await _transaction(uow, event)
        metadata = event.metadata or {}
        ent_id = _uuid(metadata.get(META_ENTITLEMENT)) or (txn["entitlement_id"] if txn else None)
        purchase_id = _uuid(metadata.get(META_PURCHASE)) or (
            txn["custom_course_purchase_id"] if txn else None
        )
        if ent_id is not None:
            await _apply_to_entitlement(uow, provider, organization_id, ent_id, txn, event, now)
        elif purchase_id is not None:
            await _apply_to_purchase(uow, provider, organization_id, purchase_id, txn, event, now)
        else:
            raise NotFound("The webhook names no known purchase", code="UNKNOWN_PAYMENT")
        return "applied"


async def _transaction(uow: UnitOfWork, event: PaymentEvent) -> Mapping[Any, Any] | None:
    t = payment_transactions
    conditions = []
    own_id = _uuid((event.metadata or {}).get(META_TRANSACTION))
    if own_id is not None:
        conditions.append(t.c.id == own_id)
    if event.provider_transaction_id:
        conditions.append(t.c.provider_transaction_id == event.provider_transaction_id)
    if event.provider_payment_id:
        conditions.append(t.c.provider_payment_id == event.provider_payment_id)
    if not conditions:
        return None
    query = sa.select(t).where(sa.or_(*conditions)).with_for_update()
    return (await uow.session.execute(query)).mappings().first()


def _cross_org(kind: str, path_org: uuid.UUID, owner_org: uuid.UUID, event: PaymentEvent) -> None:
    """The seed's guard: log with the trace, count, refuse. Nothing is mutated (rollback)."""
    span = trace.get_current_span().get_span_context()
    log.error(
        "%s webhook cross-org mismatch: url org %s, owner org %s, event %s (trace %032x)",
        kind,
        path_org,
        owner_org,
        event.provider_event_id,
        span.trace_id,
    )
    webhook_cross_org_mismatches.add(1, kind=kind)
    raise Forbidden("The purchase does not belong to this organization", code="WEBHOOK_CROSS_ORG")


async def _check_payment(
    uow: UnitOfWork,
    provider: PaymentProvider,
    org_id: uuid.UUID,
    txn: Mapping[Any, Any],
    event: PaymentEvent,
    *,
    entitlement_id: uuid.UUID | None = None,
    purchase_id: uuid.UUID | None = None,
) -> None:
    """A valid signature says who sent the event, not that it is about what we charged: the
    event must name this purchase's own transaction, carry its amount and currency, and agree
    with the provider's records. A refusal is logged with the trace, counted, and rolls back."""
    try:
        if (txn["entitlement_id"], txn["custom_course_purchase_id"]) != (
            entitlement_id,
            purchase_id,
        ) or (
            event.provider_transaction_id is not None
            and event.provider_transaction_id != txn["provider_transaction_id"]
        ):
            raise Unprocessable(
                "The webhook's payment is not the one of this purchase",
                code="WEBHOOK_PAYMENT_MISMATCH",
            )
        if _amount_differs(txn, event):
            raise Unprocessable(
                f"The webhook's amount ({event.amount_in_cents} {event.currency}) is not what"
                f" the checkout charged ({txn['amount_in_cents']} {txn['currency']})",
                code="WEBHOOK_AMOUNT_MISMATCH",
            )
        await provider.confirm_event(uow.session, event)
    except DomainError as exc:
        span = trace.get_current_span().get_span_context()
        log.warning(
            "payment webhook refused (%s): org %s, transaction %s, event %s (trace %032x): %s",
            exc.code,
            org_id,
            txn["id"],
            event.provider_event_id,
            span.trace_id,
            exc.detail,
        )
        webhook_payment_mismatches.add(1, code=exc.code)
        raise


def _amount_differs(txn: Mapping[Any, Any], event: PaymentEvent) -> bool:
    if event.amount_in_cents is None and event.currency is None:
        # Only a completion has to say what was paid; e.g. a Stripe refund may be partial.
        return event.outcome == "completed"
    return (event.amount_in_cents, (event.currency or "").upper()) != (
        txn["amount_in_cents"],
        str(txn["currency"]).upper(),
    )


async def _apply_to_entitlement(
    uow: UnitOfWork,
    provider: PaymentProvider,
    org_id: uuid.UUID,
    ent_id: uuid.UUID,
    txn: Mapping[Any, Any] | None,
    event: PaymentEvent,
    now: datetime,
) -> None:
    ent = await store.lock(uow, id=ent_id)
    if ent is None:
        raise NotFound("The webhook names an unknown entitlement", code="UNKNOWN_ENTITLEMENT")
    # entitlement -> program -> org, as in the seed (the course projection is authoritative).
    course_org = (
        await uow.session.execute(
            sa.select(courses.c.organization_id).where(courses.c.id == ent.course_id)
        )
    ).scalar_one_or_none() or ent.organization_id
    if course_org != org_id or (txn is not None and txn["organization_id"] != org_id):
        _cross_org("course-entitlement", org_id, course_org, event)
    if txn is None:
        raise NotFound("The webhook names an unknown payment", code="UNKNOWN_PAYMENT")
    await _check_payment(uow, provider, org_id, txn, event, entitlement_id=ent.id)
    txn_id: uuid.UUID = txn["id"]
    if event.outcome == "completed":
        if await _complete_transaction(uow, txn, event, now, entitlement_id=ent.id):
            await _queue_receipt(uow, txn)
        refreshed = refresh_payment_link(ent, txn_id)
        if ent.status == "active":
            if refreshed is not None:
                await store.update(uow, refreshed)
                store.publish_state(
                    uow, refreshed, previous_status="active", cause="payment_completed", reason=None
                )
            return
        t = transition(ent, "payment_completed", actor=ACTOR, now=now, transaction_id=txn_id)
    else:
        await _close_transaction(uow, txn, event, now, entitlement_id=ent.id)
        cause = _OUTCOME_CAUSES[event.outcome or "failed"]
        # Only the payment that activated the row can take it back; a failed or expired
        # attempt only ends a pending checkout.
        still_relevant = (
            ent.status == "pending"
            if event.outcome in ("failed", "expired")
            else ent.status == "active" and ent.source_payment_transaction_id == txn_id
        )
        if not still_relevant:
            return
        t = transition(ent, cause, actor=ACTOR, now=now, reason=event.failure_reason)
    await store.update(uow, t.entitlement)
    await store.record(uow, t)


async def _apply_to_purchase(
    uow: UnitOfWork,
    provider: PaymentProvider,
    org_id: uuid.UUID,
    purchase_id: uuid.UUID,
    txn: Mapping[Any, Any] | None,
    event: PaymentEvent,
    now: datetime,
) -> None:
    p = custom_course_purchases
    purchase = (
        (await uow.session.execute(sa.select(p).where(p.c.id == purchase_id).with_for_update()))
        .mappings()
        .first()
    )
    if purchase is None:
        raise NotFound("The webhook names an unknown purchase", code="UNKNOWN_PURCHASE")
    if purchase["organization_id"] != org_id or (
        txn is not None and txn["organization_id"] != org_id
    ):
        _cross_org("custom-course-purchase", org_id, purchase["organization_id"], event)
    if txn is None:
        raise NotFound("The webhook names an unknown payment", code="UNKNOWN_PAYMENT")
    await _check_payment(uow, provider, org_id, txn, event, purchase_id=purchase_id)
    offer = (
        (
            await uow.session.execute(
                sa.select(custom_course_offers).where(
                    custom_course_offers.c.id == purchase["offer_id"]
                )
            )
        )
        .mappings()
        .one()
    )
    if event.outcome == "completed":
        if await _complete_transaction(uow, txn, event, now, purchase_id=purchase_id):
            await _queue_receipt(uow, txn)
        if purchase["status"] != "paid":
            await uow.session.execute(
                sa.update(p)
                .where(p.c.id == purchase_id)
                .values(status="paid", transaction_id=txn["id"], version=p.c.version + 1)
            )
            publish_purchase(uow, offer, purchase_id, purchase["user_id"], txn["id"], now)
        return
    await _close_transaction(uow, txn, event, now, purchase_id=purchase_id)
    new_status = {"refunded": "refunded", "disputed": "refunded"}.get(event.outcome or "", "failed")
    if (new_status == "failed") == (purchase["status"] == "pending"):
        await uow.session.execute(
            sa.update(p)
            .where(p.c.id == purchase_id)
            .values(status=new_status, version=p.c.version + 1)
        )


def _payment_fields(
    txn: Mapping[Any, Any], entitlement_id: uuid.UUID | None, purchase_id: uuid.UUID | None
) -> dict[str, Any]:
    return {
        "transaction_id": txn["id"],
        "entitlement_id": entitlement_id,
        "custom_course_purchase_id": purchase_id,
        "organization_id": txn["organization_id"],
        "user_id": txn["user_id"],
        "amount_in_cents": txn["amount_in_cents"],
        "currency": txn["currency"],
        "provider": txn["provider"],
        "provider_transaction_id": txn["provider_transaction_id"],
    }


async def _set_status(uow: UnitOfWork, txn: Mapping[Any, Any], **values: Any) -> int:
    version = int(txn["version"]) + 1
    await uow.session.execute(
        sa.update(payment_transactions)
        .where(payment_transactions.c.id == txn["id"])
        .values(version=version, **values)
    )
    return version


async def _complete_transaction(
    uow: UnitOfWork,
    txn: Mapping[Any, Any],
    event: PaymentEvent,
    now: datetime,
    *,
    entitlement_id: uuid.UUID | None = None,
    purchase_id: uuid.UUID | None = None,
) -> bool:
    """Mark the transaction completed; True the first time (not on a replayed completion)."""
    if txn["status"] == "completed":
        return False
    version = await _set_status(
        uow,
        txn,
        status="completed",
        completed_at=now,
        provider_payment_id=event.provider_payment_id or txn["provider_payment_id"],
    )
    uow.publish(
        PaymentCompleted(**_payment_fields(txn, entitlement_id, purchase_id), completed_at=now),
        aggregate_id=txn["id"],
        aggregate_version=version,
    )
    return True


async def _close_transaction(
    uow: UnitOfWork,
    txn: Mapping[Any, Any],
    event: PaymentEvent,
    now: datetime,
    *,
    entitlement_id: uuid.UUID | None = None,
    purchase_id: uuid.UUID | None = None,
) -> None:
    outcome = event.outcome
    fields = _payment_fields(txn, entitlement_id, purchase_id)
    if outcome in ("failed", "expired") and txn["status"] == "pending":
        version = await _set_status(uow, txn, status=outcome)
        if outcome == "failed":
            uow.publish(
                PaymentFailed(**fields, failure_reason=event.failure_reason, failed_at=now),
                aggregate_id=txn["id"],
                aggregate_version=version,
            )
    elif outcome in ("refunded", "disputed") and txn["status"] == "completed":
        version = await _set_status(uow, txn, status=outcome)
        uow.publish(
            PaymentRefunded(**fields, refunded_at=now),
            aggregate_id=txn["id"],
            aggregate_version=version,
        )


async def _queue_receipt(uow: UnitOfWork, txn: Mapping[Any, Any]) -> None:
    """One receipt per completed paid purchase (primary key = transaction), member or not."""
    email = txn["buyer_email"]
    if not email:
        log.warning("payment %s completed without a buyer email: no receipt", txn["id"])
        return
    seller = (
        (
            await uow.session.execute(
                sa.select(organizations).where(organizations.c.id == txn["organization_id"])
            )
        )
        .mappings()
        .first()
    )
    seller_name = seller["name"] if seller else "coursemesh"
    amount = format_amount(txn["amount_in_cents"], txn["currency"])
    lines = [
        f"Thank you for your purchase from {seller_name}.",
        "",
        f"Item: {txn['description']}",
        f"Amount: {amount}",
        f"Currency: {txn['currency']}",
        f"Seller: {seller_name}",
    ]
    if seller and seller["logo_url"]:
        lines.append(f"Logo: {seller['logo_url']}")
    lines += ["", f"Reference: {txn['id']}"]
    await uow.session.execute(
        pg_insert(receipts)
        .values(
            transaction_id=txn["id"],
            email=email,
            subject=f"Your receipt from {seller_name}: {txn['description']}",
            body="\n".join(lines),
        )
        .on_conflict_do_nothing()
    )
    uow.after_commit(_receipt_nudge.get())
