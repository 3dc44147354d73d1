"""Course certificates over HTTP, on real PostgreSQL and a real S3 (the devstack plugin's
SeaweedFS): issued on completion, kept once, downloaded by the owner, checked by anyone,
revoked with the entitlement."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime
from typing import Any

import pypdf
import pypdfium2
import pytest
import sqlalchemy as sa

from coursemesh.chassis.db import Database
from coursemesh.chassis.testing import TestIdentity, outbox_events
from coursemesh.contracts import examples
from coursemesh.contracts.catalog import OrganizationUpserted
from coursemesh.learning.adapters.tables import certificates

from .conftest import BUYER, CERTIFICATE_BUCKET, ORG, OTHER_BUYER, World

COURSE = str(examples.COURSE)
PLAYER = f"/me/courses/{COURSE}"
CERTIFICATE = f"{PLAYER}/certificate"
NAME = "Ann Example"
# Monday 2025-03-03 10:00 UTC is still Monday in UTC: the completion date printed.
COMPLETED_ON = "2025-03-03"


async def _branded(world: World) -> None:
    await world.event(
        OrganizationUpserted(
            organization_id=ORG,
            name="Peak Form Studio",
            slug="peak-form",
            logo_url="https://cdn.example.com/peak-form.png",
            currency="USD",
        ),
        ORG,
        1,
    )


async def _complete_course(client: Any, identity: TestIdentity, name: str | None = NAME) -> Any:
    headers = identity.headers(BUYER, name=name)
    last = None
    for workout, day in (
        (examples.WORKOUT_A, 0),
        (examples.WORKOUT_B, 0),
        (examples.WORKOUT_A, 2),
    ):
        last = await client.post(
            f"{PLAYER}/workouts/{workout}/complete", json={"dayOffset": day}, headers=headers
        )
        assert last.status_code == 200, last.text
    assert last is not None
    return last.json()


async def _certificate_id(client: Any, identity: TestIdentity) -> str:
    opened = await client.get(PLAYER, headers=identity.headers(BUYER))
    assert opened.status_code == 200
    certificate_id: str = opened.json()["certificateId"]
    return certificate_id


async def _rows(db: Database) -> list[Any]:
    async with db.engine.connect() as conn:
        return list((await conn.execute(sa.select(certificates))).all())


@pytest.fixture
async def completed(client: Any, world: World, identity: TestIdentity) -> str:
    """The buyer completed the branded course; the certificate's id."""
    await _branded(world)
    await world.course()
    await world.entitle()
    await _complete_course(client, identity)
    return await _certificate_id(client, identity)


async def test_completion_stores_a_pdf_in_s3_that_the_owner_downloads_and_reads(
    client: Any, completed: str, identity: TestIdentity, s3: Any
) -> None:
    stored = s3.client().get_object(Bucket=CERTIFICATE_BUCKET, Key=f"certificates/{completed}.pdf")
    assert stored["ContentType"] == "application/pdf"

    response = await client.get(CERTIFICATE, headers=identity.headers(BUYER))

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.content == stored["Body"].read()
    text = " ".join(
        page.extract_text() for page in pypdf.PdfReader(io.BytesIO(response.content)).pages
    )
    for printed in (NAME, "30-day reset", "Peak Form Studio", COMPLETED_ON, completed):
        assert printed in text, printed
    # Rendered once: the page shows something (a blank page has one colour).
    document = pypdfium2.PdfDocument(response.content)
    image = document[0].render(scale=0.5).to_pil().convert("L")
    low, high = image.getextrema()
    assert low < high
    document.close()


async def test_the_player_shows_the_certificate_id_only_once_completed(
    client: Any, world: World, identity: TestIdentity
) -> None:
    await world.course()
    await world.entitle()
    assert await _certificate_id(client, identity) is None

    answer = await _complete_course(client, identity)

    certificate_id = await _certificate_id(client, identity)
    assert answer["courseCompletedAt"] is not None
    assert uuid.UUID(certificate_id)


async def test_completing_again_or_replaying_issues_no_second_certificate(
    client: Any, completed: str, identity: TestIdentity, db: Database, s3: Any
) -> None:
    headers = identity.headers(BUYER, name="Someone Else")
    first = (await client.get(CERTIFICATE, headers=identity.headers(BUYER))).content
    replay = await client.post(
        f"{PLAYER}/workouts/{examples.WORKOUT_A}/complete", json={"dayOffset": 2}, headers=headers
    )
    unmarked = await client.delete(
        f"{PLAYER}/workouts/{examples.WORKOUT_A}/complete?dayOffset=2", headers=headers
    )
    assert await _certificate_id(client, identity) is None  # the run is not completed now
    again = await client.post(
        f"{PLAYER}/workouts/{examples.WORKOUT_A}/complete", json={"dayOffset": 2}, headers=headers
    )

    assert (replay.json()["changed"], unmarked.json()["changed"]) == (False, True)
    assert again.json()["courseCompletedAt"] is not None
    assert [row.certificate_id for row in await _rows(db)] == [uuid.UUID(completed)]
    assert await _certificate_id(client, identity) == completed
    listed = s3.client().list_objects_v2(
        Bucket=CERTIFICATE_BUCKET, Prefix=f"certificates/{completed}"
    )
    assert listed["KeyCount"] == 1
    assert (await client.get(CERTIFICATE, headers=identity.headers(BUYER))).content == first
    finished = [e for e in await outbox_events(db) if e.type == "learning.course.completed.v1"]
    assert {e.payload.certificate_id for e in finished} == {uuid.UUID(completed)}


