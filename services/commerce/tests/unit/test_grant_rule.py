"""The staff grant, pure: which entitlements it opens and how."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from coursemesh.commerce.domain.entitlements import (
    CourseAlreadyOwned,
    Entitlement,
    IllegalTransition,
    grant,
)

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
COURSE, ORG = uuid.uuid4(), uuid.uuid4()


def granted(existing: Entitlement | None) -> Entitlement:
    t = grant(
        existing,
        new_id=uuid.uuid4(),
        user_id="user_guest",
        course_id=COURSE,
        organization_id=ORG,
        membership_id=None,
        staff_id="user_trainer",
        reason="comp",
        now=NOW,
    )
    assert (t.cause, t.actor, t.reason) == ("staff_granted", "user:user_trainer", "comp")
    return t.entitlement


def test_a_new_grant_is_active_with_no_payment() -> None:
    ent = granted(None)
    assert (ent.status, ent.version, ent.source_payment_transaction_id) == ("active", 1, None)


def test_a_revoked_entitlement_is_active_again() -> None:
    revoked = replace(granted(None), status="revoked", access_revoked_at=NOW, version=2)
    again = granted(revoked)
    assert (again.id, again.status, again.access_revoked_at, again.version) == (
        revoked.id,
        "active",
        None,
        3,
    )


def test_an_owned_or_pending_entitlement_is_not_granted() -> None:
    with pytest.raises(CourseAlreadyOwned):
        granted(granted(None))
    with pytest.raises(IllegalTransition):
        granted(replace(granted(None), status="pending"))
