"""Time-limited access: the notice a buyer gets before their access to a course ends. Pure: no
I/O (the end itself is the transition ``entitlements.expire``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from coursemesh.commerce.domain.entitlements import Entitlement
from coursemesh.commerce.domain.payments import Seller

#: The namespace of the notices' ids: one notice per entitlement and end date, whichever
#: replica or retry queues it.
_NOTICE_NAMESPACE = uuid.UUID("5d0c4f2e-7f4e-4b8e-9a55-3c1f0b7e2a61")


@dataclass(frozen=True, slots=True)
class EndingAccess:
    """An active access ending soon whose buyer has not been told of this end yet."""

    entitlement: Entitlement
    course_name: str
    seller: Seller | None


@dataclass(frozen=True, slots=True)
class ExpiryNotice:
    """The mail that tells a buyer when their access ends (``email`` empty: the sender asks
    the identity provider for the address of ``user_id``)."""

    id: uuid.UUID
    entitlement_id: uuid.UUID
    user_id: str
    email: str
    ends_at: datetime
    subject: str
    body: str


def expiry_notice(ending: EndingAccess) -> ExpiryNotice:
    ent = ending.entitlement
    assert ent.access_ends_at is not None
    ends = ent.access_ends_at
    seller = ending.seller.name if ending.seller else "coursemesh"
    when = ends.strftime("%d %B %Y, %H:%M UTC")
    body = "\n".join(
        [
            f"Your access to {ending.course_name} from {seller} ends on {when}.",
            "",
            "To keep it, buy the course again before then: the time you buy is added to the"
            " end of your current access, so nothing is lost by renewing early.",
        ]
    )
    return ExpiryNotice(
        id=uuid.uuid5(_NOTICE_NAMESPACE, f"{ent.id}:{ends.isoformat()}"),
        entitlement_id=ent.id,
        user_id=ent.user_id,
        email=ent.buyer_email or "",
        ends_at=ends,
        subject=f"Your access to {ending.course_name} ends on {ends.strftime('%d %B %Y')}",
        body=body,
    )
