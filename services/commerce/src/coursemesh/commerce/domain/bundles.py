"""Course bundles: several courses of one organization sold together at one price. Pure.

A bundle names 2 to :data:`MAX_COURSES` distinct courses of its organization; its currency is
the one their active plans share. It is *available* while every course is published with an
active plan in that currency.

Price rule for a buyer who already owns some of the courses (an active entitlement): the owned
courses are left out, and the bundle's price is reduced in proportion to their list prices,

    charged = bundle price * (list prices of the courses included) / (all list prices),

rounded half up to the minor unit (so a buyer never pays more than the bundle's price, and two
buyers owning the same courses pay the same). When every list price is 0 the courses count
equally instead. A buyer who owns all of them is refused (``COURSE_ALREADY_OWNED``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from coursemesh.chassis.errors import NotFound, Unprocessable
from coursemesh.commerce.domain.entitlements import CourseAlreadyOwned, Entitlement

MIN_COURSES = 2
MAX_COURSES = 50
NAME_MAX = 200


class BundleInvalid(Unprocessable):
    """A bundle staff define that breaks a rule (name, courses, price)."""

    code = "BUNDLE_INVALID"


class BundleForeignCourse(Unprocessable):
    """A course of another organization, or one commerce does not know."""

    code = "BUNDLE_FOREIGN_COURSE"


class BundleCourseUnpriced(Unprocessable):
    """A course without an active plan: the bundle's currency cannot be known."""

    code = "BUNDLE_COURSE_UNPRICED"


class BundleCurrencyMixed(Unprocessable):
    code = "BUNDLE_CURRENCY_MIXED"


class BundleNotFound(NotFound):
    """No such bundle, or one not available now (a course unpublished or without a plan)."""

    code = "BUNDLE_NOT_FOUND"


@dataclass(frozen=True, slots=True)
class Bundle:
    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    course_ids: tuple[uuid.UUID, ...]
    price_in_cents: int
    currency: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class CourseOffer:
    """A course of a bundle as commerce knows it now (``price_in_cents`` None: no active
    plan; ``organization_id`` None: unknown course)."""

    course_id: uuid.UUID
    organization_id: uuid.UUID | None
    name: str | None
    status: str | None
    price_in_cents: int | None
    currency: str | None


def check_courses(course_ids: list[uuid.UUID]) -> tuple[uuid.UUID, ...]:
    """The courses of a new bundle, in order: at least two, at most :data:`MAX_COURSES`,
    none twice."""
    if len(course_ids) != len(set(course_ids)):
        twice = sorted({str(c) for c in course_ids if course_ids.count(c) > 1})
        raise BundleInvalid("A course is named more than once: " + ", ".join(twice))
    if not MIN_COURSES <= len(course_ids) <= MAX_COURSES:
        raise BundleInvalid(f"A bundle has {MIN_COURSES} to {MAX_COURSES} distinct courses")
    return tuple(course_ids)


def new_bundle(
    *,
    id: uuid.UUID,
    organization_id: uuid.UUID,
    name: str,
    course_ids: list[uuid.UUID],
    price_in_cents: int,
    offers: dict[uuid.UUID, CourseOffer],
    now: datetime,
) -> Bundle:
    """The bundle as staff define it, or why not: every course the organization's (else
    ``BUNDLE_FOREIGN_COURSE`` naming them), each with an active plan, all in one currency."""
    name = name.strip()
    if not name or len(name) > NAME_MAX:
        raise BundleInvalid(f"A name is 1 to {NAME_MAX} characters")
    if isinstance(price_in_cents, bool) or price_in_cents < 0:
        raise BundleInvalid("priceInCents is an amount in minor units, 0 or more")
    courses = check_courses(course_ids)
    foreign = [
        c for c in courses if c not in offers or offers[c].organization_id != organization_id
    ]
    if foreign:
        raise BundleForeignCourse(
            "Not a course of this organization: " + ", ".join(map(str, foreign))
        )
    unpriced = [c for c in courses if offers[c].price_in_cents is None]
    if unpriced:
        raise BundleCourseUnpriced(
            "These courses have no active plan: " + ", ".join(map(str, unpriced))
        )
    currencies = sorted({offers[c].currency or "" for c in courses})
    if len(currencies) != 1:
        raise BundleCurrencyMixed(
            "The courses' plans are in different currencies: " + ", ".join(currencies)
        )
    return Bundle(
        id=id,
        organization_id=organization_id,
        name=name,
        course_ids=courses,
        price_in_cents=price_in_cents,
        currency=currencies[0],
        created_at=now,
    )


def available(bundle: Bundle, offers: dict[uuid.UUID, CourseOffer]) -> bool:
    """Every course still the organization's, published, with an active plan in the
    bundle's currency."""
    for course_id in bundle.course_ids:
        offer = offers.get(course_id)
        if (
            offer is None
            or offer.organization_id != bundle.organization_id
            or offer.status != "published"
            or offer.price_in_cents is None
            or offer.currency != bundle.currency
        ):
            return False
    return True


def prorated(price_in_cents: int, included: list[int], excluded: list[int]) -> int:
    """``price_in_cents`` in proportion of the included list prices to all of them, rounded
    half up to the minor unit; all list prices 0: in proportion of the counts."""
    total = sum(included) + sum(excluded)
    part = sum(included)
    if total == 0:
        total, part = len(included) + len(excluded), len(included)
    if part == total:
        return price_in_cents
    return (2 * price_in_cents * part + total) // (2 * total)


@dataclass(frozen=True, slots=True)
class BundleQuote:
    """What one buyer's checkout of a bundle includes and charges."""

    included: tuple[uuid.UUID, ...]
    #: the courses left out because the buyer already owns them
    excluded: tuple[uuid.UUID, ...]
    amount_in_cents: int
    currency: str


def quote_bundle(
    bundle: Bundle,
    offers: dict[uuid.UUID, CourseOffer],
    entitlements: dict[uuid.UUID, Entitlement | None],
) -> BundleQuote:
    """The buyer's price of an available bundle (else ``BUNDLE_NOT_FOUND``): the courses they
    own (an active entitlement) left out and the price prorated; all owned:
    ``COURSE_ALREADY_OWNED``."""
    if not available(bundle, offers):
        raise BundleNotFound("This bundle is not available")

    def owned(course_id: uuid.UUID) -> bool:
        ent = entitlements.get(course_id)
        return ent is not None and ent.status == "active"

    excluded = tuple(c for c in bundle.course_ids if owned(c))
    included = tuple(c for c in bundle.course_ids if not owned(c))
    if not included:
        raise CourseAlreadyOwned("You already own every course of this bundle")

    def price(course_id: uuid.UUID) -> int:
        return offers[course_id].price_in_cents or 0

    amount = prorated(
        bundle.price_in_cents, [price(c) for c in included], [price(c) for c in excluded]
    )
    return BundleQuote(included, excluded, amount, bundle.currency)


def bundle_reason(bundle: Bundle) -> str:
    """The reason of the checkout step of an entitlement a bundle opened (its access history
    names the bundle)."""
    return f"bundle {bundle.id}"
