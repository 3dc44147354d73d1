"""What commerce's handlers and workers share at run time (built once per app)."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from datetime import timedelta

from litestar.datastructures import State

from coursemesh.chassis.db import Database
from coursemesh.commerce.adapters.sandbox import SandboxProvider
from coursemesh.commerce.adapters.stripe_provider import StripeProvider
from coursemesh.commerce.app.checkout import CheckoutContext
from coursemesh.commerce.app.ports import PaymentProvider
from coursemesh.commerce.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    provider: PaymentProvider
    sandbox: SandboxProvider
    receipts_wake: asyncio.Event = field(default_factory=asyncio.Event)
    webhooks_wake: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        # The sandbox page and sender exist in every mode (the page 404s for unknown ids). With
        # Stripe no sandbox webhook is accepted, so a key of this process only is enough there.
        sandbox = SandboxProvider(
            public_base_url=settings.public_base_url,
            webhook_base_url=settings.webhook_base_url,
            webhook_key=settings.sandbox_webhook_key or secrets.token_urlsafe(32),
        )
        provider: PaymentProvider = sandbox
        if settings.payment_provider == "stripe":
            assert settings.stripe_api_key is not None
            assert settings.stripe_webhook_secret is not None
            provider = StripeProvider(
                api_key=settings.stripe_api_key,
                webhook_secret=settings.stripe_webhook_secret,
                public_base_url=settings.public_base_url,
                api_base=settings.stripe_api_base,
            )
        return cls(settings=settings, provider=provider, sandbox=sandbox)

    def checkout(self, db: Database) -> CheckoutContext:
        return CheckoutContext(
            db=db,
            provider=self.provider,
            checkout_ttl=timedelta(seconds=self.settings.checkout_ttl_seconds),
        )


def provide_runtime(state: State) -> Runtime:
    runtime: Runtime = state.commerce
    return runtime
