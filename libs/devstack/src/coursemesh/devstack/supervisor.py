"""Restarting crashed children: exponential backoff, a crash-loop limit, stop-on-purpose holds.

The :class:`Supervisor` knows nothing about what a child is: each is a :class:`Unit` that can
tell its current process, start a new one (same ports, same data) and say whether the new one
is ready. ``poll()`` is called from the thread that started the children (so restarted
children keep their parent-death signal); it never blocks for long: a restart is scheduled,
then done on a later poll once its delay has passed, and readiness is checked poll by poll.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from coursemesh.devstack.ports import describe_holders, hold_port, unhold_ports
from coursemesh.devstack.process import DevstackError, ManagedProcess


@dataclass(frozen=True)
class RestartPolicy:
    """When and how often a crashed child is started again.

    The n-th consecutive restart waits ``initial_delay * 2**(n-1)`` seconds, at most
    ``max_delay``; a child that stayed up ``stable_after`` seconds starts from ``initial_delay``
    again. A child that exits again after ``max_restarts`` restarts within ``window`` seconds
    is crash-looping: the supervisor gives up (``max_restarts=0``: never restart).
    """

    initial_delay: float = 0.5
    max_delay: float = 10.0
    stable_after: float = 30.0
    max_restarts: int = 5
    window: float = 60.0

    def __post_init__(self) -> None:
        if self.initial_delay < 0 or self.max_delay < self.initial_delay:
            raise ValueError("need 0 <= initial_delay <= max_delay")
        if self.max_restarts < 0 or self.window <= 0:
            raise ValueError("need max_restarts >= 0 and window > 0")

    def delay(self, attempt: int) -> float:
        """Seconds to wait before restart number ``attempt`` (1-based) of a streak."""
        return float(min(self.max_delay, self.initial_delay * 2 ** max(0, attempt - 1)))


class CrashLoopError(DevstackError):
    """A child kept exiting: the supervisor gave up on it (message: who, how, last log lines)."""

    def __init__(self, name: str, message: str) -> None:
        self.name = name
        super().__init__(message)


class Unit(Protocol):
    """One supervised child."""

    @property
    def name(self) -> str: ...

    @property
    def process(self) -> ManagedProcess | None:
        """The current process (``None`` before the first start)."""
        ...

    def respawn(self) -> object:
        """Start a new process (the previous one has exited); do not wait for it."""
        ...

    def ready(self) -> bool:
        """The current process answers on its ports (and owns them). Never raises."""
        ...

    @property
    def claimed_ports(self) -> list[int]:
        """Ports to keep held (bound, unusable by others) while a restart waits."""
        ...


@dataclass
class RestartRecord:
    """One restart, for logs, ``stack.json`` and tests."""

    name: str
    attempt: int
    reason: str
    delay: float
    crashed_at: float
    old_pid: int | None
    new_pid: int | None = None
    restarted_at: float | None = None
    ready_at: float | None = None
    slow: bool = False  # "still not ready" was logged

    @property
    def downtime(self) -> float | None:
        """Seconds from noticing the exit to the new process being ready."""
        return None if self.ready_at is None else self.ready_at - self.crashed_at


@dataclass
class _State:
    unit: Unit
    held: bool = False  # stopped on purpose: not a crash, never restarted
    streak: int = 0  # consecutive restarts (the backoff exponent)
    restarts: deque[float] = field(default_factory=deque)  # times of recent restarts
    due: float | None = None  # a restart is scheduled for this time
    pending: RestartRecord | None = None  # restarted, not ready yet
    started_at: float = field(default_factory=time.monotonic)
    held_ports: list[int] = field(default_factory=list)


def describe_exit(returncode: int | None) -> str:
    """``exited with code 3`` / ``was killed by SIGKILL``."""
    if returncode is None:
        return "exited"
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with code {returncode}"


class Supervisor:
    """Restarts the exited processes of its units (see :class:`RestartPolicy`).

    ``log(message)`` receives one line per event (exit noticed, restarted, ready again);
    ``changed()`` is called when a PID changed (to rewrite ``stack.json``).
    """

    def __init__(
        self,
        policy: RestartPolicy,
        *,
        log: Callable[[str], None],
        changed: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy
        self.log = log
        self.changed = changed
        self.clock = clock
        self.lock = threading.RLock()
        self.history: list[RestartRecord] = []
        self._states: dict[str, _State] = {}
        self._closed = False

    def add(self, unit: Unit) -> None:
        with self.lock:
            self._states[unit.name] = _State(unit, started_at=self.clock())

    def names(self) -> list[str]:
        return list(self._states)

    def is_held(self, name: str) -> bool:
        state = self._states.get(name)
        return state is not None and state.held

    def hold(self, names: Iterable[str]) -> None:
        """These are being stopped on purpose: their exit is not a crash."""
        with self.lock:
            for name in names:
                state = self._states.get(name)
                if state is None:  # not supervised (yet): nothing to hold
                    continue
                state.held = True
                state.due = None
                state.pending = None
                self._unhold(state)

    def release(self, names: Iterable[str]) -> None:
        """These were started again on purpose: supervise them afresh."""
        with self.lock:
            for name in names:
                state = self._states.get(name)
                if state is None:
                    continue
                state.held = False
                state.streak = 0
                state.restarts.clear()
                state.due = None
                state.pending = None
                state.started_at = self.clock()

    def close(self) -> None:
        """The stack is stopping: no more restarts; let go of held ports."""
        with self.lock:
            self._closed = True
            for state in self._states.values():
                state.due = None
                self._unhold(state)

    def restarts_of(self, name: str) -> int:
        return sum(1 for record in self.history if record.name == name)

    def poll(self) -> None:
        """Notice exits, do due restarts, log readiness; raise :class:`CrashLoopError` when a
        child exhausted its restarts."""
        with self.lock:
            if self._closed:
                return
            for state in self._states.values():
                if not state.held:
                    self._poll_one(state)

    def _poll_one(self, state: _State) -> None:
        unit, now = state.unit, self.clock()
        if state.due is not None:
            if now >= state.due:
                self._restart(state, now)
            return
        process = unit.process
        if process is None:
            return
        if process.running:
            record = state.pending
            if record is not None and unit.ready():
                state.pending = None
                record.ready_at = now
                self.log(
                    f"{unit.name} is back (PID {record.new_pid}): ready {record.downtime:.2f}s "
                    f"after its exit was noticed"
                )
            elif record is not None and not record.slow and now - state.started_at > 30.0:
                record.slow = True
                self.log(
                    f"{unit.name} (PID {record.new_pid}) runs but is still not ready "
                    f"{now - state.started_at:.0f}s after its restart: see {process.log_path}"
                )
            if state.streak and now - state.started_at >= self.policy.stable_after:
                state.streak = 0
            return
        reason = describe_exit(process.returncode)
        self._exited(state, now, process.pid, reason, process.log_path, process.tail())

    def _exited(
        self, state: _State, now: float, pid: int | None, reason: str, log: object, tail: str
    ) -> None:
        unit, policy = state.unit, self.policy
        while state.restarts and now - state.restarts[0] > policy.window:
            state.restarts.popleft()
        if len(state.restarts) >= policy.max_restarts:
            self._closed = True
            for other in self._states.values():
                other.due = None
                self._unhold(other)
            if policy.max_restarts == 0:
                why = "restarts are disabled"
            else:
                why = (
                    f"crash loop: {len(state.restarts)} restarts within {policy.window:g}s "
                    f"did not keep it up"
                )
            # e.g. "address already in use": say who took the child's port meanwhile
            foreign = "".join(
                f"port {port} is in use by another process{holders}\n"
                for port in unit.claimed_ports
                if (holders := describe_holders(port))
            )
            raise CrashLoopError(
                unit.name,
                f"{unit.name} (PID {pid}) {reason}; {why}, giving up\n{foreign}"
                f"--- last lines of {log} ---\n{tail}",
            )
        state.streak += 1
        delay = policy.delay(state.streak)
        state.due = now + delay
        state.pending = RestartRecord(unit.name, state.streak, reason, delay, now, pid)
        state.held_ports = [port for port in unit.claimed_ports if hold_port(port)]
        self.log(
            f"{unit.name} (PID {pid}) {reason}; restart {state.streak} in {delay:.1f}s "
            f"({len(state.restarts) + 1} of at most {policy.max_restarts} "
            f"within {policy.window:g}s)"
        )

    def _restart(self, state: _State, now: float) -> None:
        unit, record = state.unit, state.pending
        state.due = None
        state.restarts.append(now)
        state.started_at = now
        self._unhold(state)
        if record is not None:
            record.restarted_at = now
            self.history.append(record)
        try:
            unit.respawn()
        except DevstackError as exc:  # counts as one more exit of this child
            state.pending = None
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self._exited(state, now, None, f"could not start ({first})", "its start", str(exc))
            return
        process = unit.process
        pid = process.pid if process is not None else None
        if record is not None:
            record.new_pid = pid
        self.log(f"{unit.name} restarted as PID {pid} (attempt {state.streak})")
        self.changed()

    def _unhold(self, state: _State) -> None:
        unhold_ports(state.held_ports)
        state.held_ports = []
