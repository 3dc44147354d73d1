"""Projections: version-checked, idempotent, one version per course part; and the real NATS path."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
import sqlalchemy as sa
from litestar.testing import AsyncTestClient

from coursemesh.chassis.db import Database
from coursemesh.chassis.testing import (
    TestIdentity,
    deliver,
    migration_drift,
    service_settings,
    wait_for,
)
from coursemesh.contracts import encode, envelope, examples, subject_for
from coursemesh.contracts.catalog import (
    CourseDetailsChanged,
    CoursePublished,
    WorkoutDeleted,
    WorkoutUpserted,
)
from coursemesh.contracts.commerce import EntitlementChangedV2
from coursemesh.learning.adapters.tables import courses, entitlements, memberships, workouts
from coursemesh.learning.events.projections import subscriptions
from coursemesh.learning.main import create_app
from coursemesh.learning.service import SERVICE


async def rows(db: Database, table: sa.Table) -> list[Any]:
    async with db.engine.connect() as conn:
        return list((await conn.execute(sa.select(table))).all())


def entitlement_payload(status: str, user_id: str = "user_buyer") -> EntitlementChangedV2:
    return EntitlementChangedV2(
        entitlement_id=examples.ENTITLEMENT,
        user_id=user_id,
        course_id=examples.COURSE,
        organization_id=examples.ORG,
        status=status,  # type: ignore[arg-type]
        access_revoked_at=None if status != "revoked" else datetime(2025, 3, 2, tzinfo=UTC),
        source_payment_transaction_id=None,
        membership_id=None,
        previous_status=None,
        cause="paid_checkout",
        reason=None,
        changed_at=datetime(2025, 3, 1, tzinfo=UTC),
    )


async def test_entitlement_projection_ignores_stale_versions(db: Database) -> None:
    newer = envelope(
        entitlement_payload("active"), aggregate_id=examples.ENTITLEMENT, aggregate_version=2
    )
    older = envelope(
        entitlement_payload("pending"), aggregate_id=examples.ENTITLEMENT, aggregate_version=1
    )
    await deliver(db, subscriptions(), newer)
    await deliver(db, subscriptions(), older)  # arrives late
    await deliver(db, subscriptions(), newer)  # redelivered
    (row,) = await rows(db, entitlements)
    assert (row.status, row.version) == ("active", 2)


async def test_course_parts_keep_their_own_versions(db: Database) -> None:
    """Details v3 arriving after curriculum v4 still applies: the parts share one counter."""
    payloads = examples.example_payloads()
    curriculum = envelope(
        payloads["catalog.course.curriculum_changed.v1"],
        aggregate_id=examples.COURSE,
        aggregate_version=4,
    )
    details = envelope(
        payloads["catalog.course.details_changed.v1"],
        aggregate_id=examples.COURSE,
        aggregate_version=3,
    )
    stale_details = envelope(
        CourseDetailsChanged(
            course_id=examples.COURSE,
            organization_id=examples.ORG,
            name="Old name",
            description=None,
            image_url=None,
            duration_days=3,
            preview_type="none",
            status="draft",
        ),
        aggregate_id=examples.COURSE,
        aggregate_version=2,
    )
    published = envelope(
        CoursePublished(
            course_id=examples.COURSE,
            organization_id=examples.ORG,
            published_at=datetime(2025, 3, 1, tzinfo=UTC),
            curriculum_version=3,
        ),
        aggregate_id=examples.COURSE,
        aggregate_version=5,
    )
    for env in (curriculum, published, details, stale_details):
        await deliver(db, subscriptions(), env)
    (row,) = await rows(db, courses)
    assert row.name == "30-day reset"  # details v3 applied, v2 ignored
    assert (row.curriculum_version, row.workout_item_count) == (3, 3)
    assert row.status == "published"  # published v5 beats the details' "draft" of v3
    assert (row.details_version, row.curriculum_event_version, row.lifecycle_version) == (3, 4, 5)


async def test_deleted_workout_keeps_its_last_content(db: Database) -> None:
    workout_id = examples.WORKOUT_A
    upserted = WorkoutUpserted(
        workout_id=workout_id,
        organization_id=examples.ORG,
        title="Mobility flow",
        description=None,
        duration_minutes=20,
        instructions=None,
        media_urls=["https://cdn.example.com/m.mp4"],
    )
    deleted = WorkoutDeleted(
        workout_id=workout_id,
        organization_id=examples.ORG,
        deleted_at=datetime(2025, 3, 2, tzinfo=UTC),
    )
    await deliver(
        db, subscriptions(), envelope(upserted, aggregate_id=workout_id, aggregate_version=1)
    )
    await deliver(
        db, subscriptions(), envelope(deleted, aggregate_id=workout_id, aggregate_version=2)
    )
    (row,) = await rows(db, workouts)
    assert (row.title, row.media_urls, row.deleted_at is not None) == (
        "Mobility flow",
        ["https://cdn.example.com/m.mp4"],
        True,
    )


async def test_membership_removal_is_projected(world: Any, db: Database) -> None:
    await world.member("user_trainer", "trainer", version=1)
    await world.member("user_trainer", None, version=2)
    await world.member("user_trainer", "owner", version=1)  # stale
    (row,) = await rows(db, memberships)
    assert (row.role, row.is_staff, row.version) == (None, False, 2)


async def test_entitlement_event_over_real_jetstream_opens_the_player(
    database_url: str, nats_url: str, tmp_path: Path, world: Any
) -> None:
    """The consumer path end to end: commerce's event on JetStream -> inbox -> projection."""
    await world.course()
    identity = TestIdentity(tmp_path)
    settings = service_settings(
        SERVICE, database_url=database_url, nats_url=nats_url, identity=identity
    )
    user = f"user_{uuid.uuid4().hex[:8]}"
    entitlement_id = uuid.uuid4()
    payload = EntitlementChangedV2(
        entitlement_id=entitlement_id,
        user_id=user,
        course_id=examples.COURSE,
        organization_id=examples.ORG,
        status="active",
        access_revoked_at=None,
        source_payment_transaction_id=None,
        membership_id=None,
        previous_status="pending",
        cause="payment_completed",
        reason=None,
        changed_at=datetime(2025, 3, 1, tzinfo=UTC),
    )
    async with AsyncTestClient(create_app(settings)) as client:
        nc = await nats.connect(nats_url)
        try:
            env = envelope(payload, aggregate_id=entitlement_id, aggregate_version=1)
            await nc.jetstream().publish(
                subject_for(env.type), encode(env), headers={"Nats-Msg-Id": str(env.id)}
            )
        finally:
            await nc.close()

        async def player_open() -> bool:
            response = await client.get(
                f"/me/courses/{examples.COURSE}", headers=identity.headers(user)
            )
            return response.status_code == 200

        await wait_for(player_open, timeout=15, message="entitlement projected from JetStream")


async def test_migrations_match_the_table_declarations(database_url: str) -> None:
    from coursemesh.learning.adapters.tables import metadata

    assert await migration_drift(database_url, SERVICE.schema, metadata) == []
