"""Request bodies: validated at the edge (unknown fields refused, constraints checked), so bad
input is a 400 VALIDATION_FAILED with a field path before any use case runs."""

from __future__ import annotations

import uuid
from typing import Annotated

import msgspec
from msgspec import UNSET, Meta, UnsetType

from coursemesh.contracts.types import PreviewType, ReleaseMode, Role, UserId

Name = Annotated[str, Meta(min_length=1, max_length=200)]
Text = Annotated[str, Meta(max_length=20_000)]
Url = Annotated[str, Meta(pattern=r"^https?://\S+$", max_length=2048)]
Slug = Annotated[str, Meta(pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$", min_length=2, max_length=63)]
Currency = Annotated[str, Meta(pattern=r"^[A-Z]{3}$")]
Minutes = Annotated[int, Meta(ge=0, le=24 * 60)]
DurationDays = Annotated[int, Meta(ge=1, le=3650)]
# A day of the longest course: the last offset of DurationDays.
DayOffset = Annotated[int, Meta(ge=0, le=3649)]
MediaUrls = Annotated[list[Url], Meta(max_length=50)]
WorkoutIds = Annotated[list[uuid.UUID], Meta(max_length=100)]


class Body(msgspec.Struct, forbid_unknown_fields=True, rename="camel", kw_only=True):
    pass


class CreateOrganization(Body, kw_only=True):
    name: Name
    slug: Slug
    logo_url: Url | None = None
    currency: Currency


class UpdateOrganization(Body, kw_only=True):
    name: Name | UnsetType = UNSET
    slug: Slug | UnsetType = UNSET
    logo_url: Url | UnsetType | None = UNSET
    currency: Currency | UnsetType = UNSET


class AddMember(Body, kw_only=True):
    user_id: UserId
    role: Role


class ChangeMember(Body, kw_only=True):
    role: Role


class CreateWorkout(Body, kw_only=True):
    title: Name
    description: Text | None = None
    duration_minutes: Minutes | None = None
    instructions: Text | None = None
    media_urls: MediaUrls = msgspec.field(default_factory=list)


class UpdateWorkout(Body, kw_only=True):
    title: Name | UnsetType = UNSET
    description: Text | UnsetType | None = UNSET
    duration_minutes: Minutes | UnsetType | None = UNSET
    instructions: Text | UnsetType | None = UNSET
    media_urls: MediaUrls | UnsetType = UNSET


# A pause limit per run of a buyer (learning enforces it); null: unlimited.
PauseLimit = Annotated[int, Meta(ge=0, le=3650)]


class CreateCourse(Body, kw_only=True):
    name: Name
    description: Text | None = None
    image_url: Url | None = None
    duration_days: DurationDays
    preview_type: PreviewType = "first_day"


class UpdateCourse(Body, kw_only=True):
    name: Name | UnsetType = UNSET
    description: Text | UnsetType | None = UNSET
    image_url: Url | UnsetType | None = UNSET
    duration_days: DurationDays | UnsetType = UNSET
    preview_type: PreviewType | UnsetType = UNSET
    release_mode: ReleaseMode | UnsetType = UNSET
    max_pauses: PauseLimit | UnsetType | None = UNSET
    max_pause_days: PauseLimit | UnsetType | None = UNSET


class SetDay(Body, kw_only=True):
    day_offset: DayOffset
    workout_ids: WorkoutIds = msgspec.field(default_factory=list)
    is_rest: bool = False
