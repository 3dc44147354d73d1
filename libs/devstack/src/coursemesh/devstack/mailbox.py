"""Read the messages the development SMTP server wrote as ``.eml`` files."""

from __future__ import annotations

import email
import email.policy
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path


class Mailbox:
    """A directory of ``.eml`` files, oldest first (file names start with a timestamp)."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)

    def paths(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(self.directory.glob("*.eml"))

    def messages(self) -> list[EmailMessage]:
        """Every message received so far, parsed with the modern ``email`` policy."""
        return [self._parse(path) for path in self.paths()]

    def wait_for(
        self,
        predicate: Callable[[EmailMessage], bool] = lambda _message: True,
        timeout: float = 10.0,
        *,
        interval: float = 0.05,
    ) -> EmailMessage:
        """The first message matching ``predicate``; raise ``TimeoutError`` after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            for message in self.messages():
                if predicate(message):
                    return message
            if time.monotonic() >= deadline:
                count = len(self.paths())
                raise TimeoutError(
                    f"no matching message in {self.directory} after {timeout}s ({count} received)"
                )
            time.sleep(interval)

    def clear(self) -> None:
        """Delete every received message."""
        for path in self.paths():
            path.unlink(missing_ok=True)

    @staticmethod
    def _parse(path: Path) -> EmailMessage:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        return message
