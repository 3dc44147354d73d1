"""What every embedded-infrastructure launcher shares: launch, wait until ready, stop, respawn."""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from coursemesh.devstack.ports import (
    describe_holders,
    free_port,
    listens,
    release_ports,
    unhold_ports,
)
from coursemesh.devstack.process import DevstackError, ManagedProcess, wait_until


class Launcher(ABC):
    """One embedded server run as our child process.

    ``start()`` = ``launch()`` (spawn, returns at once) + ``wait_ready()`` (poll with a
    deadline, failing early if the child dies). Ready means the server answers **and** the
    answering socket belongs to the child we started (:meth:`owns_ports`): a server of another
    program on the same port never passes. ``stop()`` signals exactly the PID we started and
    waits for it; ``respawn()`` starts it again with the same ports and data (the supervisor's
    restart). Usable as a context manager.
    """

    name: str = "process"
    ready_timeout: float = 30.0
    ready_interval: float = 0.05

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.process: ManagedProcess | None = None
        self._claimed: list[int] = []

    def _take_port(self, port: int | None, *, partner_offset: int | None = None) -> int:
        """``port`` as given (the caller chose it), else a fresh free one; released on stop."""
        chosen = port if port is not None else free_port(partner_offset=partner_offset)
        self._claimed.append(chosen)
        if partner_offset is not None:
            self._claimed.append(chosen + partner_offset)
        return chosen

    @abstractmethod
    def _build(self) -> ManagedProcess:
        """Prepare directories/config and describe the child to start."""

    @abstractmethod
    def _answers(self) -> bool:
        """One readiness probe (may raise: "not yet")."""

    @abstractmethod
    def listen_ports(self) -> list[int]:
        """Ports the child must be listening on itself for :meth:`ready` to pass."""

    def describe(self) -> str:
        """What :meth:`wait_ready` waits for, for its timeout message."""
        return f"{self.name} on port(s) {', '.join(map(str, self.listen_ports()))}"

    @property
    def claimed_ports(self) -> list[int]:
        """Every port this launcher's child uses (gRPC partners included)."""
        return list(self._claimed)

    def info(self) -> dict[str, Any]:
        """Connection details for ``stack.json``."""
        return {"pid": self.pid}

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.running

    def owns_ports(self) -> bool:
        """Every port of :meth:`listen_ports` is bound by our child (or its descendants)."""
        pid = self.pid
        return self.running and all(listens(pid, port) for port in self.listen_ports())

    def ready(self) -> bool:
        """Our child runs, listens on its ports itself, and answers. Never raises."""
        if not self.owns_ports():
            return False
        try:
            return self._answers()
        except Exception:
            return False

    def launch(self) -> Self:
        if self.process is not None:
            raise DevstackError(f"{self.name} already started")
        unhold_ports(self._claimed)  # a stack may hold them until now: let the child bind them
        process = self._build()
        self.process = process  # before start(): a Ctrl-C in between still stops it
        try:
            process.start()
        except BaseException:
            self.process = None
            raise
        return self

    def respawn(self) -> Self:
        """Start the server again after its process exited: same ports, same data."""
        old = self.process
        if old is not None:
            if old.running:
                raise DevstackError(f"{self.name} (PID {old.pid}) still runs")
            with contextlib.suppress(Exception):
                old.wait_stopped(0)  # reaps it and closes its log file
        self.process = None
        return self.launch()

    def wait_ready(self, timeout: float | None = None) -> Self:
        if self.process is None:
            raise DevstackError(f"{self.name} was not launched")
        process = self.process
        try:
            wait_until(
                self.ready,
                timeout=self.ready_timeout if timeout is None else timeout,
                what=self.describe(),
                process=process,
                interval=self.ready_interval,
            )
        except DevstackError as exc:
            foreign = "".join(
                f"\nport {port} is in use by another process{describe_holders(port)}"
                for port in self.listen_ports()
                if not listens(process.pid, port) and describe_holders(port)
            )
            if not foreign:
                raise
            raise DevstackError(f"{exc}{foreign}") from exc
        return self

    def start(self, timeout: float | None = None) -> Self:
        """Launch and wait until ready; on failure, stop what was started and re-raise."""
        self.launch()
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
        unhold_ports(self._claimed)
        release_ports(self._claimed)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
