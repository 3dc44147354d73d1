"""Endpoint secrets and the signature header, per the Standard Webhooks specification:
``webhook-signature`` is ``v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">``, one per
valid secret separated by spaces (two during a rotation's grace period)."""

from __future__ import annotations

import base64
import secrets as _random
from datetime import datetime

from standardwebhooks.webhooks import Webhook

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(_random.token_bytes(SECRET_BYTES)).decode()


def signature_header(secrets: list[str], webhook_id: str, at: datetime, body: str) -> str:
    return " ".join(Webhook(s).sign(webhook_id, at, body) for s in secrets)


def signing_secrets(
    secret: str, previous: str | None, previous_expires_at: datetime | None, now: datetime
) -> list[str]:
    """The secrets a delivery sent at ``now`` is signed with: the current one, and the previous
    one while its grace period lasts."""
    if previous is not None and previous_expires_at is not None and now < previous_expires_at:
        return [secret, previous]
    return [secret]
