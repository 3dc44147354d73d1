"""The workout library through the use cases, on the in-memory catalog."""

from __future__ import annotations

import uuid

from coursemesh.catalog.app import organizations, workouts
from coursemesh.catalog.domain.workout import WorkoutEdit
from coursemesh.contracts.catalog import WorkoutDeleted, WorkoutUpserted

from .fakes import FakeCatalog, refused

OWNER = "user_owner"


async def org_with_staff(catalog: FakeCatalog) -> uuid.UUID:
    org = await organizations.create_organization(
        catalog, actor=OWNER, name="Move", slug="move", logo_url=None, currency="EUR"
    )
    await organizations.add_member(
        catalog, actor=OWNER, organization_id=org.id, user_id="user_t", role="trainer"
    )
    await organizations.add_member(
        catalog, actor=OWNER, organization_id=org.id, user_id="user_m", role="member"
    )
    return org.id


async def create(catalog: FakeCatalog, org: uuid.UUID, title: str = "Mobility") -> uuid.UUID:
    view = await workouts.create_workout(
        catalog,
        actor="user_t",
        organization_id=org,
        title=title,
        description="Slow.",
        duration_minutes=20,
        instructions="Breathe.",
        media_urls=["https://cdn.example.com/a.mp4"],
    )
    return view.id


async def test_create_edit_delete_publish_the_full_state_at_each_version() -> None:
    catalog = FakeCatalog()
    org = await org_with_staff(catalog)
    workout = await create(catalog, org)
    edited = await workouts.update_workout(
        catalog,
        actor=OWNER,
        organization_id=org,
        workout_id=workout,
        edit=WorkoutEdit(title="Mobility II", description=None),
    )
    assert (edited.title, edited.description, edited.duration_minutes) == ("Mobility II", None, 20)
    assert edited.media_urls == ["https://cdn.example.com/a.mp4"]
    assert (
        await workouts.get_workout(catalog, actor="user_t", organization_id=org, workout_id=workout)
        == edited
    )
    await workouts.delete_workout(catalog, actor="user_t", organization_id=org, workout_id=workout)
    upserts = catalog.published(WorkoutUpserted)
    assert [(e.aggregate_version, e.payload.title) for e in upserts] == [
        (1, "Mobility"),
        (2, "Mobility II"),
    ]
    (deleted,) = catalog.published(WorkoutDeleted)
    assert (deleted.aggregate_id, deleted.aggregate_version) == (str(workout), 3)


async def test_a_deleted_or_foreign_workout_is_not_found_and_leaves_the_library() -> None:
    catalog = FakeCatalog()
    org = await org_with_staff(catalog)
    kept = await create(catalog, org, "Kept")
    gone = await create(catalog, org, "Gone")
    await workouts.delete_workout(catalog, actor=OWNER, organization_id=org, workout_id=gone)
    library = await workouts.list_workouts(catalog, actor="user_t", organization_id=org)
    assert [w.id for w in library] == [kept]
    other = await organizations.create_organization(
        catalog, actor="user_t", name="Other", slug="other", logo_url=None, currency="EUR"
    )
    for organization_id, workout_id in ((org, gone), (org, uuid.uuid4()), (other.id, kept)):
        for call in (
            workouts.get_workout(
                catalog, actor="user_t", organization_id=organization_id, workout_id=workout_id
            ),
            workouts.update_workout(
                catalog,
                actor="user_t",
                organization_id=organization_id,
                workout_id=workout_id,
                edit=WorkoutEdit(title="X"),
            ),
            workouts.delete_workout(
                catalog, actor="user_t", organization_id=organization_id, workout_id=workout_id
            ),
        ):
            await refused(catalog, 404, "WORKOUT_NOT_FOUND", call)


async def test_members_are_refused_403_and_outsiders_404() -> None:
    catalog = FakeCatalog()
    org = await org_with_staff(catalog)
    workout = await create(catalog, org)
    for actor, status, code in (
        ("user_m", 403, "STAFF_ROLE_REQUIRED"),
        ("outsider", 404, "ORGANIZATION_NOT_FOUND"),
    ):
        await refused(
            catalog,
            status,
            code,
            workouts.create_workout(
                catalog,
                actor=actor,
                organization_id=org,
                title="X",
                description=None,
                duration_minutes=None,
                instructions=None,
                media_urls=[],
            ),
        )
        await refused(
            catalog, status, code, workouts.list_workouts(catalog, actor=actor, organization_id=org)
        )
        await refused(
            catalog,
            status,
            code,
            workouts.delete_workout(catalog, actor=actor, organization_id=org, workout_id=workout),
        )
