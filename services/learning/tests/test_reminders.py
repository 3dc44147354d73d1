"""Reminder e-mails end to end on PostgreSQL and a real SMTP server: opting in, the worker at a
chosen "now" (once per day across replicas and restarts), the one-click unsubscribe link, and
the refusals (never a 5xx)."""

from __future__ import annotations

import asyncio
import urllib.parse
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
import sqlalchemy as sa
from litestar.testing import AsyncTestClient

from coursemesh.chassis.db import Database
from coursemesh.chassis.testing import TestIdentity, service_settings
from coursemesh.learning.adapters.reminders import ReminderWorker
from coursemesh.learning.adapters.tables import reminder_sends
from coursemesh.learning.app.reminders import queue_due
from coursemesh.learning.main import create_app
from coursemesh.learning.service import SERVICE
from coursemesh.learning.settings import Settings

from .conftest import BUYER, COURSE, NOW, OTHER_BUYER, WORKOUT_A, WORKOUT_B, FixedClock, World

KEY = "reminder-test-key-5b1e"
PATH = f"/me/courses/{COURSE}/reminders"
UNSUBSCRIBE = "/public/reminders/unsubscribe"
# The course starts Monday 2025-03-03 (Berlin); day 0 has workouts A and B, day 1 is rest,
# day 2 has A again. 09:00 in Berlin is 08:00 UTC in March.
MONDAY_NINE = datetime(2025, 3, 3, 8, 0, tzinfo=UTC)


@pytest.fixture
def settings(
    database_url: str, nats_url: str, identity: TestIdentity, smtp_server: Any
) -> Settings:
    return service_settings(
        SERVICE,
        database_url=database_url,
        nats_url=nats_url,
        identity=identity,
        run_workers=False,
        catch_up=False,
        smtp_host=smtp_server.host,
        smtp_port=smtp_server.port,
        mail_from="Coursemesh <reminders@learn.example>",
        reminder_key=KEY,
        public_base_url="https://api.learn.example",
    )


@pytest.fixture
async def app_client(settings: Settings, clock: FixedClock) -> AsyncIterator[AsyncTestClient[Any]]:
    async with AsyncTestClient(create_app(settings, now=clock)) as test_client:
        yield test_client


def worker(settings: Settings, db: Database) -> ReminderWorker:
    """A replica's reminder worker (a new one is a restarted replica)."""
    found = ReminderWorker.from_settings(settings, db)
    assert found is not None
    return found


@pytest.fixture
def address() -> str:
    return f"{uuid.uuid4().hex[:10]}@learner.example"


def mails_to(smtp_server: Any, to: str) -> list[Any]:
    return [m for m in smtp_server.mailbox.messages() if m["To"] == to]


async def opt_in(
    client: Any, identity: TestIdentity, address: str, *, user: str = BUYER, **body: Any
) -> Any:
    return await client.put(
        PATH,
        json={"enabled": True, "localTime": "09:00", "timeZone": "Europe/Berlin", **body},
        headers=identity.headers(user, email=address),
    )


async def started(client: Any, world: World, identity: TestIdentity) -> None:
    await world.course()
    await world.entitle()
    answer = await client.post(
        f"/me/courses/{COURSE}/start",
        json={"startDate": "2025-03-03"},
        headers=identity.headers(BUYER),
    )
    assert answer.status_code == 200


def token_of(mail: Any) -> str:
    url = mail["List-Unsubscribe"].strip("<>")
    return urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["token"][0]


async def test_opting_in_stores_the_setting_with_the_tokens_address(
    app_client: Any, world: World, identity: TestIdentity, address: str
) -> None:
    await started(app_client, world, identity)
    before = await app_client.get(PATH, headers=identity.headers(BUYER))
    assert before.json() == {"enabled": False, "localTime": None, "timeZone": None, "email": None}
    answer = await opt_in(app_client, identity, address)
    assert answer.status_code == 200
    stored = {"enabled": True, "localTime": "09:00", "timeZone": "Europe/Berlin", "email": address}
    assert answer.json() == stored
    assert (await app_client.get(PATH, headers=identity.headers(BUYER))).json() == stored


