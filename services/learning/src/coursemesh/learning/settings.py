"""Configuration of the learning service: ``LEARNING_*`` environment variables."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from coursemesh.chassis.mail import check_smtp
from coursemesh.chassis.settings import ServiceSettings


class Settings(ServiceSettings, kw_only=True, frozen=True):
    # Where certificates' PDFs are kept (SeaweedFS locally, Cloudflare R2 in production: region
    # "auto"), one object per certificate id.
    s3_endpoint: str | None = None
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_bucket: Annotated[str, msgspec.Meta(min_length=3)] = "coursemesh-certificates"
    s3_region: str = "us-east-1"
    # Reminder e-mails: the relay, as commerce's (``SMTP_*``, see chassis.mail).
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 2525
    smtp_security: Literal["none", "starttls", "tls"] = "none"
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_ca_file: str | None = None
    mail_from: str = "reminders@coursemesh.local"
    # Signs the unsubscribe links (HMAC-SHA256). Unset or empty: reminders are off (opting in is 409
    # ``REMINDERS_UNAVAILABLE``, nothing is scheduled): a key known from the code would let
    # anyone unsubscribe anyone.
    reminder_key: str | None = None
    # The nudge: sent on the day this many workout days in a row were missed (0: never).
    reminder_nudge_after_days: int = 3
    # How often a replica looks for reminders that came due (a reminder is sent at most this
    # late after its local time).
    reminder_interval_seconds: float = 30.0
    reminder_max_attempts: int = 10
    # The unsubscribe link, ``{token}`` standing for the token; unset:
    # ``{PUBLIC_BASE_URL}/public/reminders/unsubscribe?token={token}`` (the API itself).
    reminder_unsubscribe_url_template: str | None = None
    # Course documents per answer of ``POST /me/sync`` (a device asks again while ``more``).
    sync_page_size: Annotated[int, msgspec.Meta(ge=1, le=500)] = 20

    def __post_init__(self) -> None:
        super().__post_init__()
        check_smtp(
            self.smtp_port,
            self.smtp_security,
            self.smtp_username,
            self.smtp_password,
            self.smtp_ca_file,
        )
        if self.reminder_nudge_after_days < 0:
            raise ValueError("REMINDER_NUDGE_AFTER_DAYS must be 0 (never) or more")
        if self.reminder_interval_seconds <= 0:
            raise ValueError("REMINDER_INTERVAL_SECONDS must be positive")

    @property
    def reminder_signing_key(self) -> str | None:
        """The key, when reminders are on."""
        return self.reminder_key or None

    def unsubscribe_url(self, token: str) -> str:
        template = self.reminder_unsubscribe_url_template
        if template is None:
            base = self.public_base_url.rstrip("/")
            return f"{base}/public/reminders/unsubscribe?token={token}"
        return template.replace("{token}", token)
