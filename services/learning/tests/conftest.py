"""Fixtures for the learning tests: a migrated database per test, the app with a fixed clock,
and a ``world`` that feeds the projections through the real inbox + handlers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from coursemesh.chassis.db import Database
from coursemesh.chassis.testing import TestIdentity, deliver, migrated_database, service_settings
from coursemesh.contracts import Event, envelope, examples
from coursemesh.contracts.catalog import (
    CourseDetailsChanged,
    CurriculumChanged,
    MembershipChanged,
    WorkoutUpserted,
    membership_aggregate_id,
)
from coursemesh.contracts.commerce import EntitlementChangedV2
from coursemesh.contracts.types import CurriculumDay, CurriculumItem
from coursemesh.learning.events.projections import subscriptions
from coursemesh.learning.main import create_app
from coursemesh.learning.service import SERVICE

ORG = examples.ORG
COURSE = examples.COURSE
WORKOUT_A = examples.WORKOUT_A
WORKOUT_B = examples.WORKOUT_B
ITEM_A0 = examples.ITEM_A0
ITEM_B0 = examples.ITEM_B0
ITEM_A2 = examples.ITEM_A2
BUYER = "user_buyer"
OTHER_BUYER = "user_other"
TRAINER = "user_trainer"
# Monday 2025-03-03 10:00 UTC: still Sunday in Los Angeles, already evening in Tokyo.
NOW = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)


class FixedClock:
    """The app's clock: tests move ``now`` to choose "today"."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def three_day_curriculum() -> list[CurriculumDay]:
    """Day 0: workouts A and B; day 1: rest; day 2: workout A again (the several-days case)."""
    return [
        CurriculumDay(
            day_offset=0,
            is_rest=False,
            items=[
                CurriculumItem(item_id=ITEM_A0, workout_id=WORKOUT_A, position=0),
                CurriculumItem(item_id=ITEM_B0, workout_id=WORKOUT_B, position=1),
            ],
        ),
        CurriculumDay(day_offset=1, is_rest=True, items=[]),
        CurriculumDay(
            day_offset=2,
            is_rest=False,
            items=[CurriculumItem(item_id=ITEM_A2, workout_id=WORKOUT_A, position=0)],
        ),
    ]


class World:
    """Feeds learning's projections the way catalog and commerce events would."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.course_version = 0
        self.entitlement_ids: dict[str, uuid.UUID] = {}
        self.entitlement_versions: dict[str, int] = {}

    async def event(self, payload: Event, aggregate_id: Any, version: int) -> None:
        env = envelope(payload, aggregate_id=aggregate_id, aggregate_version=version)
        await deliver(self.db, subscriptions(), env)

    async def course(
        self,
        days: list[CurriculumDay] | None = None,
        curriculum_version: int = 1,
        course_id: uuid.UUID = COURSE,
        name: str = "30-day reset",
    ) -> None:
        days = three_day_curriculum() if days is None else days
        self.course_version += 1
        await self.event(
            CourseDetailsChanged(
                course_id=course_id,
                organization_id=ORG,
                name=name,
                description=None,
                image_url="https://cdn.example.com/reset.png",
                duration_days=len(days),
                preview_type="first_day",
                status="published",
            ),
            course_id,
            self.course_version,
        )
        await self.curriculum(days, curriculum_version, course_id)
        for workout_id, title in ((WORKOUT_A, "Mobility flow"), (WORKOUT_B, "Core")):
            await self.event(
                WorkoutUpserted(
                    workout_id=workout_id,
                    organization_id=ORG,
                    title=title,
                    description=None,
                    duration_minutes=20,
                    instructions="Breathe.",
                    media_urls=[],
                ),
                workout_id,
                1,
            )

    async def curriculum(
        self, days: list[CurriculumDay], curriculum_version: int, course_id: uuid.UUID = COURSE
    ) -> None:
        self.course_version += 1
        await self.event(
            CurriculumChanged(
                course_id=course_id,
                organization_id=ORG,
                curriculum_version=curriculum_version,
                duration_days=len(days),
                days=days,
            ),
            course_id,
            self.course_version,
        )

    async def entitle(
        self,
        user_id: str = BUYER,
        status: str = "active",
        course_id: uuid.UUID = COURSE,
        revoked_at: datetime | None = None,
    ) -> uuid.UUID:
        key = f"{user_id}:{course_id}"
        entitlement_id = self.entitlement_ids.setdefault(key, uuid.uuid4())
        version = self.entitlement_versions.get(key, 0) + 1
        self.entitlement_versions[key] = version
        await self.event(
            EntitlementChangedV2(
                entitlement_id=entitlement_id,
                user_id=user_id,
                course_id=course_id,
                organization_id=ORG,
                status=status,  # type: ignore[arg-type]
                access_revoked_at=revoked_at,
                source_payment_transaction_id=None,
                membership_id=None,
                previous_status=None,
                cause="free_checkout",
                reason=None,
                changed_at=NOW,
            ),
            entitlement_id,
            version,
        )
        return entitlement_id

    async def member(self, user_id: str, role: str | None, version: int = 1) -> None:
        await self.event(
            MembershipChanged(
                organization_id=ORG,
                user_id=user_id,
                membership_id=uuid.uuid4(),
                role=role,  # type: ignore[arg-type]
                is_staff=role in ("owner", "admin", "trainer"),
            ),
            membership_aggregate_id(ORG, user_id),
            version,
        )


@pytest.fixture
async def database_url(postgres_url: str) -> str:
    return await migrated_database(postgres_url, SERVICE)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url, SERVICE.schema)
    yield database
    await database.dispose()


@pytest.fixture
def world(db: Database) -> World:
    return World(db)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def identity(tmp_path: Path) -> TestIdentity:
    return TestIdentity(tmp_path / "identity")


#: Where the tests' certificates go, in the devstack plugin's S3.
CERTIFICATE_BUCKET = "learning-test-certificates"


@pytest.fixture
def s3(s3_config: Any) -> Any:
    s3_config.ensure_bucket(CERTIFICATE_BUCKET)
    return s3_config


@pytest.fixture
async def client(
    database_url: str, nats_url: str, identity: TestIdentity, clock: FixedClock, s3: Any
) -> AsyncIterator[AsyncTestClient[Any]]:
    # Projections are fed with deliver(); the NATS path has its own test (test_consumer.py).
    settings = service_settings(
        SERVICE,
        database_url=database_url,
        nats_url=nats_url,
        identity=identity,
        run_workers=False,
        catch_up=False,
        s3_endpoint=s3.endpoint,
        s3_access_key=s3.access_key,
        s3_secret_key=s3.secret_key,
        s3_region=s3.region,
        s3_bucket=CERTIFICATE_BUCKET,
    )
    async with AsyncTestClient(create_app(settings, now=clock)) as test_client:
        yield test_client