async def test_the_worker_sends_todays_workouts_once_at_the_local_time_with_unsubscribe_headers(
    app_client: Any,
    world: World,
    identity: TestIdentity,
    settings: Settings,
    db: Database,
    smtp_server: Any,
    address: str,
) -> None:
    await started(app_client, world, identity)
    assert (await opt_in(app_client, identity, address)).status_code == 200
    await worker(settings, db).run_once(MONDAY_NINE - timedelta(minutes=1))
    assert mails_to(smtp_server, address) == []  # 08:59 in Berlin
    assert await worker(settings, db).run_once(MONDAY_NINE) == 1
    (mail,) = mails_to(smtp_server, address)
    assert mail["Subject"] == "30-day reset: today's workouts (day 1)"
    text = mail.get_body(("plain",)).get_content()
    assert "- Mobility flow" in text
    assert "- Core" in text
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = mail["List-Unsubscribe"].strip("<>")
    assert url.startswith("https://api.learn.example/public/reminders/unsubscribe?token=")
    assert url in text
    # on the wire the link is one plain header line, never RFC 2047 encoded words
    [raw] = [p.read_text() for p in smtp_server.mailbox.paths() if address in p.read_text()]
    assert f"\nList-Unsubscribe: <{url}>" in raw
    assert mail["Message-ID"].endswith("@learn.example>")


async def test_two_replicas_racing_send_once_and_a_restart_sends_nothing_more_that_day(
    app_client: Any,
    world: World,
    identity: TestIdentity,
    settings: Settings,
    db: Database,
    smtp_server: Any,
    address: str,
) -> None:
    await started(app_client, world, identity)
    assert (await opt_in(app_client, identity, address)).status_code == 200
    await asyncio.gather(
        worker(settings, db).run_once(MONDAY_NINE), worker(settings, db).run_once(MONDAY_NINE)
    )
    assert len(mails_to(smtp_server, address)) == 1
    # a restarted replica, later the same local day
    assert await worker(settings, db).run_once(MONDAY_NINE + timedelta(hours=12)) == 0
    assert len(mails_to(smtp_server, address)) == 1
    rows = await db_rows(db)
    assert [(r["kind"], str(r["local_date"])) for r in rows] == [("daily", "2025-03-03")]


async def db_rows(db: Database) -> list[Any]:
    async with db.unit_of_work() as uow:
        return list((await uow.session.execute(sa.select(reminder_sends))).mappings().all())


async def test_the_next_workout_day_sends_again_and_a_rest_day_sends_nothing(
    app_client: Any,
    world: World,
    identity: TestIdentity,
    settings: Settings,
    db: Database,
    smtp_server: Any,
    address: str,
) -> None:
    await started(app_client, world, identity)
    assert (await opt_in(app_client, identity, address)).status_code == 200
    await worker(settings, db).run_once(MONDAY_NINE)
    await worker(settings, db).run_once(MONDAY_NINE + timedelta(days=1))  # day 2: rest
    assert len(mails_to(smtp_server, address)) == 1
    await worker(settings, db).run_once(MONDAY_NINE + timedelta(days=2))
    subjects = [m["Subject"] for m in mails_to(smtp_server, address)]
    assert subjects == [
        "30-day reset: today's workouts (day 1)",
        "30-day reset: today's workouts (day 3)",
    ]


