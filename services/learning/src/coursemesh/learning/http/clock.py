"""The ``clock`` dependency: now (from the app's injectable clock) and the buyer's time zone."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

from litestar.datastructures import State
from litestar.params import HeaderParameter, QueryParameter

from coursemesh.learning.app.player import Clock
from coursemesh.learning.domain.player import parse_time_zone

Now = Callable[[], datetime]


def system_now() -> datetime:
    return datetime.now(UTC)


TimeZoneQuery = Annotated[str | None, QueryParameter(name="tz", max_length=64)]
TimeZoneHeader = Annotated[str | None, HeaderParameter(name="X-Timezone", max_length=64)]


def provide_clock(
    state: State, tz: TimeZoneQuery = None, x_timezone: TimeZoneHeader = None
) -> Clock:
    return clock_of(state, tz, x_timezone)


def clock_of(state: State, tz: str | None, x_timezone: str | None) -> Clock:
    """The query parameter wins over the header; UTC when neither is given."""
    now: Now = state.now
    return Clock(now=now(), zone=parse_time_zone(tz if tz is not None else x_timezone))
