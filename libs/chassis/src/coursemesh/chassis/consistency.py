"""Read-your-writes across services.

Services know each other's data through projections fed by JetStream, so a projection can lag
the write it reflects. The guarantee a client gets (docs/consistency.md): once a write's
response has reached it, every later call of that client, in any service, sees the write. Three
mechanisms give it:

1. **Writes publish before they answer** (:mod:`coursemesh.chassis.publisher`): a write's events
   are in the stream when its response leaves the service.
2. **Negative answers catch up first.** An answer that says "no" (a :class:`DomainError` with
   status 403, 404, 409, 410 or 422, or an empty result a route marks with ``mark_negative``)
   is held back; the service waits until its consumers have applied every event their streams
   held when the request arrived, then runs the request once more and sends that answer.
   Positive answers are sent at once: they cost nothing extra.
3. **Consistency tokens** for present-but-stale reads: a response that published events carries
   ``Consistency-Token`` (where they landed); a request carrying tokens is answered only once
   this service has applied the events they name. A route whose whole answer is a caller's own
   list fed by another service (``opt={CONSISTENT_READ: True}``) always catches up first.

Waits are shared: per stream one task polls the durable consumer's state for every waiting
request. They are bounded in number (past ``max_waiters`` a request gets 503 at once) and in
time (past ``timeout`` a 503 ``CATCHING_UP`` with ``Retry-After``), never a wrong "no".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from litestar.types import ASGIApp, Message, Receive, Scope, Send
from litestar.utils.scope.state import ScopeState
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig
from nats.js.errors import NotFoundError

from coursemesh.chassis.errors import NEGATIVE_STATE_KEY, PROBLEM_JSON, is_negative
from coursemesh.chassis.publisher import recording_writes

log = logging.getLogger("coursemesh.consistency")

TOKEN_HEADER = "consistency-token"
#: Route ``opt`` key: the route's answer always reflects every event its service's streams held
#: when the request arrived (lists of a caller's own items that another service's events fill).
CONSISTENT_READ = "consistent_read"
_MAX_TOKEN_BYTES = 1024


class CatchUpFailed(Exception):
    """The wait could not complete: too slow, too many waiting, or the bus unreachable."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidToken(ValueError):
    pass


def format_token(positions: Mapping[str, int]) -> str:
    """``{"COMMERCE": 42}`` -> ``COMMERCE:42``; several streams comma-separated."""
    return ",".join(f"{stream}:{seq}" for stream, seq in sorted(positions.items()))


def parse_tokens(values: Iterable[str]) -> dict[str, int]:
    """Merge the tokens of ``values`` (header values, each maybe a comma-separated list):
    the highest position per stream."""
    positions: dict[str, int] = {}
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if not part:
                continue
            stream, sep, seq = part.partition(":")
            if not sep or not stream.isalnum() or not stream.isupper() or not seq.isdigit():
                raise InvalidToken(f"not a consistency token: {part[:64]!r}")
            if len(seq) > 19 or int(seq) >= 2**63:
                raise InvalidToken(f"position out of range: {part[:64]!r}")
            positions[stream] = max(positions.get(stream, 0), int(seq))
    return positions


@dataclass(eq=False)
class _Waiter:
    future: asyncio.Future[None]
    wanted: int | None  # a token's position; None: the stream's end when the wait began
    target: int | None = None


