"""The ``clock`` dependency: now (from the app's injectable clock) and the buyer's time zone."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from litestar import Request
from litestar.datastructures import State
from litestar.enums import ParamType
from litestar.exceptions import ValidationException
from litestar.openapi.spec import OpenAPIType, Operation, Parameter, Schema
from litestar.params import HeaderParameter, QueryParameter

from coursemesh.chassis.headers import raw_header
from coursemesh.learning.app.player import Clock
from coursemesh.learning.domain.player import parse_time_zone

Now = Callable[[], datetime]


def system_now() -> datetime:
    return datetime.now(UTC)


MAX_ZONE_NAME = 64
TimeZoneQuery = Annotated[str | None, QueryParameter(name="tz", max_length=MAX_ZONE_NAME)]
TimeZoneHeader = Annotated[str | None, HeaderParameter(name="X-Timezone", max_length=MAX_ZONE_NAME)]


def provide_clock(
    state: State, tz: TimeZoneQuery = None, x_timezone: TimeZoneHeader = None
) -> Clock:
    return clock_of(state, tz, x_timezone)


def clock_of(state: State, tz: str | None, x_timezone: str | None) -> Clock:
    """The query parameter wins over the header; UTC when neither is given."""
    now: Now = state.now
    return Clock(now=now(), zone=parse_time_zone(tz if tz is not None else x_timezone))


def clock_of_request(request: Request[Any, Any, Any]) -> Clock:
    """:func:`clock_of` for a handler that declares no parameters (the player's hottest route):
    ``tz`` and ``X-Timezone`` read and checked exactly as Litestar does for parameters declared
    as :data:`TimeZoneQuery` and :data:`TimeZoneHeader` (the last ``tz`` wins; the same 400)."""
    tz = None
    if request.scope["query_string"]:  # most calls have none: no parsing then
        tz_values = request.query_params.getall("tz", None)
        tz = None if not tz_values else tz_values[-1]
    x_timezone = raw_header(request.scope, b"x-timezone")
    too_long = [
        {"message": f"Expected `str` of length <= {MAX_ZONE_NAME}", "key": key, "source": source}
        for key, source, value in (
            ("tz", ParamType.QUERY, tz),
            ("x_timezone", ParamType.HEADER, x_timezone),
        )
        if value is not None and len(value) > MAX_ZONE_NAME
    ]
    if too_long:
        raise ValidationException(
            f"Validation failed for {request.method} {request.url.path}", extra=too_long
        )
    return clock_of(request.app.state, tz, x_timezone)


@dataclass
class TimeZoneOperation(Operation):
    """The OpenAPI operation of a route that reads the time zone with :func:`clock_of_request`:
    it documents the two parameters that route does not declare."""

    def __post_init__(self) -> None:
        zone = Schema(type=OpenAPIType.STRING, max_length=MAX_ZONE_NAME)
        self.parameters = [
            *(self.parameters or []),
            Parameter(
                name="tz",
                param_in=ParamType.QUERY,
                schema=zone,
                description="The buyer's IANA time zone (wins over X-Timezone); UTC by default",
            ),
            Parameter(
                name="X-Timezone",
                param_in=ParamType.HEADER,
                schema=zone,
                description="The buyer's IANA time zone",
            ),
        ]
