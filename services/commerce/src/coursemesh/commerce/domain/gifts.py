"""Gifted courses: a payer buys a course for someone named by e-mail address; once the payment
completes the recipient gets a claim link, and whoever signs in and claims it (never the payer)
gets the course. Pure: no I/O.

A gift's life: ``pending`` (its payment is open) -> ``paid`` (a claim token exists, the link
was mailed) -> ``claimed`` (an entitlement of the claimer exists, its source payment the
gift's). A failed or expired payment ends a pending gift (``failed``; a completion arriving
after all still pays it, as it still buys a course); a refund or dispute cancels a paid gift
(``cancelled``: its link stops working) and revokes a claimed one's access (``refunded``)."""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from coursemesh.chassis.errors import (
    BadRequest,
    Conflict,
    DomainError,
    Forbidden,
    NotFound,
    Unprocessable,
)
from coursemesh.commerce.domain.checkout import Charge, CourseFacts
from coursemesh.commerce.domain.entitlements import CourseAlreadyOwned, Entitlement
from coursemesh.commerce.domain.payments import Outcome, Receipt
from coursemesh.commerce.domain.pricing import is_free

GiftStatus = Literal["pending", "paid", "claimed", "failed", "cancelled", "refunded"]


class GiftRecipientInvalid(Unprocessable):
    code = "GIFT_RECIPIENT_INVALID"


class GiftNotFound(NotFound):
    # Also another payer's gift and a link whose token was rotated: neither is the caller's.
    code = "GIFT_NOT_FOUND"


class GiftAlreadyClaimed(Conflict):
    code = "GIFT_ALREADY_CLAIMED"


class GiftOwnPurchase(Forbidden):
    code = "GIFT_OWN_PURCHASE"


class GiftCancelled(DomainError):
    """A gift whose payment was refunded or disputed, or never completed: its link is dead."""

    status, code, title = 410, "GIFT_CANCELLED", "Gone"


class GiftNotPaid(Conflict):
    code = "GIFT_NOT_PAID"


class GiftCheckoutPending(Conflict):
    """The claimer has a checkout of the course still open: its payment may yet complete, so
    the gift waits (it stays claimable) until that checkout is paid, fails or expires."""

    code = "CHECKOUT_PENDING"


class GiftCourseFree(Conflict):
    """A free course is not gifted: anyone can take it with the course's own checkout."""

    code = "GIFT_COURSE_FREE"


@dataclass(frozen=True, slots=True)
class Gift:
    """A ``gifts`` row. ``claim_token_hash`` is the SHA-256 (hex) of the claim link's token;
    the token itself is only ever in the mail."""

    id: uuid.UUID
    organization_id: uuid.UUID
    course_id: uuid.UUID
    course_name: str
    payer_user_id: str
    payer_email: str | None
    recipient_email: str
    status: GiftStatus
    payment_transaction_id: uuid.UUID
    created_at: datetime
    claim_token_hash: str | None = None
    entitlement_id: uuid.UUID | None = None
    claimed_by: str | None = None
    claimed_at: datetime | None = None
    sent_at: datetime | None = None
    send_count: int = 0
    #: the plan's access duration when bought (None: lifetime): the claimer's access lasts
    #: that long from the claim
    access_days: int | None = None


# The address's local part as mail systems accept it unquoted, and a domain of labels: nothing
# that could end a mail header (spaces, CR, LF, commas, angle brackets) gets through.
_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}"
    r"@(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)


def gift_recipient(email: str) -> str:
    """The recipient's address as stored and mailed (trimmed, domain in lower case); a
    malformed one is refused (422 ``GIFT_RECIPIENT_INVALID``)."""
    address = email.strip()
    if len(address) > 254 or not _EMAIL.match(address):
        raise GiftRecipientInvalid("giftRecipientEmail is not a valid e-mail address")
    local, domain = address.rsplit("@", 1)
    return f"{local}@{domain.lower()}"


def gift_charge(facts: CourseFacts | None) -> Charge:
    """What a gift of the course charges the payer: the course's price (no coupon). A course
    not published is not found, one without an active plan has no price, a free one is not
    gifted."""
    if facts is None or facts.status != "published":
        raise NotFound("This course is not available", code="COURSE_NOT_FOUND")
    if facts.price_in_cents is None:
        raise BadRequest("This course has no active plan", code="NO_ACTIVE_PLAN")
    if is_free(facts.price_in_cents):
        raise GiftCourseFree("This course is free: share it instead of gifting it")
    return Charge(
        facts.price_in_cents,
        facts.currency or "",
        f"Gift: {facts.name or 'Course'}",
        facts.refund_window_days,
        facts.access_days,
    )


