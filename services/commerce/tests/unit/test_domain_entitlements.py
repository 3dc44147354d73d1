"""Unit tests of the pure entitlement state machine: every row of its table."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from coursemesh.commerce.domain.entitlements import (
    CourseAlreadyOwned,
    Entitlement,
    IllegalTransition,
    Status,
    open_for_checkout,
    refresh_payment_link,
    transition,
)

NOW = datetime(2025, 3, 1, tzinfo=UTC)


def ent(status: Status, txn: uuid.UUID | None = None) -> Entitlement:
    return Entitlement(
        id=uuid.uuid4(),
        user_id="u",
        course_id=uuid.uuid4(),
        organization_id=uuid.uuid4(),
        status=status,
        access_revoked_at=NOW if status == "revoked" else None,
        source_payment_transaction_id=txn,
        membership_id=None,
        buyer_email=None,
        version=3,
        status_changed_at=NOW,
    )


def checkout(existing: Entitlement | None, *, free: bool) -> Entitlement:
    return open_for_checkout(
        existing,
        new_id=uuid.uuid4(),
        user_id="u",
        course_id=uuid.uuid4(),
        organization_id=uuid.uuid4(),
        membership_id=None,
        buyer_email="b@example.com",
        free=free,
        now=NOW,
    ).entitlement


def test_entitlement_table_new_to_active_free_checkout() -> None:
    e = checkout(None, free=True)
    assert (e.status, e.version) == ("active", 1)


def test_entitlement_table_new_to_pending_paid_checkout() -> None:
    assert checkout(None, free=False).status == "pending"


def test_entitlement_table_pending_to_active_payment_completed_resets_revoked_at() -> None:
    txn = uuid.uuid4()
    t = transition(ent("pending"), "payment_completed", actor="x", now=NOW, transaction_id=txn)
    assert t.entitlement.status == "active"
    assert t.entitlement.access_revoked_at is None
    assert t.entitlement.source_payment_transaction_id == txn
    assert (t.previous_status, t.entitlement.version) == ("pending", 4)


def test_entitlement_table_pending_to_revoked_payment_failed_stamps_revoked_at() -> None:
    t = transition(ent("pending"), "payment_failed", actor="x", now=NOW)
    assert (t.entitlement.status, t.entitlement.access_revoked_at) == ("revoked", NOW)


@pytest.mark.parametrize("cause", ["payment_refunded", "payment_disputed", "staff_revoked"])
def test_entitlement_table_active_to_revoked_refund_dispute_or_staff(cause: str) -> None:
    t = transition(ent("active"), cause, actor="x", now=NOW)  # type: ignore[arg-type]
    assert t.entitlement.status == "revoked"


def test_entitlement_table_revoked_to_pending_repurchase_reactivates_same_row() -> None:
    old = ent("revoked")
    e = checkout(old, free=False)
    assert (e.id, e.status, e.access_revoked_at) == (old.id, "pending", None)


def test_entitlement_table_revoked_to_active_repurchase_succeeds() -> None:
    assert (
        transition(ent("revoked"), "payment_completed", actor="x", now=NOW).entitlement.status
        == "active"
    )
    assert checkout(ent("revoked"), free=True).status == "active"


def test_edge_already_owned_raises_course_already_owned() -> None:
    with pytest.raises(CourseAlreadyOwned) as info:
        checkout(ent("active"), free=True)
    assert (info.value.status, info.value.code) == (409, "COURSE_ALREADY_OWNED")


@pytest.mark.parametrize(
    ("status", "cause"),
    [
        ("active", "payment_failed"),
        ("active", "checkout_expired"),
        ("revoked", "payment_refunded"),
        ("revoked", "staff_revoked"),
        ("pending", "payment_refunded"),
        ("active", "payment_completed"),
    ],
)
def test_illegal_transitions_raise(status: Status, cause: str) -> None:
    with pytest.raises(IllegalTransition):
        transition(ent(status), cause, actor="x", now=NOW)  # type: ignore[arg-type]


def test_idempotency_replayed_completion_only_refreshes_txn_link() -> None:
    txn = uuid.uuid4()
    active = ent("active", txn=None)
    refreshed = refresh_payment_link(active, txn)
    assert refreshed is not None
    assert (refreshed.status, refreshed.source_payment_transaction_id) == ("active", txn)
    assert refresh_payment_link(refreshed, txn) is None
