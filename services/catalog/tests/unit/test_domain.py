"""Unit tests of the pure domain rules (no database)."""

from __future__ import annotations

import uuid

import pytest

from coursemesh.catalog.domain.course import (
    SetDay,
    SetItem,
    check_day,
    check_duration,
    check_publishable,
    dense_curriculum,
)
from coursemesh.catalog.domain.organization import check_currency
from coursemesh.catalog.domain.roles import check_membership_change
from coursemesh.catalog.http.storefront import etag_matches
from coursemesh.chassis.errors import Conflict, DomainError, Forbidden


def test_dense_curriculum_fills_every_day_in_order() -> None:
    w = uuid.uuid4()
    items = [
        SetItem(item_id=uuid.uuid4(), day_offset=2, workout_id=w, position=1),
        SetItem(item_id=uuid.uuid4(), day_offset=2, workout_id=w, position=0),
    ]
    days = dense_curriculum(4, [SetDay(1, True), SetDay(2, False)], items)
    assert [(d.day_offset, d.is_rest, [i.position for i in d.items]) for d in days] == [
        (0, False, []),
        (1, True, []),
        (2, False, [0, 1]),
        (3, False, []),
    ]


@pytest.mark.parametrize(
    ("status", "items", "code"),
    [("draft", 0, "CURRICULUM_EMPTY"), ("published", 3, "COURSE_ALREADY_PUBLISHED")],
)
def test_publish_refusals(status: str, items: int, code: str) -> None:
    with pytest.raises(Conflict) as err:
        check_publishable(status, items)  # type: ignore[arg-type]
    assert err.value.code == code


def test_publish_allowed_from_draft_and_archived() -> None:
    check_publishable("draft", 1)
    check_publishable("archived", 1)


def test_day_and_duration_rules() -> None:
    with pytest.raises(DomainError, match="less than durationDays"):
        check_day(day_offset=3, duration_days=3, is_rest=False, workout_ids=[])
    with pytest.raises(DomainError, match="rest day"):
        check_day(day_offset=0, duration_days=3, is_rest=True, workout_ids=[uuid.uuid4()])
    with pytest.raises(Conflict):
        check_duration(3, 3)
    check_duration(4, 3)
    check_duration(1, None)


def test_last_owner_and_owner_role_rules() -> None:
    with pytest.raises(Conflict):
        check_membership_change(actor_role="owner", current="owner", new=None, owner_count=1)
    check_membership_change(actor_role="owner", current="owner", new="admin", owner_count=2)
    with pytest.raises(Forbidden):
        check_membership_change(actor_role="admin", current=None, new="owner", owner_count=1)
    with pytest.raises(Forbidden):
        check_membership_change(actor_role="trainer", current=None, new="member", owner_count=1)
    check_membership_change(actor_role="admin", current="trainer", new="member", owner_count=1)


def test_currency_must_be_iso_4217() -> None:
    check_currency("USD")
    with pytest.raises(DomainError):
        check_currency("XYZ")


def test_etag_matching() -> None:
    assert etag_matches('"a", W/"b"', '"b"')
    assert etag_matches("*", '"b"')
    assert not etag_matches('"a"', '"b"')
    assert not etag_matches(None, '"b"')
