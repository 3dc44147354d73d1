"""DNS and HTTP for the sender. The request goes to the address the SSRF check accepted (no
second lookup a hostile DNS server could answer differently), with the URL's host in the Host
header and, for https, in TLS's SNI and certificate check. Redirects are never followed."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from coursemesh.integrations.app.ports import SendResult
from coursemesh.integrations.domain.ssrf import IPAddress, Target

_EXCERPT_BYTES = 1024
# A lookup that hangs must not hold a registration request or a sender slot.
_RESOLVE_TIMEOUT_SECONDS = 5.0


class SystemResolver:
    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        """The host's addresses; :class:`OSError` (``TimeoutError`` included) when it has none."""
        async with asyncio.timeout(_RESOLVE_TIMEOUT_SECONDS):
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        seen: list[IPAddress] = []
        for info in infos:
            address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
            if address not in seen:
                seen.append(address)
        return seen


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """``Retry-After`` as seconds from ``now``: delay-seconds or an HTTP date (RFC 9110
    10.2.3); None when absent or unreadable (the published schedule decides)."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # an obsolete date form without a zone is GMT by definition
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


class HttpxSender:
    def __init__(self) -> None:
        self._client = httpx.AsyncClient(follow_redirects=False, trust_env=False)

    async def send(
        self,
        target: Target,
        address: IPAddress,
        headers: dict[str, str],
        body: str,
        timeout: float,
    ) -> SendResult:
        literal = f"[{address}]" if address.version == 6 else str(address)
        direct = f"{target.scheme}://{literal}:{target.port}{target.path}"
        sent_headers = {**headers, "host": target.host_header}
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
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
                retry_after=retry_after_seconds(
                    response.headers.get("retry-after"), datetime.now(UTC)
                ),
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
