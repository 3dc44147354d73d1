"""Configuration of the commerce service: ``COMMERCE_*`` environment variables."""

from __future__ import annotations

from typing import Literal

from coursemesh.chassis.settings import ServiceSettings


class Settings(ServiceSettings, kw_only=True, frozen=True):
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 2525
    mail_from: str = "receipts@coursemesh.local"
    payment_provider: Literal["sandbox", "stripe"] = "sandbox"
    # Where the sandbox provider POSTs its webhooks; None means PUBLIC_BASE_URL (the gateway).
    webhook_target_base_url: str | None = None
    # The sandbox derives each organization's webhook secret from this key (HMAC), so the
    # secret is per org without a table of secrets. No default: a key known from the code would
    # let anyone sign a payment.completed for any organization.
    sandbox_webhook_key: str | None = None
    checkout_ttl_seconds: float = 86_400.0
    sweep_interval_seconds: float = 60.0
    webhook_max_attempts: int = 8
    webhook_backoff_base_seconds: float = 0.5
    webhook_backoff_cap_seconds: float = 300.0
    receipt_max_attempts: int = 10
    stripe_api_key: str | None = None
    stripe_webhook_secret: str | None = None
    stripe_api_base: str | None = None

    @property
    def webhook_base_url(self) -> str:
        return (self.webhook_target_base_url or self.public_base_url).rstrip("/")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.payment_provider == "stripe" and not (
            self.stripe_api_key and self.stripe_webhook_secret
        ):
            raise ValueError(
                "PAYMENT_PROVIDER=stripe needs STRIPE_API_KEY and STRIPE_WEBHOOK_SECRET"
            )
        if self.payment_provider == "sandbox" and not self.sandbox_webhook_key:
            raise ValueError(
                "PAYMENT_PROVIDER=sandbox needs SANDBOX_WEBHOOK_KEY, a random secret (the sandbox"
                " provider is for development and tests only; `make up` generates one)"
            )
