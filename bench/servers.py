"""The ASGI servers a benchmark can run every service and reference app under.

``uvicorn`` is what the stack runs (``coursemesh.devstack.services.uvicorn_command``); the
others are candidates measured against it in the same run. Each is configured to behave as
the services need: one process serving per replica (granian: one worker), the server's own
access log off (the app's middleware writes it), uvloop as the event loop.
"""

from __future__ import annotations

import argparse
import sys

from coursemesh.devstack.services import ServiceCommand, ServiceSpec, uvicorn_command

SERVERS = ("uvicorn", "granian")


def app_command(server: str, target: str, port: int, *, factory: bool = False) -> list[str]:
    """The argv serving ASGI ``target`` (``module:attr``) on 127.0.0.1:``port``."""
    if server == "uvicorn":
        argv = [sys.executable, "-m", "uvicorn", target, "--no-access-log"]
        argv += ["--factory"] if factory else []
    elif server == "granian":
        argv = [sys.executable, "-m", "granian", "--interface", "asgi", target]
        argv += ["--workers", "1", "--loop", "uvloop", "--no-access-log"]
        argv += ["--factory"] if factory else []
    else:
        raise ValueError(f"unknown server {server!r}; choose from {SERVERS}")
    return [*argv, "--host", "127.0.0.1", "--port", str(port)]


def service_command(server: str) -> ServiceCommand:
    """How the stack starts each replica under ``server``."""
    if server == "uvicorn":
        return uvicorn_command

    def command(spec: ServiceSpec, port: int) -> list[str]:
        return app_command(server, spec.app_factory, port, factory=True)

    return command


def add_server_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--server", choices=SERVERS, default="uvicorn", help="ASGI server of every app"
    )
