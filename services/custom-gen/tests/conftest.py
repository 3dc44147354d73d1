"""Fixtures for custom-gen tests: a migrated database per test, settings on the session's
real PostgreSQL, NATS and SeaweedFS, and helpers that feed consumed events."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from coursemesh.chassis.db import Database
from coursemesh.chassis.testing import TestIdentity, deliver, migrated_database, service_settings
from coursemesh.contracts import envelope
from coursemesh.contracts.catalog import MembershipChanged, membership_aggregate_id
from coursemesh.contracts.commerce import CustomCoursePurchased
from coursemesh.customgen.main import SUBSCRIPTIONS
from coursemesh.customgen.service import SERVICE
from coursemesh.customgen.settings import Settings

BUYER = "user_buyer"
OTHER_BUYER = "user_other"
STAFF = "user_staff"
ORG = uuid.UUID("0195f0a0-0000-7000-8000-0000000000aa")
BUCKET = "customgen-tests"
BRIEF_INTAKE = {
    "goal": "Sleep deeply and wake rested",
    "preferredName": "Sam",
    "focusAreas": ["evening worries"],
    "sessionCount": 2,
    "sessionLength": "brief",
}


@pytest.fixture
async def database_url(postgres_url: str) -> str:
    return await migrated_database(postgres_url, SERVICE)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url, SERVICE.schema)
    yield database
    await database.dispose()


@pytest.fixture
def identity(tmp_path: Path) -> TestIdentity:
    return TestIdentity(tmp_path / "identity")


@pytest.fixture
def s3(s3_config: Any) -> Any:
    s3_config.ensure_bucket(BUCKET)
    return s3_config


def make_settings(
    database_url: str, nats_url: str, identity: TestIdentity, s3: Any, **overrides: Any
) -> Settings:
    values: dict[str, Any] = {
        "s3_endpoint": s3.endpoint,
        "s3_access_key": s3.access_key,
        "s3_secret_key": s3.secret_key,
        "s3_region": s3.region,
        "s3_bucket": BUCKET,
        "job_backoff_base_seconds": 0.05,
        "job_backoff_max_seconds": 0.2,
        "job_poll_seconds": 0.5,
        **overrides,
    }
    return service_settings(
        SERVICE, database_url=database_url, nats_url=nats_url, identity=identity, **values
    )


@pytest.fixture
def settings(database_url: str, nats_url: str, identity: TestIdentity, s3: Any) -> Settings:
    return make_settings(database_url, nats_url, identity, s3)


async def purchase(db: Database, user_id: str = BUYER, org: uuid.UUID = ORG) -> uuid.UUID:
    """Deliver a commerce purchase event through the real inbox + handler."""
    purchase_id = uuid.uuid4()
    payload = CustomCoursePurchased(
        purchase_id=purchase_id,
        offer_id=uuid.uuid4(),
        user_id=user_id,
        organization_id=org,
        course_code="X99ENB",
        offer_title="Restful Sleep",
        amount_in_cents=4900,
        currency="USD",
        transaction_id=uuid.uuid4(),
        purchased_at=datetime.now(UTC),
    )
    await deliver(
        db, SUBSCRIPTIONS, envelope(payload, aggregate_id=purchase_id, aggregate_version=1)
    )
    return purchase_id


async def make_staff(
    db: Database,
    user_id: str = STAFF,
    org: uuid.UUID = ORG,
    version: int = 1,
    role: Any = "trainer",
) -> None:
    payload = MembershipChanged(
        organization_id=org,
        user_id=user_id,
        membership_id=uuid.uuid4(),
        role=role,
        is_staff=role in {"owner", "admin", "trainer"},
    )
    env = envelope(
        payload, aggregate_id=membership_aggregate_id(org, user_id), aggregate_version=version
    )
    await deliver(db, SUBSCRIPTIONS, env)


async def table_counts(db: Database) -> dict[str, int]:
    """Row counts of every custom-gen table: "nothing changed" means these are equal."""
    from coursemesh.customgen.adapters import tables

    counts: dict[str, int] = {}
    async with db.engine.connect() as conn:
        for table in (
            tables.purchases,
            tables.custom_courses,
            tables.generation_jobs,
            tables.regen_requests,
            tables.spine.outbox,
        ):
            counts[table.name] = (
                await conn.execute(sa.select(sa.func.count()).select_from(table))
            ).scalar_one()
    return counts


async def snapshot(db: Database) -> list[Any]:
    """Everything that could change: rows of the mutable tables, ordered."""
    from coursemesh.customgen.adapters import tables

    rows: list[Any] = []
    async with db.engine.connect() as conn:
        for table in (
            tables.purchases,
            tables.custom_courses,
            tables.generation_jobs,
            tables.regen_requests,
            tables.spine.outbox,
        ):
            result = await conn.execute(sa.select(table).order_by(*table.primary_key.columns))
            rows.append([tuple(r) for r in result])
    return rows


async def generate_now(
    db: Database,
    settings: Settings,
    user_id: str = BUYER,
    *,
    store: Any = None,
    speech: Any = None,
    **intake: Any,
) -> Any:
    """A ready course, generated in-process with the real adapters (no HTTP, no worker);
    ``store``, ``speech``: used instead of those the settings name."""
    from coursemesh.customgen.adapters.courses_sql import SqlCourseStore
    from coursemesh.customgen.app.submit import submit_custom_course
    from coursemesh.customgen.bootstrap import build_adapters, build_runner
    from coursemesh.customgen.domain.intake import Intake

    purchase_id = await purchase(db, user_id)
    fields = {
        "goal": "Sleep deeply",
        "preferred_name": "Sam",
        "session_count": 1,
        "session_length": "brief",
        **intake,
    }
    course_id = await submit_custom_course(
        SqlCourseStore(db),
        user_id=user_id,
        purchase_id=purchase_id,
        intake=Intake(**fields),
        script_writer="template",
    )
    adapters = build_adapters(settings, store)
    if speech is not None:
        adapters.speech = speech
    runner = build_runner(db, settings, adapters)
    while await runner.run_once():
        pass
    return course_id
