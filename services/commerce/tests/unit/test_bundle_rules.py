"""The bundle rules, pure: what makes a bundle, when it is on sale, and a buyer's price."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from coursemesh.commerce.domain.bundles import (
    MAX_COURSES,
    Bundle,
    BundleCourseUnpriced,
    BundleCurrencyMixed,
    BundleForeignCourse,
    BundleInvalid,
    BundleNotFound,
    CourseOffer,
    available,
    new_bundle,
    prorated,
    quote_bundle,
)
from coursemesh.commerce.domain.entitlements import CourseAlreadyOwned, Entitlement
from coursemesh.commerce.domain.payments import Payment, PaymentEvent, payment_mismatch

NOW = datetime(2027, 1, 1, tzinfo=UTC)
ORG = uuid.uuid4()


def offer(price: int | None = 1000, org: uuid.UUID = ORG, currency: str = "USD") -> CourseOffer:
    return CourseOffer(uuid.uuid4(), org, "Course", "published", price, currency)


def offers_of(*made: CourseOffer) -> dict[uuid.UUID, CourseOffer]:
    return {o.course_id: o for o in made}


def make(
    offers: dict[uuid.UUID, CourseOffer], ids: list[uuid.UUID] | None = None, **kw: object
) -> Bundle:
    args: dict[str, object] = {
        "id": uuid.uuid4(),
        "organization_id": ORG,
        "name": "Bundle",
        "course_ids": list(offers) if ids is None else ids,
        "price_in_cents": 2500,
        "offers": offers,
        "now": NOW,
        **kw,
    }
    return new_bundle(**args)  # type: ignore[arg-type]


def owned(course_id: uuid.UUID) -> Entitlement:
    return Entitlement(uuid.uuid4(), "u", course_id, ORG, "active", None, None, None, None, 1, NOW)


def test_a_bundle_takes_its_courses_currency() -> None:
    offers = offers_of(offer(currency="EUR"), offer(currency="EUR"))
    bundle = make(offers)
    assert (bundle.currency, bundle.course_ids) == ("EUR", tuple(offers))


@pytest.mark.parametrize(
    ("ids", "error"),
    [
        ("one", BundleInvalid),
        ("twice", BundleInvalid),
        ("too many", BundleInvalid),
        ("unknown", BundleForeignCourse),
        ("foreign", BundleForeignCourse),
    ],
)
def test_the_courses_of_a_bundle(ids: str, error: type[Exception]) -> None:
    a, b = offer(), offer()
    foreign = offer(org=uuid.uuid4())
    offers = offers_of(a, b, foreign)
    named = {
        "one": [a.course_id],
        "twice": [a.course_id, a.course_id, b.course_id],
        "too many": [uuid.uuid4() for _ in range(MAX_COURSES + 1)],
        "unknown": [a.course_id, uuid.uuid4()],
        "foreign": [a.course_id, foreign.course_id],
    }[ids]
    with pytest.raises(error):
        make(offers, named)


def test_a_foreign_course_is_named_in_the_refusal() -> None:
    a, foreign = offer(), offer(org=uuid.uuid4())
    with pytest.raises(BundleForeignCourse, match=str(foreign.course_id)):
        make(offers_of(a, foreign))


def test_unpriced_or_mixed_currencies_make_no_bundle() -> None:
    with pytest.raises(BundleCourseUnpriced):
        make(offers_of(offer(), offer(price=None)))
    with pytest.raises(BundleCurrencyMixed):
        make(offers_of(offer(), offer(currency="EUR")))


@pytest.mark.parametrize(("name", "price"), [("  ", 100), ("x" * 201, 100), ("B", -1)])
def test_name_and_price(name: str, price: int) -> None:
    with pytest.raises(BundleInvalid):
        make(offers_of(offer(), offer()), name=name, price_in_cents=price)


def test_on_sale_only_while_every_course_is_published_with_a_plan_in_its_currency() -> None:
    a, b = offer(), offer()
    bundle = make(offers_of(a, b))
    assert available(bundle, offers_of(a, b))
    assert not available(bundle, offers_of(a, replace(b, status="archived")))
    assert not available(bundle, offers_of(a, replace(b, price_in_cents=None)))
    assert not available(bundle, offers_of(a, replace(b, currency="EUR")))
    assert not available(bundle, offers_of(a))


@pytest.mark.parametrize(
    ("price", "included", "excluded", "charged"),
    [
        (4000, [3000, 1000], [], 4000),
        (4000, [3000, 1000], [2000], 2667),  # 2666.67
        (4999, [3000, 1000], [2000], 3333),  # 3332.67
        (5, [1], [1], 3),  # 2.5 -> half up
        (4000, [0, 0], [0], 2667),  # all free list prices: by count
        (0, [3000], [1000], 0),
    ],
)
def test_the_prorated_price(
    price: int, included: list[int], excluded: list[int], charged: int
) -> None:
    assert prorated(price, included, excluded) == charged


def test_a_buyer_owning_some_courses_pays_for_the_others() -> None:
    a, b, c = offer(3000), offer(2000), offer(1000)
    offers = offers_of(a, b, c)
    bundle = make(offers, price_in_cents=4800)
    q = quote_bundle(bundle, offers, {b.course_id: owned(b.course_id)})
    assert (q.included, q.excluded, q.amount_in_cents) == (
        (a.course_id, c.course_id),
        (b.course_id,),
        3200,
    )


def test_a_buyer_owning_every_course_is_refused() -> None:
    a, b = offer(), offer()
    offers = offers_of(a, b)
    bundle = make(offers)
    with pytest.raises(CourseAlreadyOwned):
        quote_bundle(bundle, offers, {c: owned(c) for c in offers})


def test_a_pending_entitlement_is_not_owned() -> None:
    a, b = offer(), offer()
    offers = offers_of(a, b)
    bundle = make(offers)
    pending = replace(owned(a.course_id), status="pending")
    assert quote_bundle(bundle, offers, {a.course_id: pending}).amount_in_cents == 2500


def test_an_unavailable_bundle_has_no_price() -> None:
    a, b = offer(), offer()
    bundle = make(offers_of(a, b))
    with pytest.raises(BundleNotFound):
        quote_bundle(bundle, offers_of(a, replace(b, status="draft")), {})


def test_a_webhook_must_name_the_bundle_purchase_its_payment_pays_for() -> None:
    purchase = uuid.uuid4()
    payment = Payment(
        id=uuid.uuid4(),
        organization_id=ORG,
        user_id="u",
        entitlement_id=None,
        custom_course_purchase_id=None,
        amount_in_cents=2500,
        currency="USD",
        provider="sandbox",
        provider_transaction_id="sbx_1",
        provider_payment_id=None,
        status="pending",
        buyer_email=None,
        description="Bundle",
        version=1,
        bundle_purchase_id=purchase,
    )
    event = PaymentEvent(
        "evt_1", "payment.completed", "completed", "sbx_1", None, None, None, 2500, "USD"
    )
    assert payment_mismatch(payment, event, bundle_purchase_id=purchase) is None
    for named in (uuid.uuid4(), None):
        refused = payment_mismatch(payment, event, bundle_purchase_id=named)
        assert refused is not None
        assert refused.code == "WEBHOOK_PAYMENT_MISMATCH"
    cheaper = replace(event, amount_in_cents=1)
    refused = payment_mismatch(payment, cheaper, bundle_purchase_id=purchase)
    assert refused is not None
    assert refused.code == "WEBHOOK_AMOUNT_MISMATCH"
