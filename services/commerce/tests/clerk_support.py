"""A local HTTP server speaking the part of Clerk's Backend API commerce uses:
``GET /v1/users/{user_id}`` with ``Authorization: Bearer <secret key>``."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

SECRET_KEY = "sk_test_commerce_clerk"


def clerk_user(user_id: str, primary: str, *others: str) -> dict[str, Any]:
    """A Clerk user object (the fields commerce reads, and a few it does not): the primary
    address is not the first in the list, as Clerk does not promise an order."""
    addresses = [
        {
            "id": f"idn_other{i}",
            "object": "email_address",
            "email_address": other,
            "verification": {"status": "verified"},
        }
        for i, other in enumerate(others)
    ]
    addresses.append(
        {
            "id": "idn_primary",
            "object": "email_address",
            "email_address": primary,
            "verification": {"status": "verified"},
        }
    )
    return {
        "id": user_id,
        "object": "user",
        "primary_email_address_id": "idn_primary",
        "email_addresses": addresses,
        "first_name": "Ada",
    }


@dataclass
class FakeClerk:
    base_url: str = ""
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: answers to give first, whatever the request (status codes), then the real answer
    failures: list[int] = field(default_factory=list)
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, auth)


@contextmanager
def fake_clerk() -> Iterator[FakeClerk]:
    clerk = FakeClerk()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            clerk.requests.append((self.path, self.headers.get("authorization")))
            if clerk.failures:
                self._answer(clerk.failures.pop(0), {"errors": [{"code": "internal"}]})
            elif self.headers.get("authorization") != f"Bearer {SECRET_KEY}":
                self._answer(401, {"errors": [{"code": "authentication_invalid"}]})
            elif self.path.startswith("/v1/users?"):
                # the user list, filtered by address as Clerk does (case-insensitive)
                wanted = {a.lower() for a in parse_qs(urlsplit(self.path).query)["email_address"]}
                self._answer(
                    200,
                    [
                        u
                        for u in clerk.users.values()
                        if {e["email_address"].lower() for e in u["email_addresses"]} & wanted
                    ],
                )
            elif not self.path.startswith("/v1/users/"):
                self._answer(404, {"errors": [{"code": "resource_not_found"}]})
            else:
                user = clerk.users.get(unquote(self.path.removeprefix("/v1/users/")))
                if user is None:
                    self._answer(404, {"errors": [{"code": "resource_not_found"}]})
                else:
                    self._answer(200, user)

        def _answer(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    clerk.base_url = f"http://127.0.0.1:{server.server_port}"
    try:
        yield clerk
    finally:
        server.shutdown()
        server.server_close()
