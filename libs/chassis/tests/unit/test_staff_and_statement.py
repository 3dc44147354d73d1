"""The staff check and the single-statement write against in-memory fakes of their ports."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import pytest

from coursemesh.chassis.db import SingleStatement, statement_outbox
from coursemesh.chassis.errors import Forbidden, NotFound
from coursemesh.chassis.staff import require_staff
from coursemesh.chassis.transaction import Record
from coursemesh.contracts.catalog import OrganizationUpserted

ORG = uuid.UUID("00000000-0000-4000-8000-000000000001")


class Directory:
    def __init__(self, *staff: tuple[uuid.UUID, str]) -> None:
        self.staff = set(staff)

    async def is_staff(self, organization_id: uuid.UUID, user_id: str) -> bool:
        return (organization_id, user_id) in self.staff


async def test_staff_pass_and_everyone_else_gets_a_404_by_default() -> None:
    directory = Directory((ORG, "trainer"))
    await require_staff(directory, ORG, "trainer")
    with pytest.raises(NotFound) as refused:
        await require_staff(directory, ORG, "member")
    assert refused.value.code == "NOT_FOUND"
    with pytest.raises(NotFound):
        await require_staff(directory, uuid.uuid4(), "trainer")  # staff of another org


async def test_a_use_case_chooses_its_own_refusal() -> None:
    with pytest.raises(Forbidden) as refused:
        await require_staff(Directory(), ORG, "x", refusal=Forbidden("no", code="STAFF_ONLY"))
    assert refused.value.code == "STAFF_ONLY"


class RecordingDriver:
    """Records the one statement a single-statement write runs."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[str, tuple[object, ...]]] = []
        self.fail = fail

    async def fetchrow(self, query: str, /, *args: object, timeout: float | None = None) -> Any:
        self.calls.append((query, args))
        if self.fail:
            raise RuntimeError("unique violation")
        return {"written": 1}

    async def fetch(self, query: str, /, *args: object, timeout: float | None = None) -> Any:
        raise AssertionError("not used")

    async def fetchval(
        self, query: str, /, *args: object, column: int = 0, timeout: float | None = None
    ) -> Any:
        raise AssertionError("not used")

    async def execute(self, query: str, /, *args: object, timeout: float | None = None) -> str:
        raise AssertionError("not used")

    async def executemany(
        self, command: str, args: Iterable[Sequence[object]], /, *, timeout: float | None = None
    ) -> None:
        raise AssertionError("not used")

    def is_in_transaction(self) -> bool:
        return False

    def is_closed(self) -> bool:
        return False


def created(name: str) -> OrganizationUpserted:
    return OrganizationUpserted(
        organization_id=ORG, name=name, slug=name, logo_url=None, currency="EUR"
    )


async def test_a_single_statement_passes_its_events_after_its_own_parameters() -> None:
    driver = RecordingDriver()
    write = SingleStatement(driver, notify=True)
    first = write.publish(created("a"), aggregate_id=ORG, aggregate_version=1)
    second = write.publish(created("b"), aggregate_id=ORG, aggregate_version=2)
    row: Record | None = await write.execute("SQL", "own-1", "own-2")
    assert row is not None
    [(sql, args)] = driver.calls
    assert sql == "SQL"
    assert args[:2] == ("own-1", "own-2")
    ids, types, _subjects, aggregates, versions, _bodies, _headers, notify = args[2:]
    assert ids == [first.id, second.id]
    assert types == [first.type, second.type]
    assert aggregates == [str(ORG), str(ORG)]
    assert versions == [1, 2]
    assert notify is True
    assert len(write.written) == 2  # what is published once the block ends


async def test_a_statement_that_fails_leaves_nothing_to_publish() -> None:
    write = SingleStatement(RecordingDriver(fail=True), notify=False)
    write.publish(created("a"), aggregate_id=ORG, aggregate_version=1)
    with pytest.raises(RuntimeError):
        await write.execute("SQL")
    assert write.written == []


def test_the_outbox_part_numbers_its_parameters_after_the_statements_own() -> None:
    part = statement_outbox("shop", first_param=4)
    assert "$4::uuid[]" in part.cte
    assert "$10::text[]" in part.cte  # seven columns: $4 … $10
    assert "$11::bool" in part.tail  # then the notify flag
    assert "shop_outbox" in part.tail