async def test_a_restarted_course_completed_again_gets_a_new_certificate_and_the_first_stays(
    client: Any, completed: str, identity: TestIdentity, db: Database
) -> None:
    restarted = await client.post(f"{PLAYER}/restart", headers=identity.headers(BUYER))
    assert restarted.status_code == 200
    await _complete_course(client, identity)

    second = await _certificate_id(client, identity)

    assert second != completed
    assert sorted(row.run for row in await _rows(db)) == [0, 1]
    first = await client.get(f"/public/certificates/{completed}")
    assert first.json()["status"] == "valid"


async def test_the_public_check_shows_what_is_printed_and_nothing_about_the_user(
    client: Any, completed: str
) -> None:
    response = await client.get(f"/public/certificates/{completed}")

    assert response.status_code == 200
    assert response.json() == {
        "certificateId": completed,
        "learnerName": NAME,
        "courseName": "30-day reset",
        "organizationName": "Peak Form Studio",
        "organizationLogoUrl": "https://cdn.example.com/peak-form.png",
        "completedOn": COMPLETED_ON,
        "status": "valid",
    }
    assert BUYER not in response.text


async def test_a_revoked_entitlement_revokes_its_certificate_for_good(
    client: Any, completed: str, world: World, identity: TestIdentity
) -> None:
    await world.entitle(status="revoked", revoked_at=datetime(2025, 3, 4, tzinfo=UTC))

    checked = await client.get(f"/public/certificates/{completed}")
    download = await client.get(CERTIFICATE, headers=identity.headers(BUYER))
    assert checked.json()["status"] == "revoked"
    assert (download.status_code, download.json()["code"]) == (403, "ENTITLEMENT_REVOKED")

    await world.entitle(status="active")  # bought again: access is back, the certificate is not
    download = await client.get(CERTIFICATE, headers=identity.headers(BUYER))
    assert (download.status_code, download.json()["code"]) == (403, "CERTIFICATE_REVOKED")
    assert (await client.get(f"/public/certificates/{completed}")).json()["status"] == "revoked"


async def test_before_completion_the_download_is_404_certificate_not_found(
    client: Any, world: World, identity: TestIdentity
) -> None:
    await world.course()
    await world.entitle()

    response = await client.get(CERTIFICATE, headers=identity.headers(BUYER))

    assert (response.status_code, response.json()["code"]) == (404, "CERTIFICATE_NOT_FOUND")


async def test_another_user_or_no_token_cannot_download_it(
    client: Any, completed: str, world: World, identity: TestIdentity
) -> None:
    await world.entitle(user_id=OTHER_BUYER)  # owns the course, completed nothing
    stranger = await client.get(CERTIFICATE, headers=identity.headers("user_stranger"))
    other = await client.get(CERTIFICATE, headers=identity.headers(OTHER_BUYER))
    anonymous = await client.get(CERTIFICATE)

    assert (stranger.status_code, stranger.json()["code"]) == (404, "COURSE_NOT_OWNED")
    assert (other.status_code, other.json()["code"]) == (404, "CERTIFICATE_NOT_FOUND")
    assert (anonymous.status_code, anonymous.json()["code"]) == (401, "MISSING_TOKEN")


@pytest.mark.parametrize(
    "certificate_id",
    [
        str(uuid.uuid4()),
        "not-a-uuid",
        "..%2F..%2Fetc%2Fpasswd",
        "%00",
        "x" * 5000,
        "' OR 1=1 --",
        "%F0%9F%92%A5",
        "{00000000-0000-0000-0000-000000000000}",
    ],
)
async def test_an_unknown_or_malformed_public_id_is_404(client: Any, certificate_id: str) -> None:
    response = await client.get(f"/public/certificates/{certificate_id}")

    # An encoded slash makes another path, which no route serves: a plain 404.
    expected = "NOT_FOUND" if "%2F" in certificate_id else "CERTIFICATE_NOT_FOUND"
    assert (response.status_code, response.json()["code"]) == (404, expected)


@pytest.mark.parametrize("course_id", ["not-a-uuid", "..%2F..", "%00", "x" * 5000])
async def test_hostile_course_ids_on_the_download_are_refused_without_a_5xx(
    client: Any, identity: TestIdentity, course_id: str
) -> None:
    response = await client.get(
        f"/me/courses/{course_id}/certificate", headers=identity.headers(BUYER)
    )

    assert 400 <= response.status_code < 500
