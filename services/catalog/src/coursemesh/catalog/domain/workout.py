"""The workout library (pure).

Deleting is a soft delete: the workout leaves the library (not found from then on) and can no
longer be put on a day, but curricula that use it keep it, so buyers of a live course never lose
a day's content.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime

import msgspec

from coursemesh.catalog.domain.outcome import Emit, given
from coursemesh.chassis.errors import NotFound
from coursemesh.contracts.catalog import WorkoutDeleted, WorkoutUpserted

UNSET = msgspec.UNSET
Unset = msgspec.UnsetType


@dataclass(frozen=True, slots=True)
class Workout:
    id: uuid.UUID
    organization_id: uuid.UUID
    title: str
    description: str | None
    duration_minutes: int | None
    instructions: str | None
    media_urls: tuple[str, ...]
    deleted_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class WorkoutEdit:
    """The fields a PATCH sent; ``UNSET`` leaves a field as it is (``None`` clears)."""

    title: str | Unset = UNSET
    description: str | Unset | None = UNSET
    duration_minutes: int | Unset | None = UNSET
    instructions: str | Unset | None = UNSET
    media_urls: tuple[str, ...] | Unset = UNSET


@dataclass(frozen=True, slots=True)
class WorkoutOutcome:
    workout: Workout
    events: tuple[Emit, ...]


def workout_not_found() -> NotFound:
    return NotFound("Workout not found", code="WORKOUT_NOT_FOUND")


def live(workout: Workout | None) -> Workout:
    """The workout while it is in the library; a deleted one, another organization's or a
    random id are all "not found"."""
    if workout is None or workout.deleted_at is not None:
        raise workout_not_found()
    return workout


def _upserted(workout: Workout) -> Emit:
    return Emit(
        WorkoutUpserted(
            workout_id=workout.id,
            organization_id=workout.organization_id,
            title=workout.title,
            description=workout.description,
            duration_minutes=workout.duration_minutes,
            instructions=workout.instructions,
            media_urls=list(workout.media_urls),
        ),
        aggregate_id=workout.id,
        aggregate_version=workout.version,
    )


def create_workout(
    *,
    workout_id: uuid.UUID,
    organization_id: uuid.UUID,
    title: str,
    description: str | None,
    duration_minutes: int | None,
    instructions: str | None,
    media_urls: tuple[str, ...],
    now: datetime,
) -> WorkoutOutcome:
    workout = Workout(
        id=workout_id,
        organization_id=organization_id,
        title=title,
        description=description,
        duration_minutes=duration_minutes,
        instructions=instructions,
        media_urls=media_urls,
        deleted_at=None,
        version=1,
        created_at=now,
        updated_at=now,
    )
    return WorkoutOutcome(workout, (_upserted(workout),))


def edit_workout(workout: Workout | None, edit: WorkoutEdit, now: datetime) -> WorkoutOutcome:
    current = live(workout)
    edited = replace(
        current,
        title=given(edit.title, current.title),
        description=given(edit.description, current.description),
        duration_minutes=given(edit.duration_minutes, current.duration_minutes),
        instructions=given(edit.instructions, current.instructions),
        media_urls=given(edit.media_urls, current.media_urls),
        version=current.version + 1,
        updated_at=now,
    )
    return WorkoutOutcome(edited, (_upserted(edited),))


def delete_workout(workout: Workout | None, now: datetime) -> WorkoutOutcome:
    current = live(workout)
    deleted = replace(current, deleted_at=now, version=current.version + 1, updated_at=now)
    event = WorkoutDeleted(
        workout_id=deleted.id, organization_id=deleted.organization_id, deleted_at=now
    )
    return WorkoutOutcome(deleted, (Emit(event, deleted.id, deleted.version),))
