"""``GET /public/courses/:id``: anonymous, cacheable (ETag + Cache-Control, 304 on a match)."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Request, get
from litestar.datastructures import State
from litestar.params import FromPath
from litestar.status_codes import HTTP_304_NOT_MODIFIED

from coursemesh.catalog.app.storefront_cache import StorefrontCache, storefront_page
from coursemesh.chassis.headers import raw_header
from coursemesh.chassis.responses import EncodedJson, EncodedResponse

CACHE_KEY = "storefront_cache"  # in ServiceContext.extras


def storefront_cache_of(state: State) -> StorefrontCache:
    cache: StorefrontCache = state.ctx.extras[CACHE_KEY]
    return cache


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 weak comparison: ``*`` or any listed tag equal to ours (``W/`` ignored)."""
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags


@get("/public/courses/{course_id:uuid}")
async def public_course(
    request: Request[Any, Any, Any], course_id: FromPath[uuid.UUID]
) -> EncodedResponse:
    # No dependencies on purpose: two or more are resolved through an anyio task group, a
    # quarter of the cost of a request answered from the cache. The 200 is sent as bytes
    # with its headers, without a Response to build.
    state = request.app.state
    page = await storefront_page(state.db, storefront_cache_of(state), course_id)
    cache_control = f"public, max-age={state.settings.storefront_max_age_seconds}"
    headers = ((b"etag", page.etag.encode()), (b"cache-control", cache_control.encode()))
    if etag_matches(raw_header(request.scope, b"if-none-match"), page.etag):
        return EncodedResponse(status=HTTP_304_NOT_MODIFIED, headers=headers)
    return EncodedJson(page.body, headers=headers)
