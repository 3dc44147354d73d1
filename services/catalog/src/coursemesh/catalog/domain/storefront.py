"""What the public storefront shows (pure): a course is on sale when it exists, is published and
has an active plan; each other case is its own 404."""

from __future__ import annotations

from typing import Protocol, TypeVar

from coursemesh.chassis.errors import NotFound
from coursemesh.contracts.types import CourseStatus


class Listed(Protocol):
    @property
    def status(self) -> CourseStatus: ...

    @property
    def plan_active(self) -> bool | None:
        """``None`` while no plan has been projected for the course."""
        ...


L = TypeVar("L", bound=Listed)


def on_sale(listing: L | None) -> L:
    """``listing`` if a buyer may see it; ``None`` stands for a course (or its config) that does
    not exist."""
    if listing is None:
        raise NotFound("Course not found", code="NOT_FOUND")
    if listing.status != "published":
        raise NotFound("Course not available", code="COURSE_NOT_AVAILABLE")
    if not listing.plan_active:
        raise NotFound("Course is not available for purchase", code="COURSE_NOT_PURCHASABLE")
    return listing
