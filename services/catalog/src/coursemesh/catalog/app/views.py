"""Read models the use cases return; they are also the JSON bodies (camelCase on the wire)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import msgspec

from coursemesh.contracts.types import CourseStatus, PreviewType, ReleaseMode, Role


class View(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    pass


class OrganizationView(View, frozen=True, kw_only=True):
    id: uuid.UUID
    name: str
    slug: str
    logo_url: str | None
    currency: str
    role: Role | None = None
    """The caller's role in the organization (set where the caller is known)."""


class OrganizationPage(View, frozen=True, kw_only=True):
    """One page of the caller's organizations, each with the caller's role."""

    items: list[OrganizationView]
    total: int
    limit: int
    offset: int


class MemberView(View, frozen=True, kw_only=True):
    membership_id: uuid.UUID
    user_id: str
    role: Role


class WorkoutView(View, frozen=True, kw_only=True):
    id: uuid.UUID
    organization_id: uuid.UUID
    title: str
    description: str | None
    duration_minutes: int | None
    instructions: str | None
    media_urls: list[str]


class ItemView(View, frozen=True, kw_only=True):
    item_id: uuid.UUID
    workout_id: uuid.UUID
    position: int
    title: str


class DayView(View, frozen=True, kw_only=True):
    day_offset: int
    is_rest: bool
    items: list[ItemView]


class CourseView(View, frozen=True, kw_only=True):
    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    description: str | None
    image_url: str | None
    status: CourseStatus
    duration_days: int
    preview_type: PreviewType
    published_at: datetime | None
    archived_at: datetime | None
    curriculum_version: int
    workout_count: int
    curriculum: list[DayView]
    release_mode: ReleaseMode = "open"
    max_pauses: int | None = None
    max_pause_days: int | None = None


class PriceView(View, frozen=True, kw_only=True):
    cents: int
    currency: str


class SellerView(View, frozen=True, kw_only=True):
    name: str
    slug: str
    logo_url: str | None


class PreviewWorkoutView(View, frozen=True, kw_only=True):
    day_offset: int
    position: int
    title: str
    duration_minutes: int | None
    description: str | None


class StorefrontCourseView(View, frozen=True, kw_only=True):
    id: uuid.UUID
    name: str
    description: str | None
    image_url: str | None
    duration_days: int
    workout_count: int
    price: PriceView
    preview_type: PreviewType
    preview_workouts: list[PreviewWorkoutView]
    seller: SellerView


@dataclass(frozen=True, slots=True)
class StorefrontPage:
    """A storefront 200 as it is sent: its ETag and its encoded body."""

    etag: str
    body: bytes
