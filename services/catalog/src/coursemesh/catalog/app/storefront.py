"""The public storefront: one course as a buyer sees it.

One path: load the listing through the store, decide whether it is on sale (each other case is
its own 404), render the page (encoded body and ETag). A cache of pages, when there is one, sits
in front of this as another implementation of the same port
(:class:`~coursemesh.catalog.app.ports.StorefrontPages`).
"""

from __future__ import annotations

import hashlib
import uuid

import msgspec

from coursemesh.catalog.app.ports import StorefrontListing, StorefrontStore
from coursemesh.catalog.app.views import (
    PreviewWorkoutView,
    PriceView,
    SellerView,
    StorefrontCourseView,
    StorefrontPage,
)
from coursemesh.catalog.domain.storefront import on_sale

_preview_decoder = msgspec.json.Decoder(list[PreviewWorkoutView])
_encoder = msgspec.json.Encoder()


def render(view: StorefrontCourseView) -> StorefrontPage:
    body = _encoder.encode(view)
    # The tag is a digest of the exact bytes: it changes whenever anything shown changes
    # (course, curriculum, workout titles, price, branding) without tracking each version.
    return StorefrontPage('"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"', body)


def storefront_view(listing: StorefrontListing) -> StorefrontCourseView:
    # On sale: its plan is projected, so the price is known.
    assert listing.price_in_cents is not None
    assert listing.currency is not None
    return StorefrontCourseView(
        id=listing.id,
        name=listing.name,
        description=listing.description,
        image_url=listing.image_url,
        duration_days=listing.duration_days,
        workout_count=listing.workout_count,
        price=PriceView(cents=listing.price_in_cents, currency=listing.currency),
        preview_type=listing.preview_type,
        preview_workouts=_preview_decoder.decode(listing.preview),
        seller=SellerView(
            name=listing.seller_name, slug=listing.seller_slug, logo_url=listing.seller_logo_url
        ),
    )


class Storefront:
    """The storefront use case (a :class:`~coursemesh.catalog.app.ports.StorefrontPages`)."""

    def __init__(self, store: StorefrontStore) -> None:
        self.store = store

    async def page(self, course_id: uuid.UUID) -> StorefrontPage:
        listing = on_sale(await self.store.listing(course_id))
        return render(storefront_view(listing))
