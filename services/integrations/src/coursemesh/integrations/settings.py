"""Configuration of the integrations service: ``INTEGRATIONS_*`` environment variables."""

from __future__ import annotations

from coursemesh.chassis.settings import ServiceSettings


class Settings(ServiceSettings, kw_only=True, frozen=True):
    # Development only: accept http:// endpoints and loopback addresses (the stack's own
    # receivers). Production refuses both.
    allow_loopback_endpoints: bool = False
    # Multiplies every retry delay: tests and demos compress the 24-hour schedule.
    retry_scale: float = 1.0
    # How long a rotated-out secret still signs deliveries, beside the new one.
    secret_grace_seconds: int = 86_400
    delivery_retention_days: int = 30
    send_timeout_seconds: float = 15.0
    # Deliveries in flight at once per process (one per endpoint at most).
    send_concurrency: int = 16
    # A claimed delivery whose sender died is claimable again after this long.
    lease_seconds: float = 60.0
    # How often the sender looks for due deliveries when nothing woke it.
    poll_interval_seconds: float = 1.0
