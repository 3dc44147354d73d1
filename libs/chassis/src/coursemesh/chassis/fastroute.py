"""One declaration of a fast route's inputs: its run-time validation and its OpenAPI.

The busiest handlers take only ``request`` (no declared parameters, no ``data``: Litestar's
signature model, its kwargs extraction and its dependency resolution cost more than such a
route's own work). What they read is still declared, once, in Litestar's own vocabulary, and a
:class:`FastRoute` turns that declaration into

- the validation the handler calls: the same status and the same problem+json body
  (``VALIDATION_FAILED`` with ``errors[].path/message/source``, ``MALFORMED_JSON``) as Litestar
  gives for the same parameters and body declared as ordinary handler arguments;
- the route's OpenAPI: the parameters and the request body the handler no longer declares.

Parameters are the fields of a msgspec Struct annotated as a handler's arguments would be::

    class TimeZone(msgspec.Struct, frozen=True, kw_only=True):
        tz: Annotated[str | None, QueryParameter(name="tz", max_length=64)] = None
        x_timezone: Annotated[str | None, HeaderParameter(name="X-Timezone", max_length=64)] = None

    PLAYER = FastRoute(params=TimeZone)

    @get("/me/courses/{course_id:uuid}", **PLAYER.route_options())
    async def open_course(request: Request[Any, Any, Any]) -> EncodedJson:
        zone = PLAYER.params(request)  # a TimeZone, checked; or the 400 Litestar would give
        ...

A body is a Struct decoded from JSON (strictly, as a declared ``data`` is at the service's edge,
``chassis.edge``), for a ``POST`` that reads its body itself::

    HANDSHAKE = FastRoute(body=HandshakeRequest)

    @post("/sync/handshake", **HANDSHAKE.route_options())
    async def handshake(request: Request[Any, Any, Any]) -> EncodedJson:
        data = await HANDSHAKE.body(request)  # or HANDSHAKE.decode(raw) on bytes already read

A route may declare both (``FastRoute(params=..., body=...)``). ``route_options()`` gives the
route decorator's ``operation_class`` (documenting the parameters; pass ``operation_class=`` a
subclass of ``Operation`` to extend one of your own) and ``dependencies`` (one that documents
the body; the handler never asks for it, so it is never resolved; merge it with the route's own
dependencies, if any).

Supported parameters: query and header parameters of ``str``, ``int``, ``float``, ``bool``,
``uuid.UUID``, ``date``, ``datetime``, ``Literal[...]``, optionally ``| None``, with Litestar's
constraints (``gt``, ``ge``, ``lt``, ``le``, ``multiple_of``, ``min_length``, ``max_length``,
``pattern``) and ``description``. A plain field (no ``QueryParameter``) is a query parameter of
that name, as for a handler argument. Everything a request needs is built at declaration time:
a request converts one dict into one Struct, and none at all when it carries none of the
parameters (the common case) and the defaults are valid.

Errors as Litestar's: each failing parameter is ``{"key": <field name>, "message": ...,
"source": "query" | "header"}`` (so ``$.x_timezone`` for the header above, as for an ordinary
handler), in declaration order; a missing required parameter is Litestar's "Missing required
... parameter ..." refusal. For the body: ``chassis.body.decode_json_body``, the decoding every
declared body gets at a service's edge. Two differences, on purpose: an empty body is ``null``
("Expected `object`, got `null`" where Litestar names its internal ``'data'``), and a request
wrong in both its parameters and its body is refused for its parameters (the handler reads
them first), where Litestar lists both (and a service's edge refuses the body alone).
"""

from __future__ import annotations

import datetime as dt
import functools
import typing
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar, Union, get_args, get_origin
from urllib.parse import parse_qsl

import msgspec
from litestar import Request
from litestar.datastructures import URL
from litestar.di import Provide
from litestar.enums import ParamType, RequestEncodingType
from litestar.exceptions import ValidationException
from litestar.openapi.spec import OpenAPIType, Operation, Parameter, Schema
from litestar.params import Body, ParameterKwarg

from coursemesh.chassis.body import decode_json_body

P = TypeVar("P", bound=msgspec.Struct)
B = TypeVar("B")

# Litestar's constraint names that msgspec.Meta enforces (its own list, `_signature.model`).
_CONSTRAINTS = ("gt", "ge", "lt", "le", "multiple_of", "pattern", "min_length", "max_length")

