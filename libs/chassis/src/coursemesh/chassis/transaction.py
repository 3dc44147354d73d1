"""The typed ports of data access: what a use case or an adapter may rely on, whichever
implementation is under it.

- :class:`Driver`: a database connection that runs SQL text with ``$n`` parameters (asyncpg's
  ``Connection`` is one; asyncpg ships no types, so this protocol is what the type checker sees).
- :class:`Transaction`: one transaction plus the events it publishes. Two implementations, as
  siblings, in :mod:`coursemesh.chassis.db`: ``UnitOfWork`` (a SQLAlchemy session, for Core
  statements) and ``DriverUnitOfWork`` (the driver alone, for set-based statements on hot
  paths). Both offer ``driver()``; only the first has ``session``.

Nothing here imports a database library, so use cases and their in-memory fakes can name these
types freely.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from typing import Any, Protocol

from coursemesh.contracts import Envelope, Event


class Record(Protocol):
    """One row a :class:`Driver` returns, read by column name or position."""

    def __getitem__(self, key: str | int, /) -> Any: ...

    def get(self, key: str, default: Any = None, /) -> Any: ...

    def keys(self) -> Iterator[str]: ...

    def values(self) -> Iterator[Any]: ...

    def items(self) -> Iterator[tuple[str, Any]]: ...

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[Any]: ...


class Driver(Protocol):
    """A connection running SQL text with positional ``$n`` parameters, outside SQLAlchemy."""

    async def fetch(
        self, query: str, /, *args: object, timeout: float | None = None
    ) -> list[Record]: ...

    async def fetchrow(
        self, query: str, /, *args: object, timeout: float | None = None
    ) -> Record | None: ...

    async def fetchval(
        self, query: str, /, *args: object, column: int = 0, timeout: float | None = None
    ) -> Any: ...

    async def execute(self, query: str, /, *args: object, timeout: float | None = None) -> str: ...

    async def executemany(
        self, command: str, args: Iterable[Sequence[object]], /, *, timeout: float | None = None
    ) -> None: ...

    def is_in_transaction(self) -> bool: ...

    def is_closed(self) -> bool: ...


class EventSink(Protocol):
    """What stages events for a write: a :class:`Transaction`, or a single-statement write
    (``Database.single_statement()``) whose one statement writes its outbox rows."""

    def publish(
        self, payload: Event, *, aggregate_id: str | uuid.UUID, aggregate_version: int
    ) -> Envelope[Event]: ...


class Transaction(EventSink, Protocol):
    """One transaction and the events it publishes: its state changes and its outbox rows commit
    together or not at all; once committed, the events are published."""

    def after_commit(self, callback: Callable[[], Awaitable[None] | None]) -> None:
        """Run ``callback`` once the transaction has committed (never if it rolls back)."""
        ...

    async def driver(self) -> Driver:
        """The driver connection under this transaction, its transaction begun."""
        ...
