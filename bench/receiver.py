"""A webhook receiver for benchmarks, in its own process: answers every POST with 204 at once
and counts distinct ``webhook-id`` values; ``GET /stats`` answers the counts as JSON.

    python -m bench.receiver --port 0     # prints {"port": N} once listening

It verifies no signature (the integration and e2e tests do, with ``standardwebhooks``): the
point is the sender's rate, not the receiver's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time


class Counts:
    def __init__(self) -> None:
        self.requests = 0
        self.ids: set[str] = set()
        self.first: float | None = None
        self.last: float | None = None

    def as_json(self) -> bytes:
        return json.dumps(
            {
                "requests": self.requests,
                "unique": len(self.ids),
                "first": self.first,
                "last": self.last,
            }
        ).encode()


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, dict[str, str]]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method = lines[0].split(" ", 1)[0]
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    if length:
        await reader.readexactly(length)
    return method, headers


def _response(status: str, body: bytes = b"") -> bytes:
    head = f"HTTP/1.1 {status}\r\ncontent-length: {len(body)}\r\n"
    if body:
        head += "content-type: application/json\r\n"
    return head.encode() + b"\r\n" + body


async def serve(port: int) -> None:
    counts = Counts()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                method, headers = await _read_request(reader)
                if method == "GET":
                    writer.write(_response("200 OK", counts.as_json()))
                else:
                    now = time.monotonic()
                    counts.requests += 1
                    counts.ids.add(headers.get("webhook-id", ""))
                    counts.first = counts.first or now
                    counts.last = now
                    writer.write(_response("204 No Content"))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    print(json.dumps({"port": server.sockets[0].getsockname()[1]}), flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    asyncio.run(serve(parser.parse_args().port))


if __name__ == "__main__":
    main()
