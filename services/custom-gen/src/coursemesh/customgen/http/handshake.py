"""``POST /me/custom-courses/handshake``: the offline copy's sync, at every app start of every
client, hence a route that gives Litestar nothing to resolve.

Its body is declared once, as ``http.handshake_body.Handshake``: the decoding
(``decode_handshake``), the OpenAPI request body (``HandshakeOperation``) and its example are
all derived from it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, get_args, get_origin

import msgspec
from litestar import MediaType, Request, post
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import OpenAPIFormat, OpenAPIType, Operation, RequestBody, Schema
from litestar.openapi.spec import OpenAPIMediaType as Content

from coursemesh.chassis.auth import authenticate
from coursemesh.chassis.body import decode_json_body
from coursemesh.chassis.responses import EncodedJson
from coursemesh.customgen.app import queries
from coursemesh.customgen.app.views import HandshakeResult
from coursemesh.customgen.bootstrap import runtime
from coursemesh.customgen.domain.handshake import HeldCopy
from coursemesh.customgen.http.examples import handshake_examples, handshake_request_example
from coursemesh.customgen.http.handshake_body import (
    CHECKSUM_PATTERN,
    HANDSHAKE_CEILING,
    Handshake,
    HeldCourse,
)

__all__ = ["CHECKSUM_PATTERN", "HANDSHAKE_CEILING", "Handshake", "HeldCourse", "handshake"]


def _without_patterns(kind: Any) -> Any:
    """``kind`` with its string patterns left out: Structs are rebuilt with the same fields,
    names and configuration, and every other constraint is kept."""
    if get_origin(kind) is Annotated:
        inner, *metas = get_args(kind)
        kept = []
        for meta in metas:
            if isinstance(meta, msgspec.Meta) and meta.pattern is not None:
                # The patterns of this body constrain nothing else (checked at import).
                assert meta == msgspec.Meta(pattern=meta.pattern), meta
                continue
            kept.append(meta)
        lax = _without_patterns(inner)
        return Annotated[(lax, *kept)] if kept else lax
    if get_origin(kind) is list:
        (item,) = get_args(kind)
        return list[_without_patterns(item)]  # type: ignore[misc]
    if isinstance(kind, type) and issubclass(kind, msgspec.Struct):
        fields = msgspec.structs.fields(kind)
        config = kind.__struct_config__
        return msgspec.defstruct(
            f"_Lax{kind.__name__}",
            [
                (f.name, _without_patterns(f.type))
                if f.required
                else (f.name, _without_patterns(f.type), f.default)
                for f in fields
            ],
            frozen=config.frozen,
            forbid_unknown_fields=config.forbid_unknown_fields,
            rename={f.name: f.encode_name for f in fields},
        )
    return kind


# ``Handshake`` without the checksum pattern, which msgspec checks with one Python regex call
# per checksum, the larger part of decoding a typical body: the checksums are checked
# together after it.
_strict = msgspec.json.Decoder(Handshake)
_lax = msgspec.json.Decoder(_without_patterns(Handshake))
_HEX = re.compile(r"[0-9a-f]*")
_encoder = msgspec.json.Encoder()


def decode_handshake(body: bytes) -> Sequence[HeldCopy]:
    """The held courses of a :class:`Handshake` body, refused exactly as ``Handshake`` refuses.

    A body the lax decoding accepts and whose checksums are all 32 lowercase hex digits is
    what ``Handshake`` accepts, with the same values. Anything else is decoded again as
    ``Handshake``, so a refusal is the one it gives (message, and the first error's path).
    """
    try:
        courses: Sequence[HeldCopy] = _lax.decode(body or b"null").courses
    except (msgspec.DecodeError, UnicodeDecodeError):
        pass
    else:
        checksums = [c.checksum for c in courses]
        if set(map(len, checksums)) <= {32} and _HEX.fullmatch("".join(checksums)):
            return courses
    return decode_json_body(body, _strict).courses


def _schema(node: dict[str, Any], defs: dict[str, Any]) -> Schema:
    """A JSON Schema node of msgspec's as an OpenAPI schema (references inlined)."""
    ref = node.get("$ref")
    if ref is not None:
        return _schema(defs[ref.rpartition("/")[2]], defs)
    properties = node.get("properties")
    items = node.get("items")
    return Schema(
        type=OpenAPIType(node["type"]) if "type" in node else None,
        format=OpenAPIFormat(node["format"]) if "format" in node else None,
        pattern=node.get("pattern"),
        properties={k: _schema(v, defs) for k, v in properties.items()} if properties else None,
        required=node.get("required"),
        additional_properties=node.get("additionalProperties"),
        items=_schema(items, defs) if items is not None else None,
        min_items=node.get("minItems"),
        max_items=node.get("maxItems"),
    )


def request_body_schema() -> Schema:
    (root,), components = msgspec.json.schema_components([Handshake])
    return _schema(root, components)


@dataclass
class HandshakeOperation(Operation):
    """Documents the request body the handler decodes itself (it declares no ``data``)."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            content={
                MediaType.JSON: Content(
                    schema=request_body_schema(), examples=handshake_request_example()
                )
            },
            required=True,
        )


# No guard (a guard runs on a copy of the route handler, made per request), no dependencies,
# no declared ``data`` (decoded once, straight into Structs, by ``decode_handshake``, with the
# same refusals; ``HandshakeOperation`` documents it). The caller is verified first, as the
# ``authenticated`` guard would, then the body.
@post(
    "/me/custom-courses/handshake",
    status_code=200,
    description="Compare the client's offline copies `{courses: [{id, checksum}]}` with the "
    "stored checksums: what changed, what is missing, what to remove.",
    responses={
        200: ResponseSpec(
            HandshakeResult,
            description="What the client must sync",
            # Made-up examples would give ``data`` (msgspec.Raw) no value: not JSON at all.
            generate_examples=False,
            examples=handshake_examples(),
        )
    },
    operation_class=HandshakeOperation,
)
async def handshake(request: Request[Any, Any, Any]) -> EncodedJson:
    principal = await authenticate(request)
    held = decode_handshake(await request.body())
    rt = runtime(request)
    result = await queries.handshake(
        rt.handshakes, principal.sub, held, rt.settings.handshake_max_courses
    )
    return EncodedJson(_encoder.encode(result))
