"""A small closed-loop HTTP/1.1 load generator (keep-alive, N connections, fixed duration).

No wrk on a fresh machine, and httpx/aiohttp clients would measure themselves rather than the
server, so this speaks HTTP/1.1 over raw asyncio streams on uvloop. Run it in its own process:

    python -m bench.loadgen http://127.0.0.1:8080/public/courses/ID -c 32 -d 10 --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit


@dataclass
class LoadResult:
    requests: int
    errors: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    statuses: dict[str, int]


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One HTTP/1.1 response off a keep-alive connection: (status, body)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length, chunked = 0, False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        lname = name.strip().lower()
        if lname == b"content-length":
            length = int(value.strip())
        elif lname == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if not chunked:
        return status, await reader.readexactly(length) if length else b""
    body = b""
    while True:
        size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
        body += (await reader.readexactly(size + 2))[:size]
        if size == 0:
            return status, body


async def run_load(
    url: str,
    *,
    connections: int = 32,
    duration: float = 10.0,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    warmup: float = 1.0,
    bearer_tokens: list[str] | None = None,
) -> LoadResult:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or 80
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    head = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: keep-alive"]
    for name, value in (headers or {}).items():
        head.append(f"{name}: {value}")
    if body or method in {"POST", "PUT", "PATCH"}:
        head.append(f"Content-Length: {len(body)}")

    def build(extra: list[str]) -> bytes:
        return ("\r\n".join(head + extra) + "\r\n\r\n").encode() + body

    # One request per token, each used once in turn (e.g. one buyer per checkout).
    requests = [build([f"Authorization: Bearer {t}"]) for t in bearer_tokens or []] or [build([])]
    next_request = 0

    latencies: list[float] = []
    statuses: dict[str, int] = {}
    errors = 0
    loop = asyncio.get_running_loop()
    start = loop.time()
    measure_from = start + warmup
    stop_at = measure_from + duration

    async def worker() -> None:
        nonlocal errors, next_request
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while True:
                sent = loop.time()
                if sent >= stop_at:
                    return
                request = requests[next_request % len(requests)]
                next_request += 1
                writer.write(request)
                try:
                    status, _body = await read_response(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    errors += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                    continue
                done = loop.time()
                if sent >= measure_from:
                    latencies.append(done - sent)
                    key = str(status)
                    statuses[key] = statuses.get(key, 0) + 1
                    if status >= 400:
                        errors += 1
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    latencies.sort()
    n = len(latencies)
    return LoadResult(
        requests=n,
        errors=errors,
        seconds=duration,
        rps=n / duration,
        p50_ms=_percentile(latencies, 0.50) * 1000,
        p90_ms=_percentile(latencies, 0.90) * 1000,
        p99_ms=_percentile(latencies, 0.99) * 1000,
        max_ms=(latencies[-1] * 1000) if latencies else float("nan"),
        statuses=statuses,
    )


def _read_tokens(path: str | None) -> list[str] | None:
    if not path:
        return None
    with open(path, encoding="utf-8") as fh:
        return [line.strip() for line in fh if line.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("-c", "--connections", type=int, default=32)
    parser.add_argument("-d", "--duration", type=float, default=10.0)
    parser.add_argument("-m", "--method", default="GET")
    parser.add_argument("-H", "--header", action="append", default=[])
    parser.add_argument("--body", default="")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--tokens-file", help="one bearer token per line, used in turn")
    args = parser.parse_args(argv)
    headers = dict(h.split(":", 1) for h in args.header)
    headers = {k.strip(): v.strip() for k, v in headers.items()}
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    result = asyncio.run(
        run_load(
            args.url,
            connections=args.connections,
            duration=args.duration,
            method=args.method.upper(),
            headers=headers,
            body=args.body.encode(),
            bearer_tokens=_read_tokens(args.tokens_file),
        )
    )
    if args.json:
        json.dump(asdict(result), sys.stdout)
        sys.stdout.write("\n")
    else:
        print(
            f"{result.rps:,.0f} req/s  p50 {result.p50_ms:.2f} ms  p99 {result.p99_ms:.2f} ms"
            f"  errors {result.errors}  statuses {result.statuses}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
