"""The buyer's clock: now (the runtime's clock) and the time zone the request names.

The zone is read from the query parameter ``tz`` or the header ``X-Timezone`` (the query
parameter wins; UTC when neither is given). Ordinary routes take it as the ``clock``
dependency; the player's fast route declares the same parameters as :class:`TimeZone` and reads
them with ``chassis.fastroute``: one declaration, the same checks and errors.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request
from litestar.params import HeaderParameter, QueryParameter

from coursemesh.learning.bootstrap import runtime
from coursemesh.learning.domain.model import Clock
from coursemesh.learning.domain.player import parse_time_zone

MAX_ZONE_NAME = 64
TimeZoneQuery = Annotated[
    str | None,
    QueryParameter(
        name="tz",
        max_length=MAX_ZONE_NAME,
        description="The buyer's IANA time zone (wins over X-Timezone); UTC by default",
    ),
]
TimeZoneHeader = Annotated[
    str | None,
    HeaderParameter(
        name="X-Timezone", max_length=MAX_ZONE_NAME, description="The buyer's IANA time zone"
    ),
]


class TimeZone(msgspec.Struct, frozen=True, kw_only=True):
    """The time zone parameters, declared once for routes that take only ``request``."""

    tz: TimeZoneQuery = None
    x_timezone: TimeZoneHeader = None


def clock_for(request: Request[Any, Any, Any], tz: str | None, x_timezone: str | None) -> Clock:
    """Now, in the zone the request names (400 ``INVALID_TIME_ZONE`` for an unknown one)."""
    now = runtime(request).clock
    return Clock(now=now(), zone=parse_time_zone(tz if tz is not None else x_timezone))


def provide_clock(
    request: Request[Any, Any, Any], tz: TimeZoneQuery = None, x_timezone: TimeZoneHeader = None
) -> Clock:
    """The ``clock`` dependency."""
    return clock_for(request, tz, x_timezone)