_OPENAPI_TYPES: dict[Any, tuple[OpenAPIType, str | None]] = {
    str: (OpenAPIType.STRING, None),
    int: (OpenAPIType.INTEGER, None),
    float: (OpenAPIType.NUMBER, None),
    bool: (OpenAPIType.BOOLEAN, None),
    uuid.UUID: (OpenAPIType.STRING, "uuid"),
    dt.date: (OpenAPIType.STRING, "date"),
    dt.datetime: (OpenAPIType.STRING, "date-time"),
}


@functools.lru_cache(1024)
def _query_values(query_string: bytes) -> dict[str, str]:
    """Name -> value of a query string, the last one winning, blanks kept: what Litestar hands
    a non-sequence query parameter (``litestar._parsers.parse_query_string``)."""
    return dict(parse_qsl(query_string.decode("latin-1"), keep_blank_values=True, separator="&"))


@dataclass(frozen=True, slots=True)
class _Param:
    field: str  # the Struct field: the error's key, as a handler argument's name is
    alias: str  # the name on the wire (a header's lower-cased)
    wire_name: str  # as documented
    source: ParamType
    required: bool
    default: Any
    annotation: Any  # what the value is converted to, constraints included
    schema: Schema
    description: str | None


def _meta(kwarg: ParameterKwarg | None) -> msgspec.Meta | None:
    if kwarg is None:
        return None
    values = {name: getattr(kwarg, name) for name in _CONSTRAINTS}
    present = {name: value for name, value in values.items() if value is not None}
    return msgspec.Meta(**present) if present else None


def _split_optional(annotation: Any) -> tuple[list[Any], bool]:
    """The non-None members of ``annotation`` and whether None is one of them."""
    if get_origin(annotation) in (Union, _UnionType):
        members = list(get_args(annotation))
        return [m for m in members if m is not type(None)], type(None) in members
    return [annotation], False


_UnionType = type(int | None)


def _constrained(annotation: Any, meta: msgspec.Meta | None) -> Any:
    """The conversion type Litestar's signature model builds for a parameter: the constraints
    on each non-None member of a union."""
    members, optional = _split_optional(annotation)
    if meta is not None:
        members = [typing.Annotated[m, meta] for m in members]
    inner = members[0] if len(members) == 1 else Union[tuple(members)]  # noqa: UP007
    return typing.Optional[inner] if optional else inner  # noqa: UP045


def _schema(annotation: Any, kwarg: ParameterKwarg | None, default: Any) -> Schema:
    members, optional = _split_optional(annotation)
    if len(members) != 1:
        raise TypeError(f"a fast route parameter has one type (and maybe None): {annotation!r}")
    (member,) = members
    if get_origin(member) is Literal:
        values = list(get_args(member))
        kinds = {type(v) for v in values}
        base = Schema(
            type=OpenAPIType.STRING if kinds == {str} else OpenAPIType.INTEGER,
            enum=values,
        )
    elif member in _OPENAPI_TYPES:
        kind, format_ = _OPENAPI_TYPES[member]
        base = Schema(type=kind, format=format_)  # type: ignore[arg-type]
    else:
        raise TypeError(f"a fast route parameter cannot be {member!r}")
    schema = Schema(one_of=[base, Schema(type=OpenAPIType.NULL)]) if optional else base
    if kwarg is not None:
        schema.max_length = kwarg.max_length
        schema.min_length = kwarg.min_length
        schema.pattern = kwarg.pattern
        schema.multiple_of = kwarg.multiple_of
        schema.maximum = None if kwarg.le is None else float(kwarg.le)
        schema.minimum = None if kwarg.ge is None else float(kwarg.ge)
        schema.exclusive_maximum = None if kwarg.lt is None else float(kwarg.lt)
        schema.exclusive_minimum = None if kwarg.gt is None else float(kwarg.gt)
        schema.description = kwarg.description
    if default is not None and default is not msgspec.NODEFAULT:
        schema.default = default
    return schema