async def test_the_unsubscribe_link_stops_the_reminders(
    app_client: Any,
    world: World,
    identity: TestIdentity,
    settings: Settings,
    db: Database,
    smtp_server: Any,
    address: str,
) -> None:
    await started(app_client, world, identity)
    assert (await opt_in(app_client, identity, address)).status_code == 200
    await worker(settings, db).run_once(MONDAY_NINE)
    (mail,) = mails_to(smtp_server, address)
    token = token_of(mail)
    # following the link (a mail scanner does) changes nothing
    looked = await app_client.get(UNSUBSCRIBE, params={"token": token})
    assert (looked.status_code, looked.json()) == (200, {"enabled": True})
    # the one-click POST of RFC 8058, anonymous, with its form body
    clicked = await app_client.post(
        UNSUBSCRIBE,
        params={"token": token},
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert (clicked.status_code, clicked.json()) == (200, {"enabled": False})
    assert (await app_client.get(PATH, headers=identity.headers(BUYER))).json()["enabled"] is False
    await worker(settings, db).run_once(MONDAY_NINE + timedelta(days=2))
    assert len(mails_to(smtp_server, address)) == 1


async def test_a_mail_queued_before_the_unsubscribe_is_not_sent(
    app_client: Any,
    world: World,
    identity: TestIdentity,
    settings: Settings,
    db: Database,
    smtp_server: Any,
    address: str,
) -> None:
    await started(app_client, world, identity)
    assert (await opt_in(app_client, identity, address)).status_code == 200
    replica = worker(settings, db)
    await queue_due(
        replica.storage,
        MONDAY_NINE,
        key=KEY,
        nudge_after=3,
        unsubscribe_url=settings.unsubscribe_url,
    )
    (row,) = await db_rows(db)
    clicked = await app_client.post(
        UNSUBSCRIBE, params={"token": token_of({"List-Unsubscribe": f"<{row['unsubscribe_url']}>"})}
    )
    assert clicked.status_code == 200
    assert await replica.mailer.send_due() == 1
    assert mails_to(smtp_server, address) == []


async def test_refusals_another_users_course_bad_setting_and_bad_links_are_never_5xx(
    app_client: Any, world: World, identity: TestIdentity, address: str
) -> None:
    await started(app_client, world, identity)
    other = await opt_in(app_client, identity, address, user=OTHER_BUYER)
    assert (other.status_code, other.json()["code"]) == (404, "COURSE_NOT_OWNED")
    await world.entitle(OTHER_BUYER, status="pending")
    pending = await opt_in(app_client, identity, address, user=OTHER_BUYER)
    assert (pending.status_code, pending.json()["code"]) == (403, "ENTITLEMENT_PENDING")
    bad_time = await opt_in(app_client, identity, address, localTime="25:00")
    assert (bad_time.status_code, bad_time.json()["code"]) == (422, "INVALID_LOCAL_TIME")
    bad_zone = await opt_in(app_client, identity, address, timeZone="Europe/Atlantis")
    assert (bad_zone.status_code, bad_zone.json()["code"]) == (422, "INVALID_TIME_ZONE")
    no_email = await app_client.put(
        PATH,
        json={"enabled": True, "localTime": "09:00", "timeZone": "UTC"},
        headers=identity.headers(BUYER),
    )
    assert (no_email.status_code, no_email.json()["code"]) == (422, "REMINDER_EMAIL_UNKNOWN")
    for body in (
        {"enabled": "yes", "localTime": "09:00", "timeZone": "UTC"},
        {"enabled": True},
        [1],
    ):
        answer = await app_client.put(
            PATH, json=body, headers=identity.headers(BUYER, email=address)
        )
        assert (answer.status_code, answer.json()["code"]) == (400, "VALIDATION_FAILED")
    anonymous = {"enabled": True, "localTime": "09:00", "timeZone": "UTC"}
    assert (await app_client.put(PATH, json=anonymous)).status_code == 401
    missing = await app_client.post(UNSUBSCRIBE)
    assert (missing.status_code, missing.json()["code"]) == (400, "VALIDATION_FAILED")
    for token in ("forged.token", "", "x" * 300, "%00"):
        answer = await app_client.post(UNSUBSCRIBE, params={"token": token})
        assert answer.status_code == 400, token
    # nothing was stored by any refusal
    answer = await app_client.get(PATH, headers=identity.headers(BUYER))
    assert answer.json()["enabled"] is False


async def test_a_server_without_the_key_refuses_to_opt_in(
    client: Any, world: World, identity: TestIdentity, address: str
) -> None:
    await world.course()
    await world.entitle()
    answer = await opt_in(client, identity, address)
    assert (answer.status_code, answer.json()["code"]) == (409, "REMINDERS_UNAVAILABLE")


async def test_a_nudge_is_mailed_on_the_day_the_missed_workout_days_reach_n(
    app_client: Any,
    world: World,
    identity: TestIdentity,
    settings: Settings,
    db: Database,
    smtp_server: Any,
    address: str,
) -> None:
    await started(app_client, world, identity)
    assert (await opt_in(app_client, identity, address)).status_code == 200
    nudging = worker(msgspec.structs.replace(settings, reminder_nudge_after_days=1), db)
    # day 3 (offset 2): day 1's workouts were never done, day 2 was rest
    await nudging.run_once(MONDAY_NINE + timedelta(days=2))
    subjects = sorted(m["Subject"] for m in mails_to(smtp_server, address))
    assert subjects == [
        "30-day reset: pick it up again today",
        "30-day reset: today's workouts (day 3)",
    ]


async def test_completing_the_course_is_congratulated_once(
    app_client: Any,
    world: World,
    identity: TestIdentity,
    settings: Settings,
    db: Database,
    smtp_server: Any,
    address: str,
) -> None:
    await started(app_client, world, identity)
    assert (await opt_in(app_client, identity, address)).status_code == 200
    for workout, day in ((WORKOUT_A, 0), (WORKOUT_B, 0), (WORKOUT_A, 2)):
        answer = await app_client.post(
            f"/me/courses/{COURSE}/workouts/{workout}/complete",
            json={"dayOffset": day},
            headers=identity.headers(BUYER),
        )
        assert answer.status_code == 200
    assert answer.json()["courseCompletedAt"] is not None
    await worker(settings, db).run_once(NOW + timedelta(minutes=1))
    await worker(settings, db).run_once(NOW + timedelta(hours=2))
    (mail,) = mails_to(smtp_server, address)
    assert mail["Subject"] == "Congratulations: you completed 30-day reset"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
