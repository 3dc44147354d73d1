"""DNS and HTTP for the sender. The request goes to the address the SSRF check accepted (no
second lookup a hostile DNS server could answer differently), with the URL's host in the Host
header and, for https, in TLS's SNI and certificate check. Redirects are never followed."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from urllib.parse import urlsplit, urlunsplit

import httpx

from coursemesh.integrations.app.ports import SendResult
from coursemesh.integrations.domain.ssrf import IPAddress

_EXCERPT_BYTES = 1024


class SystemResolver:
    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        seen: list[IPAddress] = []
        for info in infos:
            address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
            if address not in seen:
                seen.append(address)
        return seen


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: the schedule decides


class HttpxSender:
    def __init__(self) -> None:
        self._client = httpx.AsyncClient(follow_redirects=False, trust_env=False)

    async def send(
        self, url: str, address: IPAddress, headers: dict[str, str], body: str, timeout: float
    ) -> SendResult:
        parts = urlsplit(url)
        host = parts.hostname or ""
        literal = f"[{address}]" if address.version == 6 else str(address)
        netloc = f"{literal}:{parts.port}" if parts.port else literal
        direct = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
        sent_headers = {**headers, "host": parts.netloc.rsplit("@", 1)[-1]}
        extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
        started = time.monotonic()
        try:
            async with self._client.stream(
                "POST",
                direct,
                content=body.encode(),
                headers=sent_headers,
                timeout=timeout,
                extensions=extensions,
            ) as response:
                excerpt = b""
                async for chunk in response.aiter_bytes():
                    excerpt += chunk
                    if len(excerpt) >= _EXCERPT_BYTES:
                        break
            latency = int((time.monotonic() - started) * 1000)
            return SendResult(
                status=response.status_code,
                latency_ms=latency,
                excerpt=excerpt[:_EXCERPT_BYTES].decode("utf-8", "replace") or None,
                retry_after=_retry_after(response),
                error=(
                    f"redirect to {response.headers.get('location', '?')} not followed"
                    if response.is_redirect
                    else None
                ),
            )
        except httpx.TimeoutException:
            latency = int((time.monotonic() - started) * 1000)
            return SendResult(status=None, latency_ms=latency, error="timeout")
        except httpx.HTTPError as exc:
            latency = int((time.monotonic() - started) * 1000)
            return SendResult(status=None, latency_ms=latency, error=f"connection: {exc}")

    async def close(self) -> None:
        await self._client.aclose()