def _params_of(struct: type[msgspec.Struct]) -> list[_Param]:
    hints = typing.get_type_hints(struct, include_extras=True)
    params: list[_Param] = []
    for field in msgspec.structs.fields(struct):
        annotation = hints[field.name]
        kwarg: ParameterKwarg | None = None
        if get_origin(annotation) is typing.Annotated:
            annotation, *extras = get_args(annotation)
            kwarg = next((e for e in extras if isinstance(e, ParameterKwarg)), None)
        source = ParamType.QUERY if kwarg is None else kwarg.param_type
        if source not in (ParamType.QUERY, ParamType.HEADER):
            raise TypeError(f"{struct.__name__}.{field.name}: only query and header parameters")
        wire_name = (kwarg.name if kwarg is not None else None) or field.name
        _, optional = _split_optional(annotation)
        has_default = field.default is not msgspec.NODEFAULT
        default = field.default if has_default else None
        params.append(
            _Param(
                field=field.name,
                alias=wire_name.lower() if source == ParamType.HEADER else wire_name,
                wire_name=wire_name,
                source=source,
                # As Litestar decides it (`_kwargs.parameter_definition`).
                required=not has_default and not optional,
                default=default,
                annotation=_constrained(annotation, _meta(kwarg)),
                schema=_schema(annotation, kwarg, field.default),
                description=None if kwarg is None else kwarg.description,
            )
        )
    return params


def _openapi_parameter(param: _Param) -> Parameter:
    return Parameter(
        name=param.wire_name,
        param_in=param.source,
        schema=param.schema,
        description=param.description,
        required=param.required,
    )


#: The dependency through which a fast route documents its body.
BODY_DEPENDENCY = "fast_route_body"


def declared_body(dependencies: Mapping[str, Any] | None) -> Any:
    """The body type a fast route declared among a handler's ``dependencies`` (None if none)."""
    provide = (dependencies or {}).get(BODY_DEPENDENCY)
    if not isinstance(provide, Provide):
        return None
    return get_args(provide.dependency.__annotations__["data"])[0]