@dataclass(eq=False)
class StreamWatch:
    """Whether one durable consumer has applied its stream up to a position.

    "Applied" is read off JetStream, so it covers every replica of the service: a message is
    acked only after its effects committed. A position is reached once every message up to it
    that matches the consumer's filter is at or below the ack floor. The floor alone stops at
    the last matching message, so when it is below the position the stream itself is asked
    for the next matching message past the floor. The consumer's pending counts are not
    trusted for this: the server updates them after it acknowledges a publish, so a consumer
    may look idle while the message a client just wrote is already in the stream.
    """

    js: JetStreamContext
    stream: str
    consumer: str
    poll_min: float = 0.001
    poll_max: float = 0.01
    _waiters: list[_Waiter] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None
    _poke: asyncio.Event = field(default_factory=asyncio.Event)
    #: ``(floor, upto)``: no message matching the filter lies in ``(floor, upto]`` (a stream's
    #: past does not change, so this holds while the ack floor does not move back).
    _clear: tuple[int, int] = (0, 0)

    async def wait(self, wanted: int | None = None) -> None:
        """Return once the consumer has applied the stream up to ``wanted`` (None: up to its
        end as of this call). Raises :class:`CatchUpFailed` if the bus cannot tell."""
        waiter = _Waiter(asyncio.get_running_loop().create_future(), wanted)
        self._waiters.append(waiter)
        self._poke.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"catch-up-{self.stream}")
        try:
            await waiter.future
        finally:
            if not waiter.future.done():
                waiter.future.cancel()

    def poke(self) -> None:
        """Something was applied: look again now rather than at the next poll."""
        self._poke.set()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        """One look answers every waiter registered before it: the stream's end, read now, is
        the position the new waiters wait for; the consumer's state says how far it applied."""
        delay = self.poll_min
        while True:
            self._waiters = [w for w in self._waiters if not w.future.done()]
            if not self._waiters:
                return
            self._poke.clear()
            # Only waiters registered before these calls began may be judged by their answers.
            polled = list(self._waiters)
            try:
                applied = await self._look(polled)
            except Exception as exc:
                log.warning("catch-up on %s: no consumer state: %s", self.stream, exc)
                failure = CatchUpFailed(
                    f"the state of this service's {self.stream} consumer "
                    "cannot be read from the event bus"
                )
                for w in polled:
                    if not w.future.done():
                        w.future.set_exception(failure)
                continue
            for w in polled:
                if not w.future.done() and w.target is not None and w.target <= applied:
                    w.future.set_result(None)
            if any(not w.future.done() for w in self._waiters):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._poke.wait(), delay)
                delay = min(delay * 2, self.poll_max)
            else:
                delay = self.poll_min

    async def _look(self, polled: list[_Waiter]) -> int:
        """Give the fresh waiters their targets; return the position up to which the consumer
        has applied every message of its filter."""
        fresh = [w for w in polled if w.target is None]
        if fresh:
            consumer, stream = await asyncio.gather(
                self.js.consumer_info(self.stream, self.consumer), self.js.stream_info(self.stream)
            )
            end = int(stream.state.last_seq or 0)
            for w in fresh:  # a token from before a stream was reset counts as its end
                w.target = end if w.wanted is None else min(w.wanted, end)
        else:
            consumer = await self.js.consumer_info(self.stream, self.consumer)
        floor = int(consumer.ack_floor.stream_seq or 0) if consumer.ack_floor else 0
        highest = max(w.target or 0 for w in polled)
        if floor >= highest:
            return floor
        subjects = _filter_subjects(consumer.config)
        if not subjects:  # the whole stream: the floor is all there is
            return floor
        clear_floor, clear_upto = self._clear
        start = clear_upto + 1 if clear_floor <= floor < clear_upto else floor + 1
        if start > highest:
            return highest
        found = await asyncio.gather(*(self._next(subject, start) for subject in subjects))
        following = min((seq for seq in found if seq is not None), default=None)
        applied = highest if following is None or following > highest else following - 1
        self._clear = (floor, applied)
        return applied

    async def _next(self, subject: str, start: int) -> int | None:
        """The sequence of the first message on ``subject`` at or after ``start``, if any."""
        try:
            found = await self.js.get_msg(self.stream, seq=start, subject=subject, next=True)
        except NotFoundError:
            return None
        return int(found.seq or 0)


def _filter_subjects(config: ConsumerConfig) -> list[str]:
    if config.filter_subjects:
        return list(config.filter_subjects)
    return [config.filter_subject] if config.filter_subject else []


class CatchUp:
    """Waits for a service's consumers, bounded in time and in the number of waiting requests."""

    def __init__(
        self,
        watches: Iterable[StreamWatch],
        *,
        timeout: float = 5.0,
        max_waiters: int = 256,
    ) -> None:
        self.watches = {watch.stream: watch for watch in watches}
        self.timeout = timeout
        self.max_waiters = max_waiters
        self.waiting = 0
        self.waits_total = 0
        self.failures_total = 0

    @classmethod
    def for_consumer(
        cls, js: JetStreamContext, consumer: str, streams: Iterable[str], **limits: Any
    ) -> CatchUp:
        return cls((StreamWatch(js, stream, consumer) for stream in streams), **limits)

    async def wait(
        self,
        positions: Mapping[str, int] | None = None,
        *,
        streams: Iterable[str] | None = None,
    ) -> None:
        """Up to ``positions`` (a token's; streams this service does not consume are ignored),
        or, without them, up to the end of ``streams`` (default: all) as of now."""
        if positions is None:
            targets: dict[str, int | None] = dict.fromkeys(streams or self.watches)
        else:
            targets = {s: seq for s, seq in positions.items() if s in self.watches}
        if not targets:
            return
        if self.waiting >= self.max_waiters:
            self.failures_total += 1
            raise CatchUpFailed("too many requests are waiting for this service to catch up")
        self.waiting += 1
        self.waits_total += 1
        waits = [
            asyncio.ensure_future(self.watches[stream].wait(seq)) for stream, seq in targets.items()
        ]
        try:
            async with asyncio.timeout(self.timeout):
                await asyncio.gather(*waits)
        except TimeoutError:
            self.failures_total += 1
            raise CatchUpFailed(
                f"this service has not caught up with {', '.join(sorted(targets))} "
                f"within {self.timeout:g}s"
            ) from None
        except CatchUpFailed:
            self.failures_total += 1
            raise
        finally:
            self.waiting -= 1
            for waiting in waits:
                waiting.cancel()

    def poke(self, stream: str) -> None:
        watch = self.watches.get(stream)
        if watch is not None:
            watch.poke()

    async def close(self) -> None:
        for watch in self.watches.values():
            await watch.close()


