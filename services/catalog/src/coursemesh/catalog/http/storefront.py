"""``GET /public/courses/:id``: anonymous, cacheable (ETag + Cache-Control, 304 on a match)."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import msgspec
from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.status_codes import HTTP_200_OK, HTTP_304_NOT_MODIFIED

from coursemesh.catalog.app.storefront import storefront_course
from coursemesh.chassis.db import Database

_encoder = msgspec.json.Encoder()


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 weak comparison: ``*`` or any listed tag equal to ours (``W/`` ignored)."""
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags


@get("/public/courses/{course_id:uuid}")
async def public_course(
    request: Request[Any, Any, Any], db: NamedDependency[Database], course_id: FromPath[uuid.UUID]
) -> Response[bytes]:
    view = await storefront_course(db, course_id)
    body = _encoder.encode(view)
    # The tag is a digest of the exact bytes: it changes whenever anything shown changes
    # (course, curriculum, workout titles, price, branding) without tracking each version.
    etag = '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'
    max_age = request.app.state.settings.storefront_max_age_seconds
    headers = {"ETag": etag, "Cache-Control": f"public, max-age={max_age}"}
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(b"", status_code=HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(body, status_code=HTTP_200_OK, headers=headers, media_type="application/json")