class FastRoute(Generic[P, B]):
    """The inputs of a handler that takes only ``request``: parameters (``params``, a Struct
    declared as above) and/or a JSON body (``body``, a Struct type), validated as Litestar
    would validate them declared the ordinary way, and documented the same way."""

    @typing.overload
    def __init__(self: FastRoute[P, None], params: type[P], *, strict: bool = True) -> None: ...

    @typing.overload
    def __init__(
        self: FastRoute[msgspec.Struct, B], *, body: type[B], strict: bool = True
    ) -> None: ...

    @typing.overload
    def __init__(
        self: FastRoute[P, B], params: type[P], *, body: type[B], strict: bool = True
    ) -> None: ...

    def __init__(
        self,
        params: type[P] | None = None,
        *,
        body: type[B] | None = None,
        strict: bool = True,
    ) -> None:
        self._params = [] if params is None else _params_of(params)
        # Litestar looks for missing headers before missing query parameters.
        self._required = sorted(
            (p for p in self._params if p.required), key=lambda p: p.source != ParamType.HEADER
        )
        self._query = [p for p in self._params if p.source == ParamType.QUERY]
        self._headers = {
            p.alias.encode("latin-1"): p for p in self._params if p.source == ParamType.HEADER
        }
        self._model: type[msgspec.Struct] | None = None
        self._defaults: P | None = None
        if params is not None:
            if not params.__struct_config__.frozen:
                raise TypeError(f"{params.__name__}: a fast route's parameters are frozen")
            # The declared Struct with the constraints enforced, so a value is the caller's type.
            self._model = msgspec.defstruct(
                f"{params.__name__}Checked",
                [
                    (p.field, p.annotation) if p.required else (p.field, p.annotation, p.default)
                    for p in self._params
                ],
                bases=(params,),
                kw_only=True,
                frozen=True,
            )
            if not self._required:
                try:  # what a request carrying none of the parameters gets: built once
                    self._defaults = self._convert({})
                except msgspec.ValidationError:
                    self._defaults = None
        self._body_type = body
        self._decoder = None if body is None else msgspec.json.Decoder(body, strict=strict)

    # --- run time ----------------------------------------------------------------------------

    def params(self, request: Request[Any, Any, Any]) -> P:
        """The declared parameters of the request, checked; a ``ValidationException`` (400
        ``VALIDATION_FAILED``) as Litestar raises it otherwise."""
        if self._model is None:
            raise TypeError("this fast route declares no parameters")
        scope = request.scope
        values: dict[str, Any] = {}
        if self._query and scope["query_string"]:
            query = _query_values(scope["query_string"])
            for param in self._query:
                if param.alias in query:
                    values[param.field] = query[param.alias]
        if self._headers:
            seen: set[bytes] = set()
            for name, value in scope["headers"]:
                header = self._headers.get(name)
                if header is not None and name not in seen:  # the first one, as Litestar
                    seen.add(name)
                    values[header.field] = value.decode("latin-1")
        if not values and self._defaults is not None:
            return self._defaults
        for param in self._required:
            if param.field not in values:
                self._missing(request, param)
        try:
            return self._convert(values)
        except msgspec.ValidationError:
            raise self._invalid(request, values) from None

    def _convert(self, values: Mapping[str, Any]) -> P:
        checked = msgspec.convert(values, self._model, strict=False, str_keys=True)
        return typing.cast(P, checked)

    def _missing(self, request: Request[Any, Any, Any], param: _Param) -> typing.NoReturn:
        raise ValidationException(
            f"Missing required {param.source.value} parameter {param.wire_name!r} "
            f"for path {_path_and_query(request)}"
        )

    def _invalid(self, request: Request[Any, Any, Any], values: dict[str, Any]) -> Exception:
        """Each failing parameter, as Litestar's signature model reports it."""
        query = _query_values(request.scope["query_string"])
        errors: list[dict[str, Any]] = []
        for param in self._params:
            try:
                msgspec.convert(
                    values.get(param.field, param.default),
                    param.annotation,
                    strict=False,
                    str_keys=True,
                )
            except msgspec.ValidationError as exc:
                message, at = _split_message(str(exc))
                key = param.field if at is None else f"{param.field}.{at}"
                if key in query:
                    source = ParamType.QUERY
                elif key in request.scope.get("path_params", {}):
                    source = ParamType.PATH
                else:
                    source = param.source
                errors.append({"message": message, "key": key, "source": source})
        return ValidationException(
            f"Validation failed for {request.method} {_path_and_query(request)}",
            extra=errors,
        )

    async def body(self, request: Request[Any, Any, Any]) -> B:
        """The request's JSON body as the declared Struct (see :meth:`decode`)."""
        return self.decode(await request.body())

    def decode(self, raw: bytes) -> B:
        """``raw`` as the declared body: 400 ``MALFORMED_JSON`` or ``VALIDATION_FAILED`` (with
        each error's JSON path) as for a declared ``data``; an empty body is ``null``."""
        if self._decoder is None:
            raise TypeError("this fast route declares no body")
        return decode_json_body(raw, self._decoder)

    # --- documentation -----------------------------------------------------------------------

    def operation_class(self, base: type[Operation] = Operation) -> type[Operation]:
        """An ``operation_class`` for the route decorator: ``base`` plus the parameters."""
        extra = [_openapi_parameter(p) for p in self._params]

        @dataclass
        class FastRouteOperation(base):  # type: ignore[valid-type,misc]
            def __post_init__(self) -> None:
                parent = getattr(super(), "__post_init__", None)
                if parent is not None:
                    parent()
                known: list[Any] = list(getattr(self, "parameters", None) or [])
                setattr(self, "parameters", [*known, *extra])  # noqa: B010

        return FastRouteOperation

    def dependencies(self) -> dict[str, Provide]:
        """A dependency that documents the body: Litestar's OpenAPI takes a route's request
        body from a dependency's ``data``; the handler never names it, so it never runs."""
        if self._body_type is None:
            return {}
        body_type = self._body_type

        async def fast_route_body(data: Any) -> None:
            """Never called: the body's declaration, for the OpenAPI document."""

        fast_route_body.__annotations__ = {
            "data": typing.Annotated[body_type, Body(media_type=RequestEncodingType.JSON)],
            "return": None,
        }
        return {BODY_DEPENDENCY: Provide(fast_route_body)}

    def route_options(self, operation_class: type[Operation] = Operation) -> dict[str, Any]:
        """``operation_class`` and ``dependencies`` for the route decorator."""
        options: dict[str, Any] = {"operation_class": self.operation_class(operation_class)}
        if self._body_type is not None:
            options["dependencies"] = self.dependencies()
        return options


def _split_message(text: str) -> tuple[str, str | None]:
    """msgspec's message and the path it names: "<message> - at `$.<path>`" (a path at the root
    of the value is named by no suffix)."""
    message, sep, at = text.rpartition(" - at `")
    if not sep or not at.endswith("`"):
        return text, None
    path = at[:-1]
    return message, (path[2:] if path.startswith("$.") else None)


def _path_and_query(request: Request[Any, Any, Any]) -> str:
    """The request's path with its query, as Litestar's refusals name it."""
    return str(URL.from_components(path=request.url.path, query=request.url.query))