@dataclass
class CatchUpSlot:
    """Where the running service puts its :class:`CatchUp` (built at start-up, once the bus is
    connected; None for a service that consumes nothing)."""

    catch_up: CatchUp | None = None


class ConsistencyMiddleware:
    """The HTTP face of :class:`CatchUp`: token waits, catch-up before consistent reads,
    negative answers held until caught up and the request run again, tokens on responses."""

    def __init__(self, app: ASGIApp, slot: CatchUpSlot) -> None:
        self.app = app
        self.slot = slot

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # type: ignore[comparison-overlap]
            await self.app(scope, receive, send)
            return
        with recording_writes() as written:

            async def tokened(message: Message) -> None:
                if message["type"] == "http.response.start" and written.positions:
                    token = format_token(written.positions).encode()
                    message["headers"] = [
                        *message.get("headers", ()),
                        (b"consistency-token", token),
                    ]
                await send(message)

            if self.slot.catch_up is None:
                await self.app(scope, receive, tokened)
                return
            try:
                await self._before(scope)
            except InvalidToken as exc:
                await _problem(send, 400, "INVALID_CONSISTENCY_TOKEN", str(exc))
                return
            except CatchUpFailed as exc:
                await _problem(send, 503, "CATCHING_UP", exc.detail, retry_after=1)
                return
            await self._run(scope, receive, tokened)

    async def _before(self, scope: Scope) -> None:
        catch_up = self.slot.catch_up
        assert catch_up is not None
        handler = scope.get("route_handler")
        if handler is not None and handler.opt.get(CONSISTENT_READ):
            await catch_up.wait()
            return
        values = [v.decode("latin-1") for k, v in scope["headers"] if k == b"consistency-token"]
        if values:
            if sum(map(len, values)) > _MAX_TOKEN_BYTES:
                raise InvalidToken("the consistency tokens are too long")
            await catch_up.wait(parse_tokens(values))

    async def _run(self, scope: Scope, receive: Receive, send: Send) -> None:
        catch_up = self.slot.catch_up
        assert catch_up is not None
        first = _Attempt(scope, receive, send)
        await self.app(first.scope, first.receive, first.send)
        if not first.held:
            return
        try:
            await catch_up.wait()
        except CatchUpFailed as exc:
            await _problem(send, 503, "CATCHING_UP", exc.detail, retry_after=1)
            return
        again = first.replay()
        await self.app(again.scope, again.receive, send)


class _Attempt:
    """One run of the request: records the body it reads, holds back a negative answer."""

    def __init__(self, scope: Scope, receive: Any, send: Send, *, fresh: bool = False) -> None:
        self._original = scope
        self.scope: Any = _fresh_scope(scope) if fresh else scope
        self._receive = receive
        self._send = send
        self._body: list[bytes] = []
        self._body_done = False
        self.held: list[Message] = []

    async def receive(self) -> Any:
        message = await self._receive()
        if message["type"] == "http.request":
            self._body.append(message.get("body", b""))
            self._body_done = not message.get("more_body", False)
        return message

    async def send(self, message: Message) -> None:
        if self.held or (message["type"] == "http.response.start" and is_negative(self.scope)):
            self.held.append(message)
            return
        await self._send(message)

    def replay(self) -> _Attempt:
        """The same request again, from a fresh copy of the scope as it came in: the body
        read so far is replayed, the rest read from the client."""
        body, done, receive = b"".join(self._body), self._body_done, self._receive
        replayed = False

        async def replaying() -> Any:
            nonlocal replayed
            if not replayed:
                replayed = True
                if done or body:
                    return {"type": "http.request", "body": body, "more_body": not done}
            return await receive()

        return _Attempt(self._original, replaying, self._send, fresh=True)


def _fresh_scope(scope: Scope) -> Any:
    """A copy of ``scope`` whose per-request state starts anew: Litestar caches the body, the
    parsed query, resolved dependencies and whether the response started in it."""
    state = {k: v for k, v in scope.get("state", {}).items() if k != NEGATIVE_STATE_KEY}
    for key, value in state.items():
        if isinstance(value, ScopeState):  # what routing put there stays
            fresh = ScopeState()
            fresh.exception_handlers = value.exception_handlers
            state[key] = fresh
    return {**scope, "state": state}


async def _problem(
    send: Send, status: int, code: str, detail: str, *, retry_after: int | None = None
) -> None:
    title = "Service Unavailable" if status == 503 else "Bad Request"
    body = json.dumps(
        {"type": "about:blank", "title": title, "status": status, "code": code, "detail": detail}
    ).encode()
    headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    start: Any = {"type": "http.response.start", "status": status, "headers": headers}
    await send(start)
    await send({"type": "http.response.body", "body": body, "more_body": False})
