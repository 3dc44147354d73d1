"""A tiny stand-in for a coursemesh service: health endpoints plus an echo of every request.

One service (what the Stack starts per replica, like ``uvicorn --factory``)::

    python standin_app.py --name catalog --port 8001 [--prefix CATALOG_]
                          [--crash-after SECONDS] [--not-ready]

Several in one process, to keep tests cheap (one Litestar import for all)::

    python standin_app.py --multi catalog:8001 catalog:8002 commerce:8003 ...

Every response names the service and instance that answered, so tests can assert which
upstream the gateway picked.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import threading
import time
from typing import Any

import uvicorn
from litestar import Litestar, Request, get, route
from litestar.response import Response

from coursemesh.chassis.access import RequestLog, cors_config

#: The one origin the stand-ins allow cross-origin calls from (CORS).
ALLOWED_ORIGIN = "https://app.example"


def create_app(name: str, instance: str, prefix: str = "", *, ready: bool = True) -> Litestar:
    @get("/health/live", sync_to_thread=False)
    def live() -> dict[str, str]:
        return {"status": "ok", "service": name, "instance": instance}

    @get("/health/ready", sync_to_thread=False)
    def health_ready() -> Response[dict[str, str]]:
        body = {"status": "ready" if ready else "starting", "service": name}
        return Response(body, status_code=200 if ready else 503)

    @route(
        ["/", "/{path:path}"],
        http_method=["GET", "POST", "PUT", "PATCH", "DELETE"],
        status_code=200,
        request_max_body_size=None,
    )
    async def echo(request: Request[Any, Any, Any]) -> dict[str, Any]:
        body = await request.body()
        return {
            "service": name,
            "instance": instance,
            "path": request.url.path,
            "method": request.method,
            "request_id": request.headers.get("x-request-id"),
            "body_bytes": len(body),
            "env": {k: v for k, v in os.environ.items() if prefix and k.startswith(prefix)},
        }

    app = Litestar([live, health_ready, echo], cors_config=cors_config((ALLOWED_ORIGIN,)))
    # A service's edge: the request id returned, one origin allowed (as CORS_ALLOW_ORIGINS does).
    app.asgi_handler = RequestLog(app.asgi_handler, log=False)
    return app


def _server(app: Litestar, port: int) -> uvicorn.Server:
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    return uvicorn.Server(config)


async def _serve_many(specs: list[str]) -> None:
    servers = []
    for spec in specs:
        name, port = spec.rsplit(":", 1)
        servers.append(_server(create_app(name, f"{name}-{port}"), int(port)))
    await asyncio.gather(*(s.serve() for s in servers))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name")
    parser.add_argument("--port", type=int)
    parser.add_argument("--prefix", default="")
    parser.add_argument("--crash-after", type=float, default=None)
    parser.add_argument("--not-ready", action="store_true")
    parser.add_argument("--multi", nargs="+", metavar="NAME:PORT")
    parser.add_argument("--tag", help="ignored; lets tests find their processes")
    args = parser.parse_args()
    if args.multi:
        asyncio.run(_serve_many(args.multi))
        return
    instance = os.environ.get(f"{args.prefix}INSTANCE_ID") or f"{args.name}-{args.port}"
    if args.crash_after is not None:

        def crash() -> None:
            time.sleep(args.crash_after)
            print(f"standin {instance}: simulated crash", flush=True)
            os._exit(3)

        threading.Thread(target=crash, daemon=True).start()
    print(f"standin {instance}: starting on port {args.port}", flush=True)
    app = create_app(args.name, instance, args.prefix, ready=not args.not_ready)
    _server(app, args.port).run()


if __name__ == "__main__":
    main()