def token_hash(token: str) -> str:
    """What is stored of a claim token (the link is looked up by it)."""
    return hashlib.sha256(token.encode()).hexdigest()


def claim_refusal(
    gift: Gift | None, claimer_id: str, existing: Entitlement | None
) -> DomainError | None:
    """Why ``claimer_id`` may not claim the gift now (None: they may). The gift's own state
    first (unknown, claimed, cancelled, unpaid), then the claimer: the payer never, nor someone
    who owns the course already or has a checkout of it open (the gift stays claimable)."""
    if gift is None:
        return GiftNotFound("No gift has this claim link")
    unclaimable = _not_claimable(gift)
    if unclaimable is not None:
        return unclaimable
    if gift.payer_user_id == claimer_id:
        return GiftOwnPurchase("A gift is claimed by its recipient, not by the account that paid")
    if existing is not None and existing.status == "active":
        return CourseAlreadyOwned("You already own this course")
    if existing is not None and existing.status == "pending":
        return GiftCheckoutPending(
            "You have a checkout of this course open; claim the gift once it has ended"
        )
    return None


def resend_refusal(gift: Gift | None) -> DomainError | None:
    """A resend is for a paid gift nobody claimed yet."""
    if gift is None:
        return GiftNotFound("No such gift")
    return _not_claimable(gift)


def _not_claimable(gift: Gift) -> DomainError | None:
    """Why the gift itself cannot be claimed (None: it is paid and unclaimed)."""
    if gift.status in ("claimed", "refunded"):
        return GiftAlreadyClaimed("This gift has already been claimed")
    if gift.status in ("cancelled", "failed"):
        return GiftCancelled("This gift was cancelled")
    if gift.status != "paid":
        return GiftNotPaid("This gift has not been paid yet")
    return None


#: What a payment outcome does to its gift: ``paid`` (issue a token and mail the link),
#: ``failed`` / ``cancelled`` (the gift ends), ``refunded`` (the claimer's access is revoked).
GiftStep = Literal["paid", "failed", "cancelled", "refunded"]


def gift_after_payment(status: GiftStatus, outcome: Outcome) -> GiftStep | None:
    """None: the gift stays as it is (a replay, a failure after completion, a refund of a
    payment never completed)."""
    if outcome == "completed":
        return "paid" if status in ("pending", "failed") else None
    if outcome in ("failed", "expired"):
        return "failed" if status == "pending" else None
    if status == "paid":
        return "cancelled"
    if status == "claimed":
        return "refunded"
    return None


def with_token(gift: Gift, token: str, now: datetime) -> Gift:
    """The gift paid (or still paid) with a new claim token, its link (re)sent now; any
    earlier token no longer matches."""
    return replace(
        gift,
        status="paid",
        claim_token_hash=token_hash(token),
        sent_at=now,
        send_count=gift.send_count + 1,
    )


def claimed(gift: Gift, entitlement_id: uuid.UUID, claimer_id: str, now: datetime) -> Gift:
    return replace(
        gift, status="claimed", entitlement_id=entitlement_id, claimed_by=claimer_id, claimed_at=now
    )


def claim_link(template: str, token: str) -> str:
    """The claim page's URL: ``template`` with ``{token}`` replaced."""
    return template.replace("{token}", token)


def claim_mail(gift: Gift, link: str, seller_name: str | None, mail_id: uuid.UUID) -> Receipt:
    """The recipient's mail with the claim link (queued as the receipts are, under its own
    id: each sending is its own mail)."""
    giver = gift.payer_email or "Someone"
    seller = seller_name or "coursemesh"
    body = "\n".join(
        [
            f"{giver} gave you a course: {gift.course_name} from {seller}.",
            "",
            "Open this link and sign in to claim it:",
            link,
            "",
            "The link works once: whoever claims it gets the course.",
            "",
            f"Reference: {gift.id}",
        ]
    )
    return Receipt(
        transaction_id=mail_id,
        email=gift.recipient_email,
        subject=f"A gift for you: {gift.course_name}",
        body=body,
    )
