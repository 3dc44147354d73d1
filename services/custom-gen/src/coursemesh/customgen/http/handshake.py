"""``POST /me/custom-courses/handshake``: the offline copy's sync, at every app start of every
client, hence a route that gives Litestar nothing to resolve.

Its body is declared once, as ``http.handshake_body.Handshake``, and given to a
``chassis.fastroute.FastRoute``: the route's OpenAPI request body and its refusals come from
that declaration; ``decode_handshake`` only adds a quicker way to accept a valid body.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, get_args, get_origin

import msgspec
from litestar import MediaType, Request, post
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import Operation, RequestBody

from coursemesh.chassis.auth import authenticate
from coursemesh.chassis.fastroute import FastRoute
from coursemesh.chassis.openapi import SELF_AUTHENTICATED, problems
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

HANDSHAKE = FastRoute(body=Handshake)


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
_lax = msgspec.json.Decoder(_without_patterns(Handshake))
_HEX = re.compile(r"[0-9a-f]*")
_encoder = msgspec.json.Encoder()


def decode_handshake(body: bytes) -> Sequence[HeldCopy]:
    """The held courses of a :class:`Handshake` body, refused exactly as ``Handshake`` refuses.

    A body the lax decoding accepts and whose checksums are all 32 lowercase hex digits is
    what ``Handshake`` accepts, with the same values. Anything else is decoded again by the
    route's declaration, so a refusal is the one it gives (message, and the first error's path).
    """
    try:
        courses: Sequence[HeldCopy] = _lax.decode(body or b"null").courses
    except (msgspec.DecodeError, UnicodeDecodeError):
        pass
    else:
        checksums = [c.checksum for c in courses]
        if set(map(len, checksums)) <= {32} and _HEX.fullmatch("".join(checksums)):
            return courses
    return HANDSHAKE.decode(body).courses


@dataclass
class HandshakeOperation(Operation):
    """The route's operation, with an example of the request body its declaration documents."""

    def __post_init__(self) -> None:
        if isinstance(self.request_body, RequestBody):
            self.request_body.content[MediaType.JSON].examples = handshake_request_example()


# No guard (a guard runs on a copy of the route handler, made per request), no dependency that
# runs, no declared ``data`` (decoded once, straight into Structs, by ``decode_handshake``, with
# the refusals of the declaration). The caller is verified first, as the ``authenticated``
# guard would, then the body.
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
    **HANDSHAKE.route_options(HandshakeOperation),
    opt={**SELF_AUTHENTICATED, **problems((413, "HANDSHAKE_TOO_LARGE"))},
)
async def handshake(request: Request[Any, Any, Any]) -> EncodedJson:
    principal = await authenticate(request)
    held = decode_handshake(await request.body())
    rt = runtime(request)
    result = await queries.handshake(
        rt.handshakes, principal.sub, held, rt.settings.handshake_max_courses
    )
    return EncodedJson(_encoder.encode(result))
