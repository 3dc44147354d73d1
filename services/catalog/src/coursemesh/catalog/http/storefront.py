"""``GET /public/courses/:id``: anonymous, cacheable (ETag + Cache-Control, 304 on a match)."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Request, get
from litestar.params import FromPath
from litestar.status_codes import HTTP_304_NOT_MODIFIED

from coursemesh.catalog.bootstrap import runtime
from coursemesh.chassis.consistency import TOKEN_HEADER
from coursemesh.chassis.headers import raw_header
from coursemesh.chassis.openapi import problems
from coursemesh.chassis.responses import EncodedJson, EncodedResponse

_TOKEN = TOKEN_HEADER.encode()


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 weak comparison: ``*`` or any listed tag equal to ours (``W/`` ignored)."""
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags


@get(
    "/public/courses/{course_id:uuid}",
    opt=problems((404, "COURSE_NOT_AVAILABLE"), (404, "COURSE_NOT_PURCHASABLE")),
)
async def public_course(
    request: Request[Any, Any, Any], course_id: FromPath[uuid.UUID]
) -> EncodedResponse:
    # The busiest route: no dependencies (two or more are resolved through a task group), and
    # the 200 is sent as bytes with its headers, without a Response to build.
    rt = runtime(request)
    # A client that presents the Consistency-Token of a write must see that write: the
    # process's cache may not have heard yet of a commit made through another replica, so
    # such a request reads the database (the write committed before its token was given).
    fresh = raw_header(request.scope, _TOKEN) is not None
    pages = rt.storefront_cache.source if fresh else rt.storefront_cache
    page = await pages.page(course_id)
    headers = ((b"etag", page.etag.encode()), (b"cache-control", rt.storefront_cache_control))
    if etag_matches(raw_header(request.scope, b"if-none-match"), page.etag):
        return EncodedResponse(status=HTTP_304_NOT_MODIFIED, headers=headers)
    return EncodedJson(page.body, headers=headers)
