"""Answers already encoded, sent as they are: the busiest routes' responses.

A handler annotated ``-> EncodedResponse`` (or ``-> EncodedJson``) returns an ASGI app, which
Litestar sends without a ``Response`` object, header negotiation or re-encoding (a noticeable
part of a request whose body was rendered from cache). For answers whose body and extra
headers (an ETag, Cache-Control) are known as bytes; anything with cookies or a body still to
encode uses ``Response``.
"""

from __future__ import annotations

from litestar.types import Receive, Scope, Send

_CONTENT_TYPE = (b"content-type", b"application/json")
_BODYLESS = frozenset({204, 304})


class EncodedResponse:
    """``status``, ``headers`` (lower-case names and values, as bytes) and ``body``; a
    Content-Length unless the status has no body."""

    __slots__ = ("body", "headers", "status")

    def __init__(
        self, body: bytes = b"", status: int = 200, headers: tuple[tuple[bytes, bytes], ...] = ()
    ) -> None:
        self.body = body
        self.status = status
        self.headers = headers

    def _all_headers(self) -> list[tuple[bytes, bytes]]:
        if self.status in _BODYLESS:
            return list(self.headers)
        return [(b"content-length", b"%d" % len(self.body)), *self.headers]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status, "headers": self._all_headers()}
        )
        await send({"type": "http.response.body", "body": self.body, "more_body": False})


class EncodedJson(EncodedResponse):
    """``body`` (JSON bytes) with ``Content-Type: application/json``."""

    __slots__ = ()

    def _all_headers(self) -> list[tuple[bytes, bytes]]:
        return [_CONTENT_TYPE, *super()._all_headers()]
