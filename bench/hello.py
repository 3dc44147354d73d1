"""The ceiling: a bare Litestar hello-world served exactly like the services (uvicorn, 1 worker)."""

from __future__ import annotations

from litestar import Litestar, get


@get("/hello")
async def hello() -> dict[str, str]:
    return {"hello": "world"}


app = Litestar(route_handlers=[hello])
