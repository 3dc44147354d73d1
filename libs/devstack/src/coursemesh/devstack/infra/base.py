"""What every embedded-infrastructure launcher shares: launch, wait until ready, stop."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from coursemesh.devstack.ports import free_port, release_ports
from coursemesh.devstack.process import DevstackError, ManagedProcess


class Launcher(ABC):
    """One embedded server run as our child process.

    ``start()`` = ``launch()`` (spawn, returns at once) + ``wait_ready()`` (poll with a
    deadline, failing early if the child dies). ``stop()`` signals exactly the PID we started
    and waits for it. Usable as a context manager.
    """

    name: str = "process"
    ready_timeout: float = 30.0

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
    def _wait_ready(self, timeout: float) -> None:
        """Block until the server answers, or raise :class:`DevstackError`."""

    def info(self) -> dict[str, Any]:
        """Connection details for ``stack.json``."""
        return {"pid": self.pid}

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.running

    def launch(self) -> Self:
        if self.process is not None:
            raise DevstackError(f"{self.name} already started")
        process = self._build()
        process.start()
        self.process = process
        return self

    def wait_ready(self, timeout: float | None = None) -> Self:
        if self.process is None:
            raise DevstackError(f"{self.name} was not launched")
        self._wait_ready(self.ready_timeout if timeout is None else timeout)
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
