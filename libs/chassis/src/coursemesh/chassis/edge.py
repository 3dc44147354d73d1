"""The request body, checked at the edge before any decoder or handler sees it.

Every service mounts :class:`BodyGuard` outermost. For a request that carries a body it:

- reads the body once, refusing it past ``max_body_bytes`` (413 ``PAYLOAD_TOO_LARGE``);
- refuses JSON nested deeper than ``max_depth`` (400 ``JSON_TOO_DEEP``) *before* decoding:
  a few hundred kilobytes of ``[[[[…`` would otherwise exhaust the decoder's recursion;
- refuses text that is not UTF-8, or that holds U+0000 (PostgreSQL stores neither), with
  400 ``VALIDATION_FAILED`` naming the field (``$.name``), or ``MALFORMED_JSON`` when the
  bytes are not JSON at all;
- decodes a declared ``data: JSONBody[T]`` strictly (no ``"100"`` or ``1e2`` for an integer,
  no ``"true"`` for a boolean), the one decode the handler then receives.

Routes that read their body themselves (signed webhooks, the sync handshake) get the same
checks on the raw bytes and decode with their own strict decoders
(:func:`coursemesh.chassis.body.decode_json_body`). Form posts are left to their handlers.
"""

from __future__ import annotations

import itertools
import json
import operator
from typing import Any

import msgspec
from litestar.exceptions import HTTPException, ValidationException
from litestar.handlers import HTTPRouteHandler
from litestar.types import ASGIApp, Receive, ReceiveMessage, Scope, Send
from litestar.utils.scope.state import ScopeState

from coursemesh.chassis.body import decode_json_body
from coursemesh.chassis.errors import BadRequest

#: Deepest JSON nesting a body may have; every documented body is a handful of levels deep.
MAX_JSON_DEPTH = 32

_BRACKETS = b"[]{}"
# Everything but quotes and brackets, deleted before strings are told apart: what is left of a
# body is short, whatever its text.
_NOT_MARKS = bytes(c for c in range(256) if c not in b'"[]{}')
# Openers become 2 and closers 0: after k brackets, (running sum - k) is the depth, and the
# whole scan runs in C (accumulate, map, count, max).
_AS_STEP = bytes.maketrans(_BRACKETS, b"\x02\x00\x02\x00")
_NUL_ESCAPE = b"\\u0000"
_FORM_TYPES = (b"application/x-www-form-urlencoded", b"multipart/form-data")


def _brackets_outside_strings(body: bytes) -> bytes:
    """The brackets of ``body`` that are not inside strings, as steps (see ``_AS_STEP``).

    Escaped backslashes and quotes are removed first (in one left-to-right pass each, as a
    JSON parser reads them), so every remaining quote opens or closes a string. Then only quotes
    and brackets are kept, and two adjacent quotes dropped: no bracket lay between them, and a
    bracket is inside a string exactly when an odd number of quotes precede it, which dropping a
    pair does not change."""
    if b"\\" in body:  # most bodies have no escapes: spare the two copies
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    marks = body.translate(None, _NOT_MARKS).replace(b'""', b"")
    return b"".join(marks.split(b'"')[::2]).translate(_AS_STEP)


def json_depth(body: bytes) -> int:
    """How deeply ``body`` nests arrays and objects, ignoring brackets inside strings."""
    return _deepest(_brackets_outside_strings(body))


def exceeds_depth(body: bytes, limit: int) -> bool:
    # Fewer opening brackets than the limit cannot nest past it: the common case costs two
    # counts in C.
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    steps = _brackets_outside_strings(body)
    if b"\x02" * (limit + 1) in steps:  # a run of openers: the usual hostile body, found fast
        return True
    return _deepest(steps) > limit


def _deepest(steps: bytes) -> int:
    deepest: int = max(
        map(operator.sub, itertools.accumulate(steps), itertools.count(1)), default=0
    )
    return deepest


def text_errors(body: bytes) -> list[dict[str, str]] | None:
    """The fields of a JSON ``body`` whose text PostgreSQL could not store (not UTF-8, or
    holding U+0000), as validation errors; ``None`` when there are none. Raises
    :class:`ValueError` when ``body`` is not JSON."""
    try:
        body.decode("utf-8")
        if _NUL_ESCAPE not in body.replace(b"\\\\", b""):
            return None
    except UnicodeDecodeError:
        pass
    # The rare refusal: find the fields, with a parser that keeps undecodable bytes as lone
    # surrogates instead of failing on them.
    document = json.loads(body.decode("utf-8", "surrogateescape"))
    errors: list[dict[str, str]] = []
    for path, text in _strings(document, "$"):
        if "\x00" in text:
            errors.append({"path": path, "message": "Text must not contain U+0000"})
        elif not _is_utf8(text):
            errors.append({"path": path, "message": "Text must be valid UTF-8"})
    return errors


def _strings(value: Any, path: str) -> Any:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            named = f"{path}.{_printable(key)}"
            yield named, key
            yield from _strings(item, named)


def _printable(key: str) -> str:
    """``key`` as text an answer can carry: undecodable bytes as ``\\xff``."""
    return key.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class BodyGuard:
    """ASGI middleware applying the checks above to every request with a body."""

    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, max_depth: int = MAX_JSON_DEPTH
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_depth = max_depth
        self._decoders: dict[int, msgspec.json.Decoder[Any] | None] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _may_have_body(scope):  # type: ignore[comparison-overlap]
            await self.app(scope, receive, send)
            return
        body, tail = await self._read(receive)
        if body and not _is_form(scope):
            self._check(scope, body)
        delivered = False

        async def replay() -> ReceiveMessage:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive() if tail is None else tail

        await self.app(scope, replay, send)

    async def _read(self, receive: Receive) -> tuple[bytes, ReceiveMessage | None]:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                # The client went away mid-body: hand the handler what came, then this.
                return b"".join(chunks), message
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise HTTPException(status_code=413, detail="The request body is too large")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks), None

    def _check(self, scope: Scope, body: bytes) -> None:
        if exceeds_depth(body, self.max_depth):
            raise BadRequest(
                f"The request body nests deeper than {self.max_depth} levels",
                code="JSON_TOO_DEEP",
            )
        try:
            errors = text_errors(body)
        except ValueError:
            errors = None  # not JSON: the decoder below (or the handler's) says so
        if errors:
            raise ValidationException(
                "The request body is invalid",
                extra=[
                    {"key": e["path"], "message": e["message"], "source": "body"} for e in errors
                ],
            )
        decoder = self._decoder(scope.get("route_handler"))
        if decoder is not None:
            ScopeState.from_scope(scope).json = decode_json_body(body, decoder)

    def _decoder(self, handler: Any) -> msgspec.json.Decoder[Any] | None:
        if not isinstance(handler, HTTPRouteHandler):
            return None
        key = id(handler)
        if key not in self._decoders:
            data = handler.parsed_fn_signature.parameters.get("data")
            self._decoders[key] = (
                None if data is None else msgspec.json.Decoder(data.annotation, strict=True)
            )
        return self._decoders[key]


def _may_have_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return value != b"0"
        if name == b"transfer-encoding":
            return True
    return False


def _is_form(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return value.lower().startswith(_FORM_TYPES)
    return False
