"""Real local HTTP servers for adapter tests (stdlib, one thread each)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# (status, content type, body) for a received (path, parsed JSON body)
Responder = Callable[[str, Any], tuple[int, str, bytes]]


@contextmanager
def serve(respond: Responder) -> Iterator[tuple[str, list[Any]]]:
    """Run an HTTP server answering POSTs with ``respond``; yields its URL and what it got."""
    received: list[Any] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"null")
            received.append({"path": self.path, "body": body, "headers": dict(self.headers)})
            status, content_type, payload = respond(self.path, body)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def n8n_contract(path: str, body: Any) -> tuple[int, str, bytes]:
    """Answers like the shipped workflow: one session per requested, four sections each."""
    intake = body["intake"]
    sessions = [
        {
            "title": f"Session {n}: Written by n8n",
            "sections": [
                {"kind": "induction", "text": f"{intake['preferredName']}, close your eyes."},
                {"kind": "deepener", "text": "Ten, nine, eight, deeper and deeper."},
                {"kind": "suggestions", "text": f"Your goal: {intake['goal']}."},
                {"kind": "emergence", "text": "Five, eyes open, wide awake."},
            ],
            "reflectionPrompts": ["What did you notice?"],
        }
        for n in range(1, intake["sessionCount"] + 1)
    ]
    return 200, "application/json", json.dumps({"sessions": sessions}).encode()
