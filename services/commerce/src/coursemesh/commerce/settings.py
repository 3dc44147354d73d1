"""Configuration of the commerce service: ``COMMERCE_*`` environment variables."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from coursemesh.chassis.mail import check_smtp
from coursemesh.chassis.settings import ServiceSettings
from coursemesh.commerce.domain.accounts import MAX_PLATFORM_FEE_BPS


class Settings(ServiceSettings, kw_only=True, frozen=True):
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 2525
    # The relay's transport: ``none`` (plain SMTP, development), ``starttls`` (submission, port
    # 587: upgrade before anything else is said) or ``tls`` (implicit TLS, port 465).
    smtp_security: Literal["none", "starttls", "tls"] = "none"
    # AUTH credentials of the relay (both or neither; only over TLS).
    smtp_username: str | None = None
    smtp_password: str | None = None
    # PEM file of the CA(s) the relay's certificate is checked against instead of the system's
    # (a self-signed relay, tests); the certificate and its host name are always checked.
    smtp_ca_file: str | None = None
    mail_from: str = "receipts@coursemesh.local"
    # Where a receipt goes when the buyer's token carried no email: ``clerk`` (Clerk's Backend
    # API), ``dev`` (``{user id}@{DEV_EMAIL_DOMAIN}``, for `make up`: its SMTP server keeps every
    # message), ``none`` (no directory: such a receipt ends as ``no_address``). Unset: ``dev``
    # with the sandbox provider, ``none`` with Stripe.
    identity_provider: Literal["clerk", "dev", "none"] | None = None
    clerk_secret_key: str | None = None
    clerk_api_base: str = "https://api.clerk.com"
    dev_email_domain: str = "users.coursemesh.local"
    payment_provider: Literal["sandbox", "stripe"] = "sandbox"
    # Where the sandbox provider POSTs its webhooks; None means PUBLIC_BASE_URL (the gateway).
    webhook_target_base_url: str | None = None
    # The sandbox derives each organization's webhook secret from this key (HMAC), so the
    # secret is per org without a table of secrets. No default: a key known from the code would
    # let anyone sign a payment.completed for any organization.
    sandbox_webhook_key: str | None = None
    checkout_ttl_seconds: float = 86_400.0
    sweep_interval_seconds: float = 60.0
    # Time-limited access: how long before its end the buyer is told, and how often ends are
    # looked for (an access ends at the first look after its end).
    access_expiry_notice_days: float = 3.0
    access_expiry_interval_seconds: float = 60.0
    # How often a replica looks for bulk grant jobs queued elsewhere or left by a runner that
    # stopped (one queued in this process wakes it at once).
    bulk_grant_poll_seconds: float = 5.0
    webhook_max_attempts: int = 8
    webhook_backoff_base_seconds: float = 0.5
    webhook_backoff_cap_seconds: float = 300.0
    receipt_max_attempts: int = 10
    stripe_api_key: str | None = None
    # The signing secret of the platform's one webhook endpoint (``/webhooks/stripe``, listening
    # to events on connected accounts); several, comma-separated, while rotating it.
    stripe_webhook_secret: str | None = None
    stripe_api_base: str | None = None
    # The platform's share of every paid checkout, in basis points (250 = 2.5 %), taken as the
    # payment's application fee on the seller's account; 0: none.
    platform_fee_bps: int = 0
    # Where buyers open what they bought (the learner app or site), linked from the checkout's
    # success page; unset: the page says to open the app.
    library_url: str | None = None
    # The claim link mailed to a gift's recipient, ``{token}`` standing for the claim token (the
    # client app serves that page and calls ``POST /gifts/{token}/claim``); unset:
    # ``{PUBLIC_BASE_URL}/gifts/{token}``.
    gift_claim_url_template: str | None = None

    @property
    def stripe_webhook_secrets(self) -> tuple[str, ...]:
        return tuple(
            part.strip() for part in (self.stripe_webhook_secret or "").split(",") if part.strip()
        )

    @property
    def webhook_base_url(self) -> str:
        return (self.webhook_target_base_url or self.public_base_url).rstrip("/")

    @property
    def gift_claim_url(self) -> str:
        """The claim link's template in use (``GIFT_CLAIM_URL_TEMPLATE``, or its default)."""
        if self.gift_claim_url_template is not None:
            return self.gift_claim_url_template
        return self.public_base_url.rstrip("/") + "/gifts/{token}"

    @property
    def buyer_directory(self) -> Literal["clerk", "dev", "none"]:
        """The identity directory in use (``IDENTITY_PROVIDER``, or its default)."""
        if self.identity_provider is not None:
            return self.identity_provider
        return "dev" if self.payment_provider == "sandbox" else "none"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.platform_fee_bps <= MAX_PLATFORM_FEE_BPS:
            raise ValueError(
                f"PLATFORM_FEE_BPS must be 0..{MAX_PLATFORM_FEE_BPS} (basis points of a charge),"
                f" not {self.platform_fee_bps}"
            )
        if self.library_url is not None:
            parts = urlsplit(self.library_url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"LIBRARY_URL must be an http(s) URL, not {self.library_url!r}")
        if self.payment_provider == "stripe" and not (
            self.stripe_api_key and self.stripe_webhook_secrets
        ):
            raise ValueError(
                "PAYMENT_PROVIDER=stripe needs STRIPE_API_KEY and STRIPE_WEBHOOK_SECRET"
            )
        if self.payment_provider == "sandbox" and not self.sandbox_webhook_key:
            raise ValueError(
                "PAYMENT_PROVIDER=sandbox needs SANDBOX_WEBHOOK_KEY, a random secret (the sandbox"
                " provider is for development and tests only; `make up` generates one)"
            )
        self._check_mail()
        self._check_gift_claim_url()

    def _check_gift_claim_url(self) -> None:
        template = self.gift_claim_url_template
        if template is None:
            return
        parts = urlsplit(template)
        if parts.scheme not in ("http", "https") or not parts.netloc or "{token}" not in template:
            raise ValueError(
                "GIFT_CLAIM_URL_TEMPLATE must be an http(s) URL containing {token},"
                f" not {template!r}"
            )

    def _check_mail(self) -> None:
        """Refuse contradictory mail and identity settings before anything starts."""
        check_smtp(
            self.smtp_port,
            self.smtp_security,
            self.smtp_username,
            self.smtp_password,
            self.smtp_ca_file,
        )
        if self.identity_provider == "clerk" and not self.clerk_secret_key:
            raise ValueError("IDENTITY_PROVIDER=clerk needs CLERK_SECRET_KEY")
        base = urlsplit(self.clerk_api_base)
        if base.scheme not in ("http", "https") or not base.netloc:
            raise ValueError(f"CLERK_API_BASE must be an http(s) URL, not {self.clerk_api_base!r}")
        domain = self.dev_email_domain
        if not domain or any(c in domain for c in '@ <>,;"\t\r\n'):
            raise ValueError(f"DEV_EMAIL_DOMAIN must be a bare domain, not {domain!r}")
