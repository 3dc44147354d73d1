"""``GET /public/courses/:id``: anonymous, cacheable (ETag + Cache-Control, 304 on a match)."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Request, Response, get
from litestar.datastructures import State
from litestar.params import FromPath
from litestar.status_codes import HTTP_200_OK, HTTP_304_NOT_MODIFIED

from coursemesh.catalog.app.storefront_cache import StorefrontCache, storefront_page

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
) -> Response[bytes]:
    # No dependencies on purpose: two or more are resolved through an anyio task group, a
    # quarter of the cost of a request answered from the cache.
    state = request.app.state
    page = await storefront_page(state.db, storefront_cache_of(state), course_id)
    max_age = request.app.state.settings.storefront_max_age_seconds
    headers = {"ETag": page.etag, "Cache-Control": f"public, max-age={max_age}"}
    if etag_matches(request.headers.get("if-none-match"), page.etag):
        return Response(b"", status_code=HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(
        page.body, status_code=HTTP_200_OK, headers=headers, media_type="application/json"
    )
