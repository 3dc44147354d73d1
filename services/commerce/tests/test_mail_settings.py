"""Mail and buyer-directory settings: contradictions refused at start-up, with a clear message."""

from __future__ import annotations

from pathlib import Path

import pytest

from coursemesh.chassis.settings import SettingsError, load_settings
from coursemesh.commerce.settings import Settings

BASE = {
    "COMMERCE_DATABASE_URL": "postgresql+asyncpg://u@127.0.0.1:1/db",
    "COMMERCE_NATS_URL": "nats://127.0.0.1:1",
    "COMMERCE_JWKS_URL": "http://127.0.0.1:1/.well-known/jwks.json",
    "COMMERCE_SANDBOX_WEBHOOK_KEY": "k-7f3c",
}
STRIPE = {
    "COMMERCE_PAYMENT_PROVIDER": "stripe",
    "COMMERCE_STRIPE_API_KEY": "sk_test_1",
    "COMMERCE_STRIPE_WEBHOOK_SECRET": "whsec_1",
}


def load(**env: str) -> Settings:
    return load_settings(Settings, "COMMERCE_", {**BASE, **env})


def test_an_authenticated_starttls_relay_with_its_own_ca(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    s = load(
        COMMERCE_SMTP_HOST="smtp.example.com",
        COMMERCE_SMTP_PORT="587",
        COMMERCE_SMTP_SECURITY="starttls",
        COMMERCE_SMTP_USERNAME="apikey",
        COMMERCE_SMTP_PASSWORD="s3cret",
        COMMERCE_SMTP_CA_FILE=str(ca),
    )
    assert (s.smtp_security, s.smtp_username, s.smtp_password, s.smtp_ca_file) == (
        "starttls",
        "apikey",
        "s3cret",
        str(ca),
    )


def test_defaults_are_plain_smtp_without_auth_and_the_dev_directory_with_the_sandbox() -> None:
    s = load()
    assert (s.smtp_security, s.smtp_username, s.smtp_password, s.smtp_ca_file) == (
        "none",
        None,
        None,
        None,
    )
    assert s.buyer_directory == "dev"
    assert s.clerk_api_base == "https://api.clerk.com"
    # with real payments no address is ever made up unless asked for
    assert load(**STRIPE).buyer_directory == "none"
    assert load(**STRIPE, COMMERCE_IDENTITY_PROVIDER="dev").buyer_directory == "dev"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"COMMERCE_SMTP_SECURITY": "tls", "COMMERCE_SMTP_USERNAME": "u"},
            "SMTP_USERNAME and SMTP_PASSWORD go together",
        ),
        (
            {"COMMERCE_SMTP_SECURITY": "tls", "COMMERCE_SMTP_PASSWORD": "p"},
            "SMTP_USERNAME and SMTP_PASSWORD go together",
        ),
        (
            {"COMMERCE_SMTP_USERNAME": "u", "COMMERCE_SMTP_PASSWORD": "p"},
            "need SMTP_SECURITY=starttls or tls",
        ),
        ({"COMMERCE_SMTP_CA_FILE": "/etc/hostname"}, "SMTP_CA_FILE needs SMTP_SECURITY"),
        (
            {"COMMERCE_SMTP_SECURITY": "tls", "COMMERCE_SMTP_CA_FILE": "/nonexistent/ca.pem"},
            "is not a readable file",
        ),
        ({"COMMERCE_SMTP_SECURITY": "ssl"}, "SMTP_SECURITY"),
        ({"COMMERCE_SMTP_PORT": "0"}, "SMTP_PORT must be between 1 and 65535"),
        ({"COMMERCE_IDENTITY_PROVIDER": "clerk"}, "IDENTITY_PROVIDER=clerk needs CLERK_SECRET_KEY"),
        ({"COMMERCE_IDENTITY_PROVIDER": "auth0"}, "IDENTITY_PROVIDER"),
        (
            {
                "COMMERCE_IDENTITY_PROVIDER": "clerk",
                "COMMERCE_CLERK_SECRET_KEY": "sk_1",
                "COMMERCE_CLERK_API_BASE": "api.clerk.com",
            },
            "CLERK_API_BASE must be an http",
        ),
        ({"COMMERCE_DEV_EMAIL_DOMAIN": "a@b"}, "DEV_EMAIL_DOMAIN must be a bare domain"),
    ],
)
def test_contradictory_or_bad_settings_are_refused_at_start_up(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        load(**env)
