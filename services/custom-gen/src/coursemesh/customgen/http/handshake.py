"""``POST /me/custom-courses/handshake``: the offline copy's sync, at every app start of every
client, hence a route that gives Litestar nothing to resolve."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from litestar import MediaType, Request, post
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import OpenAPIFormat, OpenAPIType, Operation, RequestBody, Schema
from litestar.openapi.spec import OpenAPIMediaType as Content

from coursemesh.chassis.auth import authenticate
from coursemesh.chassis.body import decode_json_body
from coursemesh.chassis.responses import EncodedJson
from coursemesh.customgen.adapters.runtime import Runtime
from coursemesh.customgen.app import queries
from coursemesh.customgen.http.examples import handshake_examples

CHECKSUM_PATTERN = r"^[0-9a-f]{32}$"
Checksum = Annotated[str, msgspec.Meta(pattern=CHECKSUM_PATTERN)]
# A hard ceiling at the edge; the configured HANDSHAKE_MAX_COURSES is checked below it.
HANDSHAKE_CEILING = 10_000


class HeldCourse(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel"):
    id: uuid.UUID
    checksum: Checksum


class Handshake(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel"):
    courses: Annotated[list[HeldCourse], msgspec.Meta(max_length=HANDSHAKE_CEILING)]


# The same body without the checksum pattern, which msgspec checks with one Python regex call
# per checksum (for 50 courses, 60% of the decoding): the checksums are checked together after.
class _LaxHeldCourse(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel"):
    id: uuid.UUID
    checksum: str


class _LaxHandshake(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel"):
    courses: Annotated[list[_LaxHeldCourse], msgspec.Meta(max_length=HANDSHAKE_CEILING)]


_strict = msgspec.json.Decoder(Handshake)
_lax = msgspec.json.Decoder(_LaxHandshake)
_HEX = re.compile(r"[0-9a-f]*")
_encoder = msgspec.json.Encoder()


def decode_handshake(body: bytes) -> Sequence[queries.HeldCopy]:
    """The held courses of a :class:`Handshake` body, refused exactly as ``Handshake`` refuses.

    A body the lax decoding accepts and whose checksums are all 32 lowercase hex digits is
    what ``Handshake`` accepts, with the same values. Anything else is decoded again as
    ``Handshake``, so a refusal is the one it gives (message, and the first error's path).
    """
    try:
        courses = _lax.decode(body or b"null").courses
    except (msgspec.DecodeError, UnicodeDecodeError):
        pass
    else:
        checksums = [c.checksum for c in courses]
        if set(map(len, checksums)) <= {32} and _HEX.fullmatch("".join(checksums)):
            return courses
    return decode_json_body(body, _strict).courses


@dataclass
class HandshakeOperation(Operation):
    """Documents the request body the handler decodes itself (it declares no ``data``)."""

    def __post_init__(self) -> None:
        held = Schema(
            type=OpenAPIType.OBJECT,
            properties={
                "id": Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.UUID),
                "checksum": Schema(type=OpenAPIType.STRING, pattern=CHECKSUM_PATTERN),
            },
            required=["id", "checksum"],
            additional_properties=False,
        )
        body = Schema(
            type=OpenAPIType.OBJECT,
            properties={
                "courses": Schema(type=OpenAPIType.ARRAY, items=held, max_items=HANDSHAKE_CEILING)
            },
            required=["courses"],
            additional_properties=False,
        )
        self.request_body = RequestBody(
            content={MediaType.JSON: Content(schema=body)}, required=True
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
            queries.HandshakeResult,
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
    runtime: Runtime = request.app.state.ctx.extras["runtime"]
    result = await queries.handshake(
        request.app.state.db, principal.sub, held, runtime.settings.handshake_max_courses
    )
    return EncodedJson(_encoder.encode(result))
