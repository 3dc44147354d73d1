"""Commerce's runtime: the adapters wired to the use cases, built once per process, and
``runtime(source)``, its one typed accessor for handlers and workers."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from litestar import Litestar, Request

from coursemesh.chassis.app import ServiceContext, runtime_of
from coursemesh.chassis.db import Database
from coursemesh.commerce.adapters.access_sql import DriverAccessExpiryStore
from coursemesh.commerce.adapters.accounts_sql import DriverAccountStore, DriverCheckoutLookup
from coursemesh.commerce.adapters.bundles_sql import DriverBundleCheckoutStore, DriverBundleStore
from coursemesh.commerce.adapters.checkout_sql import DriverCheckoutStore, FastCheckoutStore
from coursemesh.commerce.adapters.coupons_sql import DriverCouponStore
from coursemesh.commerce.adapters.gifts_sql import DriverGiftStore
from coursemesh.commerce.adapters.history_sql import DriverHistoryStore
from coursemesh.commerce.adapters.identity import buyer_directory
from coursemesh.commerce.adapters.mailer import ReceiptSender
from coursemesh.commerce.adapters.payments_sql import DriverWebhookStore
from coursemesh.commerce.adapters.refunds_sql import DriverRefundStore
from coursemesh.commerce.adapters.sandbox import SandboxPages, SandboxProvider
from coursemesh.commerce.adapters.staff_sql import DriverStaffStore
from coursemesh.commerce.adapters.stripe_provider import StripeProvider
from coursemesh.commerce.adapters.sweeper_sql import DriverSweeperStore
from coursemesh.commerce.app.bulk_grants import BulkGrants
from coursemesh.commerce.app.bundles import BundleCheckout, Bundles
from coursemesh.commerce.app.checkout import Checkout
from coursemesh.commerce.app.coupons import Coupons
from coursemesh.commerce.app.gifts import ClaimLinks, Gifts
from coursemesh.commerce.app.history import AccessHistory
from coursemesh.commerce.app.metrics import start_counters_at_zero
from coursemesh.commerce.app.ports import (
    AccessExpiryStore,
    CheckoutLookup,
    PaymentProvider,
    SweeperStore,
)
from coursemesh.commerce.app.refunds import Refunds
from coursemesh.commerce.app.seller_payments import SellerPayments
from coursemesh.commerce.app.staff import Staff
from coursemesh.commerce.app.webhooks import PaymentWebhooks
from coursemesh.commerce.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    db: Database
    #: the provider checkouts pay with (``PAYMENT_PROVIDER``)
    provider: PaymentProvider
    #: the sandbox provider: its page and its webhook sender exist in every mode
    sandbox: SandboxProvider
    sandbox_pages: SandboxPages
    checkout: Checkout
    #: the checkout behind a payment session, for the pages a buyer returns to
    checkout_lookup: CheckoutLookup
    seller_payments: SellerPayments
    staff: Staff
    #: bulk grants, in the request or by the ``bulk-grant-runner`` worker (woken by ``bulk_wake``)
    bulk_grants: BulkGrants
    bulk_wake: asyncio.Event
    #: why a buyer gained or lost access: staff's and the buyer's views
    access_history: AccessHistory
    coupons: Coupons
    refunds: Refunds
    webhooks: PaymentWebhooks
    sweeper: SweeperStore
    #: ends time-limited access and tells buyers beforehand
    access_expiry: AccessExpiryStore
    receipts_wake: asyncio.Event
    webhooks_wake: asyncio.Event
    #: the ``receipt-sender`` worker's sender (SMTP transport, buyer directory)
    receipt_sender: ReceiptSender
    #: gifted courses: the recipient's claim, the payer's gifts and resends
    gifts: Gifts
    bundles: Bundles
    bundle_checkout: BundleCheckout


def providers(settings: Settings) -> tuple[PaymentProvider, SandboxProvider]:
    """The payment provider of the settings, and the sandbox. With Stripe no sandbox webhook
    is accepted, so a key of this process only is enough for the sandbox there (its page
    answers 404 for unknown sessions)."""
    sandbox = SandboxProvider(
        public_base_url=settings.public_base_url,
        webhook_base_url=settings.webhook_base_url,
        webhook_key=settings.sandbox_webhook_key or secrets.token_urlsafe(32),
    )
    if settings.payment_provider != "stripe":
        return sandbox, sandbox
    assert settings.stripe_api_key is not None
    stripe = StripeProvider(
        api_key=settings.stripe_api_key,
        webhook_secrets=settings.stripe_webhook_secrets,
        public_base_url=settings.public_base_url,
        api_base=settings.stripe_api_base,
    )
    return stripe, sandbox


def build_runtime(settings: Settings, db: Database) -> Runtime:
    provider, sandbox = providers(settings)
    directory = buyer_directory(settings)
    receipts_wake, webhooks_wake, bulk_wake = asyncio.Event(), asyncio.Event(), asyncio.Event()
    staff = Staff(DriverStaffStore(db), directory=directory)
    sandbox.on_queued = webhooks_wake.set  # a refund's webhook
    gift_links = ClaimLinks(settings.gift_claim_url)
    return Runtime(
        settings=settings,
        db=db,
        provider=provider,
        sandbox=sandbox,
        sandbox_pages=SandboxPages(db, sandbox, webhooks_wake),
        checkout=Checkout(
            fast=FastCheckoutStore(db),
            store=DriverCheckoutStore(db),
            provider=provider,
            checkout_ttl=timedelta(seconds=settings.checkout_ttl_seconds),
            public_base_url=settings.public_base_url,
            platform_fee_bps=settings.platform_fee_bps,
        ),
        checkout_lookup=DriverCheckoutLookup(db),
        seller_payments=SellerPayments(
            DriverAccountStore(db), provider, public_base_url=settings.public_base_url
        ),
        staff=staff,
        bulk_grants=BulkGrants(
            DriverStaffStore(db), find_user=staff.user_with_email, wake=bulk_wake.set
        ),
        bulk_wake=bulk_wake,
        access_history=AccessHistory(DriverHistoryStore(db)),
        coupons=Coupons(DriverCouponStore(db)),
        refunds=Refunds(DriverRefundStore(db), provider),
        webhooks=PaymentWebhooks(
            DriverWebhookStore(db),
            provider,
            nudge_receipts=receipts_wake.set,
            gift_links=gift_links,
        ),
        sweeper=DriverSweeperStore(db),
        access_expiry=DriverAccessExpiryStore(db, receipts_wake.set),
        receipts_wake=receipts_wake,
        webhooks_wake=webhooks_wake,
        receipt_sender=ReceiptSender.from_settings(settings, db, receipts_wake, directory),
        gifts=Gifts(DriverGiftStore(db), gift_links, nudge_mail=receipts_wake.set),
        bundles=Bundles(DriverBundleStore(db)),
        bundle_checkout=BundleCheckout(
            bundles=DriverBundleCheckoutStore(db),
            fast=FastCheckoutStore(db),
            store=DriverCheckoutStore(db),
            provider=provider,
            checkout_ttl=timedelta(seconds=settings.checkout_ttl_seconds),
            public_base_url=settings.public_base_url,
            platform_fee_bps=settings.platform_fee_bps,
        ),
    )


@asynccontextmanager
async def bootstrap(ctx: ServiceContext[Any]) -> AsyncIterator[Runtime]:
    settings = ctx.settings
    assert isinstance(settings, Settings)
    start_counters_at_zero()
    yield build_runtime(settings, ctx.db)


def runtime(source: Request[Any, Any, Any] | Litestar | ServiceContext[Any]) -> Runtime:
    return runtime_of(source, Runtime)
