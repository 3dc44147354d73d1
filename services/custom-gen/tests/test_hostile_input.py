"""Every custom-gen route against hostile bodies: never a 5xx, and a refusal changes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from litestar.testing import AsyncTestClient

from coursemesh.chassis import hostile
from coursemesh.chassis.db import Database
from coursemesh.chassis.testing import TestIdentity
from coursemesh.customgen.main import create_app

from .conftest import BUYER, ORG, generate_now, make_settings, make_staff


@pytest.fixture
async def attack(
    database_url: str, nats_url: str, identity: TestIdentity, s3: Any, db: Database
) -> AsyncIterator[tuple[Any, list[hostile.Target]]]:
    """The app with no background work (a refusal must change nothing by itself), a ready
    course of a buyer who is also staff of its organization, and every route aimed at it."""
    settings = make_settings(
        database_url, nats_url, identity, s3, run_workers=False, catch_up=False
    )
    course_id = await generate_now(db, settings)
    await make_staff(db, BUYER)
    async with AsyncTestClient(create_app(settings)) as client:
        ids = {"organization_id": str(ORG), "course_id": str(course_id)}
        yield client, hostile.targets(client.app, ids)


async def test_every_route_refuses_each_hostile_body_and_changes_nothing(
    attack: tuple[Any, list[hostile.Target]], db: Database, identity: TestIdentity
) -> None:
    client, routes = attack
    # Routes that take a body; the file routes (GETs) are attacked through their headers below.
    assert len(routes) == 5
    await hostile.assert_refuses_hostile_bodies(client, db, routes, identity.headers(BUYER))


@hostile.PROPERTY_SETTINGS
@given(data=st.data())
async def test_no_body_breaks_a_route(
    data: st.DataObject,
    attack: tuple[Any, list[hostile.Target]],
    db: Database,
    identity: TestIdentity,
) -> None:
    client, routes = attack
    await hostile.assert_draw_survives(data, client, db, routes, identity.headers(BUYER))


#: Header values a download must survive: malformed, huge, multi-range, wrong units, dates.
HOSTILE_HEADERS: tuple[str, ...] = (
    "",
    "bytes=",
    "bytes=-",
    "bytes=--1",
    "bytes=1-0",
    "bytes=0-0,1-1,2-2",
    "bytes=" + "9" * 5000 + "-",
    "bytes=-" + "9" * 50,
    "bytes=99999999999999999999-",
    "bytes=0-99999999999999999999",
    "items=0-1",
    "bytes=\t0-1",
    "*",
    "W/",
    '"',
    '"' + "a" * 4000 + '"',
    "Wed, 21 Oct 2015 07:28:00 GMT",
    "bytes=0-1;x",
)
_HEADER_TEXT = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)


async def file_paths(client: Any, headers: dict[str, str]) -> list[str]:
    (course,) = (await client.get("/me/custom-courses", headers=headers)).json()
    listed = await client.get(f"/me/custom-courses/{course['id']}/files", headers=headers)
    files = [f["path"] for f in listed.json()["files"]]
    return [
        f"/me/custom-courses/{course['id']}/files",
        *files,
        f"/me/custom-courses/{course['id']}/files/%00",
        f"/me/custom-courses/{course['id']}/files/{'x' * 3000}",
    ]


async def assert_download_survives(
    client: Any, db: Database, path: str, headers: dict[str, str]
) -> None:
    before = await hostile.database_digest(db)
    answer = await client.get(path, headers=headers)
    assert answer.status_code < 500, f"GET {path} with {headers} answered {answer.status_code}"
    if answer.status_code >= 400:
        assert answer.headers["content-type"].startswith("application/problem+json")
    assert await hostile.database_digest(db) == before


async def test_the_file_routes_survive_hostile_conditional_and_range_headers(
    attack: tuple[Any, list[hostile.Target]], db: Database, identity: TestIdentity
) -> None:
    client, _ = attack
    me = identity.headers(BUYER)
    for path in await file_paths(client, me):
        for value in HOSTILE_HEADERS:
            for name in ("Range", "If-None-Match", "If-Range"):
                await assert_download_survives(client, db, path, {**me, name: value})
            await assert_download_survives(
                client, db, path, {**me, "Range": value, "If-Range": value}
            )


@hostile.PROPERTY_SETTINGS
@given(data=st.data())
async def test_no_range_header_breaks_a_download(
    data: st.DataObject,
    attack: tuple[Any, list[hostile.Target]],
    db: Database,
    identity: TestIdentity,
) -> None:
    client, _ = attack
    me = identity.headers(BUYER)
    path = data.draw(st.sampled_from(await file_paths(client, me)), label="path")
    drawn = {
        name: data.draw(_HEADER_TEXT | st.sampled_from(HOSTILE_HEADERS), label=name)
        for name in ("Range", "If-None-Match", "If-Range")
    }
    await assert_download_survives(client, db, path, {**me, **drawn})
