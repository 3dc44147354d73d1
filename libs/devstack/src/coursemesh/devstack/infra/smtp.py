"""The development SMTP server (:mod:`coursemesh.devstack.smtp`) as a child process."""

from __future__ import annotations

import smtplib
import sys
from pathlib import Path
from typing import Any

from coursemesh.devstack.infra.base import Launcher
from coursemesh.devstack.mailbox import Mailbox
from coursemesh.devstack.process import ManagedProcess


def smtp_answers(host: str, port: int) -> bool:
    with smtplib.SMTP(host, port, timeout=1) as client:
        code, _ = client.noop()
        return code == 250


class EmbeddedSmtp(Launcher):
    """``python -m coursemesh.devstack.smtp`` writing every message into ``mail_dir``."""

    name = "smtp"
    host = "127.0.0.1"

    def __init__(
        self, mail_dir: Path, *, port: int | None = None, log_path: Path | None = None
    ) -> None:
        super().__init__(log_path or mail_dir.parent / "smtp.log")
        self.mail_dir = mail_dir.resolve()
        self.port = self._take_port(port)
        self.mailbox = Mailbox(self.mail_dir)

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    def _build(self) -> ManagedProcess:
        self.mail_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            sys.executable, "-m", "coursemesh.devstack.smtp",
            "--host", self.host, "--port", str(self.port), "--dir", str(self.mail_dir),
        ]  # fmt: skip
        return ManagedProcess(self.name, argv, log_path=self.log_path)

    def _answers(self) -> bool:
        return smtp_answers(self.host, self.port)

    def listen_ports(self) -> list[int]:
        return [self.port]

    def describe(self) -> str:
        return f"SMTP at {self.host}:{self.port}"

    def info(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "mail_dir": str(self.mail_dir),
            "pid": self.pid,
        }
