"""Gifted courses, pure: the recipient's address, the charge, the claim's refusals and
transition, what a payment outcome does to a gift, the claim mail."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from coursemesh.chassis.errors import DomainError
from coursemesh.chassis.settings import SettingsError, load_settings
from coursemesh.commerce.app.gifts import ClaimLinks
from coursemesh.commerce.domain.checkout import CourseFacts
from coursemesh.commerce.domain.entitlements import (
    CourseAlreadyOwned,
    Entitlement,
    IllegalTransition,
    claim_gift,
)
from coursemesh.commerce.domain.gifts import (
    Gift,
    GiftCourseFree,
    GiftRecipientInvalid,
    claim_link,
    claim_mail,
    claim_refusal,
    claimed,
    gift_after_payment,
    gift_charge,
    gift_recipient,
    resend_refusal,
    token_hash,
    with_token,
)
from coursemesh.commerce.settings import Settings

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
ORG, COURSE, PAYMENT = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
PAYER, FRIEND = "user_payer", "user_friend"


def gift(**changes: Any) -> Gift:
    base = Gift(
        id=uuid.uuid4(),
        organization_id=ORG,
        course_id=COURSE,
        course_name="30-day reset",
        payer_user_id=PAYER,
        payer_email="payer@example.com",
        recipient_email="friend@example.com",
        status="paid",
        payment_transaction_id=PAYMENT,
        created_at=NOW,
        claim_token_hash=token_hash("tok"),
        send_count=1,
        sent_at=NOW,
    )
    return replace(base, **changes)


def claimed_by(existing: Entitlement | None, g: Gift) -> Entitlement:
    t = claim_gift(
        existing,
        new_id=uuid.uuid4(),
        user_id=FRIEND,
        course_id=COURSE,
        organization_id=ORG,
        membership_id=None,
        gift_id=g.id,
        payment_id=g.payment_transaction_id,
        now=NOW,
    )
    assert (t.cause, t.actor, t.reason, t.payment_transaction_id) == (
        "gift_claimed",
        f"user:{FRIEND}",
        f"gift {g.id}",
        PAYMENT,
    )
    return t.entitlement


def facts(price: int | None = 4900, status: str = "published") -> CourseFacts:
    return CourseFacts(
        status=status,
        organization_id=ORG,
        name="30-day reset",
        price_in_cents=price,
        currency="USD",
        membership_id=None,
        lead_id=None,
        linked=False,
        entitlement=None,
        refund_window_days=14,
    )


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("ann@example.com", "ann@example.com"),
        ("  Ann.Lee+gift@Example.COM ", "Ann.Lee+gift@example.com"),
    ],
)
def test_a_recipient_address_is_trimmed_with_its_domain_in_lower_case(
    given: str, stored: str
) -> None:
    assert gift_recipient(given) == stored


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "ann",
        "ann@",
        "@example.com",
        "ann@example",
        "a b@example.com",
        "ann@example.com\r\nBcc: x@y.example",
        "ann@ex..com",
        "ann@-example.com",
        "<ann@example.com>",
        "a,b@example.com",
        "x" * 65 + "@example.com",
    ],
)
def test_a_malformed_recipient_is_refused(bad: str) -> None:
    with pytest.raises(GiftRecipientInvalid) as refused:
        gift_recipient(bad)
    assert refused.value.status == 422


def test_a_gift_charges_the_course_price_and_refuses_what_cannot_be_sold() -> None:
    charge = gift_charge(facts())
    assert (charge.amount_in_cents, charge.currency, charge.refund_window_days) == (4900, "USD", 14)
    assert charge.description == "Gift: 30-day reset"
    for refused, code in (
        (None, "COURSE_NOT_FOUND"),
        (facts(status="draft"), "COURSE_NOT_FOUND"),
        (facts(price=None), "NO_ACTIVE_PLAN"),
    ):
        with pytest.raises(DomainError) as error:
            gift_charge(refused)
        assert error.value.code == code
    with pytest.raises(GiftCourseFree):
        gift_charge(facts(price=0))


def _code(error: DomainError | None) -> tuple[int, str] | None:
    return None if error is None else (error.status, error.code)


def test_claim_refusals_in_order() -> None:
    active = claimed_by(None, gift())
    assert _code(claim_refusal(None, FRIEND, None)) == (404, "GIFT_NOT_FOUND")
    assert _code(claim_refusal(gift(status="claimed"), FRIEND, None)) == (
        409,
        "GIFT_ALREADY_CLAIMED",
    )
    assert _code(claim_refusal(gift(status="refunded"), PAYER, None)) == (
        409,
        "GIFT_ALREADY_CLAIMED",
    )
    assert _code(claim_refusal(gift(status="cancelled"), FRIEND, None)) == (410, "GIFT_CANCELLED")
    assert _code(claim_refusal(gift(status="pending"), FRIEND, None)) == (409, "GIFT_NOT_PAID")
    assert _code(claim_refusal(gift(), PAYER, None)) == (403, "GIFT_OWN_PURCHASE")
    assert _code(claim_refusal(gift(), FRIEND, active)) == (409, "COURSE_ALREADY_OWNED")
    pending = replace(active, status="pending")
    assert _code(claim_refusal(gift(), FRIEND, pending)) == (409, "CHECKOUT_PENDING")
    assert claim_refusal(gift(), FRIEND, None) is None
    assert claim_refusal(gift(), FRIEND, replace(active, status="revoked")) is None


def test_a_claim_opens_a_new_or_revoked_row_whose_source_is_the_gifts_payment() -> None:
    g = gift()
    new = claimed_by(None, g)
    assert (new.user_id, new.status, new.version, new.source_payment_transaction_id) == (
        FRIEND,
        "active",
        1,
        PAYMENT,
    )
    revoked = replace(new, status="revoked", access_revoked_at=NOW, version=3)
    again = claimed_by(revoked, g)
    assert (again.id, again.status, again.access_revoked_at, again.version) == (
        new.id,
        "active",
        None,
        4,
    )
    with pytest.raises(CourseAlreadyOwned):
        claimed_by(new, g)
    with pytest.raises(IllegalTransition):
        claimed_by(replace(new, status="pending"), g)


def test_what_a_payment_outcome_does_to_a_gift() -> None:
    assert gift_after_payment("pending", "completed") == "paid"
    assert gift_after_payment("failed", "completed") == "paid"  # paid after all
    assert gift_after_payment("paid", "completed") is None  # a replay
    assert gift_after_payment("claimed", "completed") is None
    assert gift_after_payment("pending", "failed") == "failed"
    assert gift_after_payment("pending", "expired") == "failed"
    assert gift_after_payment("paid", "failed") is None
    assert gift_after_payment("paid", "refunded") == "cancelled"
    assert gift_after_payment("paid", "disputed") == "cancelled"
    assert gift_after_payment("claimed", "refunded") == "refunded"
    assert gift_after_payment("claimed", "disputed") == "refunded"
    assert gift_after_payment("pending", "refunded") is None
    assert gift_after_payment("cancelled", "refunded") is None


def test_a_new_token_replaces_the_old_one() -> None:
    g = gift()
    again = with_token(g, "new-token", NOW)
    assert again.claim_token_hash == token_hash("new-token") != g.claim_token_hash
    assert (again.status, again.send_count) == ("paid", 2)
    assert len(token_hash("x")) == 64  # SHA-256, hex: the token itself is never stored


def test_only_a_paid_unclaimed_gift_is_resent() -> None:
    assert resend_refusal(gift()) is None
    assert _code(resend_refusal(None)) == (404, "GIFT_NOT_FOUND")
    assert _code(resend_refusal(gift(status="claimed"))) == (409, "GIFT_ALREADY_CLAIMED")
    assert _code(resend_refusal(gift(status="cancelled"))) == (410, "GIFT_CANCELLED")
    assert _code(resend_refusal(gift(status="pending"))) == (409, "GIFT_NOT_PAID")


def test_the_claim_mail_carries_the_link_to_the_recipient() -> None:
    g = gift()
    link = claim_link("https://app.example/gifts/{token}?from=mail", "abc_DEF-1")
    assert link == "https://app.example/gifts/abc_DEF-1?from=mail"
    mail_id = uuid.uuid4()
    mail = claim_mail(g, link, "Peak Form Studio", mail_id)
    assert (mail.transaction_id, mail.email) == (mail_id, "friend@example.com")
    assert link in mail.body
    assert "payer@example.com" in mail.body
    assert "Peak Form Studio" in mail.body
    assert "30-day reset" in mail.subject


def test_a_claimed_gift_names_its_claimer_and_entitlement() -> None:
    ent_id = uuid.uuid4()
    done = claimed(gift(), ent_id, FRIEND, NOW)
    assert (done.status, done.entitlement_id, done.claimed_by, done.claimed_at) == (
        "claimed",
        ent_id,
        FRIEND,
        NOW,
    )


_ENV = {
    "COMMERCE_DATABASE_URL": "postgresql+asyncpg://u@127.0.0.1:1/db",
    "COMMERCE_NATS_URL": "nats://127.0.0.1:1",
    "COMMERCE_JWKS_URL": "http://127.0.0.1:1/.well-known/jwks.json",
    "COMMERCE_SANDBOX_WEBHOOK_KEY": "k-1",
    "COMMERCE_PUBLIC_BASE_URL": "https://api.example.com/",
}


def test_the_claim_link_template_defaults_to_the_public_base_url() -> None:
    settings = load_settings(Settings, "COMMERCE_", _ENV)
    assert settings.gift_claim_url == "https://api.example.com/gifts/{token}"
    custom = {**_ENV, "COMMERCE_GIFT_CLAIM_URL_TEMPLATE": "https://app.example/claim?t={token}"}
    links = ClaimLinks(load_settings(Settings, "COMMERCE_", custom).gift_claim_url, lambda: "tk")
    issued, mail = links.issue(gift(send_count=0), None, NOW)
    assert "https://app.example/claim?t=tk" in mail.body
    assert issued.claim_token_hash == token_hash("tk")


@pytest.mark.parametrize("template", ["https://app.example/claim", "ftp://x/{token}", "{token}"])
def test_a_claim_link_template_without_a_token_or_an_http_url_is_refused(template: str) -> None:
    with pytest.raises(SettingsError, match="GIFT_CLAIM_URL_TEMPLATE"):
        load_settings(Settings, "COMMERCE_", {**_ENV, "COMMERCE_GIFT_CLAIM_URL_TEMPLATE": template})
