"""Test helpers for the catalog API (used by services/catalog/tests and the e2e suite)."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from coursemesh.catalog.adapters.tables import metadata
from coursemesh.chassis.db import Database
from coursemesh.chassis.testing import TestIdentity

OWNER = "user_owner"


class Api:
    """The HTTP API as a given user sees it; helpers assert the happy path's status."""

    def __init__(self, client: AsyncTestClient[Litestar], identity: TestIdentity) -> None:
        self.client = client
        self.identity = identity

    def auth(self, user: str | None) -> dict[str, str]:
        return self.identity.headers(user) if user else {}

    async def request(self, method: str, path: str, user: str | None = OWNER, **kw: Any) -> Any:
        headers = {**self.auth(user), **kw.pop("headers", {})}
        return await self.client.request(method, path, headers=headers, **kw)

    async def create_org(self, user: str = OWNER, slug: str | None = None) -> str:
        r = await self.request(
            "POST",
            "/organizations",
            user,
            json={
                "name": "Move Studio",
                "slug": slug or f"studio-{uuid.uuid4().hex[:8]}",
                "logoUrl": "https://cdn.example.com/logo.png",
                "currency": "EUR",
            },
        )
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    async def add_member(self, org: str, user_id: str, role: str, actor: str = OWNER) -> None:
        r = await self.request(
            "POST", f"/organizations/{org}/members", actor, json={"userId": user_id, "role": role}
        )
        assert r.status_code == 201, r.text

    async def create_workout(self, org: str, title: str = "Mobility", user: str = OWNER) -> str:
        r = await self.request(
            "POST",
            f"/organizations/{org}/workouts",
            user,
            json={
                "title": title,
                "description": f"{title} description",
                "durationMinutes": 20,
                "instructions": "Breathe.",
                "mediaUrls": ["https://cdn.example.com/a.mp4"],
            },
        )
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    async def create_course(
        self, org: str, duration_days: int = 3, preview_type: str = "first_day", user: str = OWNER
    ) -> str:
        r = await self.request(
            "POST",
            f"/organizations/{org}/courses",
            user,
            json={
                "name": "30-day reset",
                "description": "A gentle month.",
                "imageUrl": "https://cdn.example.com/c.png",
                "durationDays": duration_days,
                "previewType": preview_type,
            },
        )
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    async def set_day(
        self,
        org: str,
        course: str,
        day_offset: int,
        workout_ids: list[str] | None = None,
        is_rest: bool = False,
        user: str = OWNER,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"dayOffset": day_offset, "isRest": is_rest}
        if workout_ids is not None:
            body["workoutIds"] = workout_ids
        r = await self.request(
            "POST", f"/organizations/{org}/courses/{course}/days", user, json=body
        )
        assert r.status_code == 200, r.text
        result: dict[str, Any] = r.json()
        return result

    async def publish(self, org: str, course: str, user: str = OWNER) -> dict[str, Any]:
        r = await self.request("POST", f"/organizations/{org}/courses/{course}/publish", user)
        assert r.status_code == 200, r.text
        result: dict[str, Any] = r.json()
        return result

    async def published_course(self, preview_type: str = "first_day") -> tuple[str, str, str]:
        """An org with a published course whose day 0 holds one workout: (org, course, workout)."""
        org = await self.create_org()
        workout = await self.create_workout(org)
        course = await self.create_course(org, preview_type=preview_type)
        await self.set_day(org, course, 0, [workout])
        await self.publish(org, course)
        return org, course, workout


async def table_state(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every catalog table except the inbox, and the outbox's event types: what
    "nothing changed" compares. (The relay may mark outbox rows sent, so only types count.)"""
    state: dict[str, list[tuple[Any, ...]]] = {}
    async with db.reading() as conn:
        for table in metadata.sorted_tables:
            if table.name in {"inbox", "outbox"}:
                continue
            columns = ", ".join(f'"{c.name}"' for c in table.columns)
            rows = await conn.fetch(f'SELECT {columns} FROM "{table.name}"')
            state[table.name] = sorted((tuple(r) for r in rows), key=repr)
        outbox = db.spine.outbox
        types = await conn.fetch(
            f'SELECT "{outbox.c.type.name}" FROM "{outbox.name}" ORDER BY "{outbox.c.seq.name}"'
        )
        state["outbox"] = [tuple(t) for t in types]
    return state


def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    """Assert an RFC 9457 problem with a stable code; return its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


def error_paths(body: dict[str, Any]) -> list[str]:
    return [e["path"] for e in body.get("errors", [])]
