"""Commerce's configuration: no secret has a default in code."""

from __future__ import annotations

import pytest

from coursemesh.chassis.settings import SettingsError, load_settings
from coursemesh.commerce.settings import Settings

BASE = {
    "COMMERCE_DATABASE_URL": "postgresql+asyncpg://u@127.0.0.1:1/db",
    "COMMERCE_NATS_URL": "nats://127.0.0.1:1",
    "COMMERCE_JWKS_URL": "http://127.0.0.1:1/.well-known/jwks.json",
}


@pytest.mark.parametrize("key", [None, ""], ids=["unset", "empty"])
def test_sandbox_provider_refuses_to_start_without_a_webhook_key(key: str | None) -> None:
    env = {**BASE, "COMMERCE_PAYMENT_PROVIDER": "sandbox"}
    if key is not None:
        env["COMMERCE_SANDBOX_WEBHOOK_KEY"] = key
    with pytest.raises(SettingsError, match="needs SANDBOX_WEBHOOK_KEY"):
        load_settings(Settings, "COMMERCE_", env)
    # the sandbox is the default provider: leaving the provider unset is no way around it
    with pytest.raises(SettingsError, match="needs SANDBOX_WEBHOOK_KEY"):
        load_settings(Settings, "COMMERCE_", BASE)


def test_sandbox_key_is_taken_as_given_and_stripe_needs_none() -> None:
    env = {**BASE, "COMMERCE_SANDBOX_WEBHOOK_KEY": "k-7f3c"}
    assert load_settings(Settings, "COMMERCE_", env).sandbox_webhook_key == "k-7f3c"
    stripe = {
        **BASE,
        "COMMERCE_PAYMENT_PROVIDER": "stripe",
        "COMMERCE_STRIPE_API_KEY": "sk_test_1",
        "COMMERCE_STRIPE_WEBHOOK_SECRET": "whsec_1",
    }
    assert load_settings(Settings, "COMMERCE_", stripe).sandbox_webhook_key is None
