"""Use cases for the workout library (staff only; deleting is a soft delete)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from coursemesh.catalog.app.ports import CatalogStore
from coursemesh.catalog.app.publishing import publish
from coursemesh.catalog.app.views import WorkoutView
from coursemesh.catalog.domain import workout as rules
from coursemesh.catalog.domain.roles import require_staff
from coursemesh.catalog.domain.workout import Workout, WorkoutEdit


def _view(workout: Workout) -> WorkoutView:
    return WorkoutView(
        id=workout.id,
        organization_id=workout.organization_id,
        title=workout.title,
        description=workout.description,
        duration_minutes=workout.duration_minutes,
        instructions=workout.instructions,
        media_urls=list(workout.media_urls),
    )


async def create_workout(
    store: CatalogStore,
    *,
    actor: str,
    organization_id: uuid.UUID,
    title: str,
    description: str | None,
    duration_minutes: int | None,
    instructions: str | None,
    media_urls: list[str],
) -> WorkoutView:
    async with store.transaction() as tx:
        require_staff(await tx.role(organization_id, actor))
        outcome = rules.create_workout(
            workout_id=uuid.uuid4(),
            organization_id=organization_id,
            title=title,
            description=description,
            duration_minutes=duration_minutes,
            instructions=instructions,
            media_urls=tuple(media_urls),
            now=datetime.now(UTC),
        )
        await tx.add_workout(outcome.workout)
        publish(tx, outcome.events)
    return _view(outcome.workout)


async def list_workouts(
    store: CatalogStore, *, actor: str, organization_id: uuid.UUID
) -> list[WorkoutView]:
    async with store.reading() as reader:
        require_staff(await reader.role(organization_id, actor))
        workouts = await reader.workouts(organization_id)
    return [_view(w) for w in workouts]


async def get_workout(
    store: CatalogStore, *, actor: str, organization_id: uuid.UUID, workout_id: uuid.UUID
) -> WorkoutView:
    async with store.reading() as reader:
        require_staff(await reader.role(organization_id, actor))
        workout = await reader.workout(organization_id, workout_id)
    return _view(rules.live(workout))


async def update_workout(
    store: CatalogStore,
    *,
    actor: str,
    organization_id: uuid.UUID,
    workout_id: uuid.UUID,
    edit: WorkoutEdit,
) -> WorkoutView:
    async with store.transaction() as tx:
        require_staff(await tx.role(organization_id, actor))
        workout = await tx.lock_workout(organization_id, workout_id)
        outcome = rules.edit_workout(workout, edit, datetime.now(UTC))
        await tx.save_workout(outcome.workout)
        publish(tx, outcome.events)
    return _view(outcome.workout)


async def delete_workout(
    store: CatalogStore, *, actor: str, organization_id: uuid.UUID, workout_id: uuid.UUID
) -> None:
    async with store.transaction() as tx:
        require_staff(await tx.role(organization_id, actor))
        workout = await tx.lock_workout(organization_id, workout_id)
        outcome = rules.delete_workout(workout, datetime.now(UTC))
        await tx.save_workout(outcome.workout)
        publish(tx, outcome.events)
