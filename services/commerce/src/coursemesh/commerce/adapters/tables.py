"""The commerce service's tables, all in the ``commerce`` schema."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from coursemesh.chassis.tables import spine_tables

SCHEMA = "commerce"
metadata = sa.MetaData(schema=SCHEMA)
spine = spine_tables(metadata)

_UTC = sa.DateTime(timezone=True)


def _now() -> sa.Column[object]:
    return sa.Column("created_at", _UTC, nullable=False, server_default=sa.func.now())


# --- projections of catalog's events ------------------------------------------------------

organizations = sa.Table(
    "organizations",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("slug", sa.Text, nullable=False),
    sa.Column("logo_url", sa.Text),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
)

memberships = sa.Table(
    "memberships",
    metadata,
    sa.Column("organization_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("user_id", sa.Text, primary_key=True),
    sa.Column("membership_id", UUID(as_uuid=True), nullable=False),
    sa.Column("role", sa.Text),  # null: the membership was removed
    sa.Column("is_staff", sa.Boolean, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
)

# A course has two facets here: details (name) and status. Every course event carries the
# status, so the status follows the newest event; the name only details events.
courses = sa.Table(
    "courses",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("organization_id", UUID(as_uuid=True), nullable=False),
    sa.Column("name", sa.Text),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("details_version", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("status_version", sa.Integer, nullable=False),
)

# --- commerce's own state ------------------------------------------------------------------

plans = sa.Table(
    "plans",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("course_id", UUID(as_uuid=True), nullable=False),
    sa.Column("type", sa.Text, nullable=False, server_default="course"),
    sa.Column("organization_id", UUID(as_uuid=True), nullable=False),
    sa.Column("price_in_cents", sa.Integer, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("is_active", sa.Boolean, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("refund_window_days", sa.Integer),  # migration 0008; null: no refund requests
    sa.Column("access_days", sa.Integer),  # migration 0009; null: lifetime access
    sa.UniqueConstraint("course_id", "type", name="uq_plans_course_type"),
    sa.CheckConstraint("price_in_cents >= 0", name="ck_plans_price"),
)

entitlements = sa.Table(
    "course_entitlements",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("user_id", sa.Text, nullable=False),
    sa.Column("course_id", UUID(as_uuid=True), nullable=False),
    sa.Column("organization_id", UUID(as_uuid=True), nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("access_revoked_at", _UTC),
    sa.Column("source_payment_transaction_id", UUID(as_uuid=True)),
    sa.Column("membership_id", UUID(as_uuid=True)),
    sa.Column("buyer_email", sa.Text),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("status_changed_at", _UTC, nullable=False),
    _now(),
    # When an active access ends (null: never), and the end its buyer was told of (0009).
    sa.Column("access_ends_at", _UTC),
    sa.Column("expiry_notice_for", _UTC),
    sa.UniqueConstraint("user_id", "course_id", name="uq_entitlements_user_course"),
    sa.Index("ix_entitlements_pending", "status_changed_at", postgresql_where="status = 'pending'"),
    sa.Index(
        "ix_entitlements_access_ends",
        "access_ends_at",
        postgresql_where="status = 'active' AND access_ends_at IS NOT NULL",
    ),
)

entitlement_transitions = sa.Table(
    "entitlement_transitions",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("entitlement_id", UUID(as_uuid=True), nullable=False),
    sa.Column("from_status", sa.Text),
    sa.Column("to_status", sa.Text, nullable=False),
    sa.Column("cause", sa.Text, nullable=False),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("at", _UTC, nullable=False),
    # The payment the step is about (migration 0006); null: none, or a row written before.
    sa.Column("payment_transaction_id", UUID(as_uuid=True)),
    sa.Index("ix_entitlement_transitions_entitlement_id", "entitlement_id"),
)

payment_transactions = sa.Table(
    "payment_transactions",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("organization_id", UUID(as_uuid=True), nullable=False),
    sa.Column("user_id", sa.Text, nullable=False),
    sa.Column("entitlement_id", UUID(as_uuid=True)),
    sa.Column("custom_course_purchase_id", UUID(as_uuid=True)),
    sa.Column("amount_in_cents", sa.Integer, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("provider", sa.Text, nullable=False),
    sa.Column("provider_transaction_id", sa.Text, unique=True),  # the hosted session id
    sa.Column("provider_payment_id", sa.Text),  # e.g. Stripe's payment intent, for refunds
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("metadata", JSONB, nullable=False),
    sa.Column("buyer_email", sa.Text),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    _now(),
    sa.Column("completed_at", _UTC),
    # Why the payment ended as it did (migration 0004): superseded | late_payment_superseded |
    # late_payment_already_active; the payment that replaced a superseded one; the refund's time.
    sa.Column("status_reason", sa.Text),
    sa.Column("superseded_by", UUID(as_uuid=True)),
    sa.Column("refunded_at", _UTC),
    # The seller's connected account the payment was opened on (migration 0005).
    sa.Column("provider_account_id", sa.Text),
    sa.Column("payment_page_url", sa.Text),
    sa.Index(
        "ix_payment_transactions_open_entitlement",
        "entitlement_id",
        postgresql_where="status = 'pending'",
    ),
    # The open payments by age, for the sweeper (migration 0013).
    sa.Index(
        "ix_payment_transactions_pending_created",
        "created_at",
        postgresql_where="status = 'pending'",
    ),
    # The plan's refund window when bought, and when the buyer asked for a refund (0008).
    sa.Column("refund_window_days", sa.Integer),
    sa.Column("refund_requested_at", _UTC),
    # The plan's access duration when bought, and whether it extends a held access (0009).
    sa.Column("access_days", sa.Integer),
    sa.Column("renewal", sa.Boolean, nullable=False, server_default=sa.false()),
    # The bundle purchase it pays for (migration 0012); null: a course's or an offer's.
    sa.Column("bundle_purchase_id", UUID(as_uuid=True)),
)

# The payments' audit trail (migration 0004): supersessions and late-payment refunds.
payment_transitions = sa.Table(
    "payment_transitions",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("transaction_id", UUID(as_uuid=True), nullable=False),
    sa.Column("from_status", sa.Text, nullable=False),
    sa.Column("to_status", sa.Text, nullable=False),
    sa.Column("cause", sa.Text, nullable=False),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("at", _UTC, nullable=False),
    sa.Index("ix_payment_transitions_transaction_id", "transaction_id"),
)

webhook_events = sa.Table(
    "webhook_events",
    metadata,
    sa.Column("provider", sa.Text, primary_key=True),
    sa.Column("provider_event_id", sa.Text, primary_key=True),
    sa.Column("organization_id", UUID(as_uuid=True), nullable=False),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("received_at", _UTC, nullable=False, server_default=sa.func.now()),
)

receipts = sa.Table(
    "receipts",
    metadata,
    # One per completed paid purchase: the primary key makes a replayed webhook harmless.
    sa.Column("transaction_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("email", sa.Text, nullable=False),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("next_attempt_at", _UTC, nullable=False, server_default=sa.func.now()),
    sa.Column("last_error", sa.Text),
    sa.Column("sent_at", _UTC),
    _now(),
    # The addressee of a mail that belongs to no payment (0009).
    sa.Column("user_id", sa.Text),
)

leads = sa.Table(
    "leads",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("user_id", sa.Text, nullable=False, unique=True),
    sa.Column("email", sa.Text),
    sa.Column("source", sa.Text, nullable=False),
    _now(),
)

organization_leads = sa.Table(
    "organization_leads",
    metadata,
    sa.Column("organization_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("lead_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("membership_id", UUID(as_uuid=True)),
    sa.Column("source", sa.Text, nullable=False),
    _now(),
)

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("user_id", sa.Text, primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("request_fingerprint", sa.Text, nullable=False),
    sa.Column("status_code", sa.Integer, nullable=False),
    sa.Column("response", JSONB, nullable=False),
    _now(),
)

custom_course_offers = sa.Table(
    "custom_course_offers",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("organization_id", UUID(as_uuid=True), nullable=False),
    sa.Column("code", sa.String(6), nullable=False, unique=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("price_in_cents", sa.Integer, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    _now(),
)

custom_course_purchases = sa.Table(
    "custom_course_purchases",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("offer_id", UUID(as_uuid=True), nullable=False),
    sa.Column("organization_id", UUID(as_uuid=True), nullable=False),
    sa.Column("user_id", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),  # pending | paid | failed | refunded
    sa.Column("transaction_id", UUID(as_uuid=True)),
    sa.Column("version", sa.Integer, nullable=False),
    _now(),
)

# --- sellers' payment settings (migration 0005) --------------------------------------------

# Each organization's connected account at the payment provider, as the provider last said.
payment_accounts = sa.Table(
    "payment_accounts",
    metadata,
    sa.Column("organization_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("provider", sa.Text, nullable=False),
    sa.Column("account_id", sa.Text, nullable=False),
    sa.Column("charges_enabled", sa.Boolean, nullable=False),
    sa.Column("payouts_enabled", sa.Boolean, nullable=False),
    sa.Column("details_submitted", sa.Boolean, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    _now(),
    sa.Column("updated_at", _UTC, nullable=False, server_default=sa.func.now()),
    sa.UniqueConstraint("provider", "account_id", name="uq_payment_accounts_account"),
)

# The URL prefixes an organization's checkouts may send buyers back to.
return_url_allowlists = sa.Table(
    "return_url_allowlists",
    metadata,
    sa.Column("organization_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("urls", ARRAY(sa.Text), nullable=False),
    sa.Column("updated_by", sa.Text, nullable=False),
    sa.Column("updated_at", _UTC, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
)

# --- the sandbox payment provider (stands in for an external one) -------------------------

# The sandbox's connected accounts, one per organization that started onboarding.
sandbox_accounts = sa.Table(
    "sandbox_accounts",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("organization_id", UUID(as_uuid=True), nullable=False),
    sa.Column("business_name", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),  # onboarding | enabled
    sa.Column("return_url", sa.Text),
    sa.Column("refresh_url", sa.Text),
    sa.Column("link_expires_at", _UTC),
    _now(),
)

sandbox_sessions = sa.Table(
    "sandbox_sessions",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("organization_id", UUID(as_uuid=True), nullable=False),
    sa.Column("seller_name", sa.Text, nullable=False),
    sa.Column("seller_logo_url", sa.Text),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("amount_in_cents", sa.Integer, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("metadata", JSONB, nullable=False),
    sa.Column("status", sa.Text, nullable=False),  # open | paid | declined | expired | refunded
    sa.Column("expires_at", _UTC, nullable=False),
    _now(),
    # The seller's account, the platform's fee and the return URLs (migration 0005).
    sa.Column("account_id", sa.Text),
    sa.Column("application_fee_in_cents", sa.Integer, nullable=False, server_default="0"),
    sa.Column("success_url", sa.Text),
    sa.Column("cancel_url", sa.Text),
)

sandbox_deliveries = sa.Table(
    "sandbox_webhook_deliveries",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),  # the webhook-id
    sa.Column("organization_id", UUID(as_uuid=True), nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("next_attempt_at", _UTC, nullable=False, server_default=sa.func.now()),
    sa.Column("last_status", sa.Integer),
    sa.Column("last_error", sa.Text),
    sa.Column("delivered_at", _UTC),
    sa.Column("gave_up_at", _UTC),
    # traceparent/tracestate of the request that queued it (migration 0003); null: none
    sa.Column("trace_context", JSONB),
    _now(),
)

# --- coupons (migration 0007) ----------------------------------------------------------------

coupons = sa.Table(
    "coupons",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("organization_id", UUID(as_uuid=True), nullable=False),
    sa.Column("code", sa.Text, nullable=False),  # upper case
    sa.Column("percent_off", sa.Integer),
    sa.Column("amount_off_cents", sa.Integer),
    sa.Column("course_ids", ARRAY(UUID(as_uuid=True))),  # null: every course
    sa.Column("valid_from", _UTC),
    sa.Column("valid_until", _UTC),
    sa.Column("max_redemptions", sa.Integer),
    sa.Column("max_per_buyer", sa.Integer),
    sa.Column("created_by", sa.Text, nullable=False),
    _now(),
    sa.UniqueConstraint("organization_id", "code", name="uq_coupons_organization_code"),
    sa.CheckConstraint(
        "(percent_off IS NULL) <> (amount_off_cents IS NULL)", name="ck_coupons_one_discount"
    ),
)

# One row per checkout that used a coupon; whether it holds a place under the caps follows
# from its payment's status (domain.coupons). A free one (no payment) holds it at once.
coupon_redemptions = sa.Table(
    "coupon_redemptions",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column(
        "coupon_id",
        UUID(as_uuid=True),
        sa.ForeignKey(f"{SCHEMA}.coupons.id"),
        nullable=False,
    ),
    sa.Column("user_id", sa.Text, nullable=False),
    sa.Column("course_id", UUID(as_uuid=True), nullable=False),
    sa.Column("entitlement_id", UUID(as_uuid=True), nullable=False),
    sa.Column("payment_transaction_id", UUID(as_uuid=True), unique=True),
    sa.Column("price_in_cents", sa.Integer, nullable=False),
    sa.Column("discount_in_cents", sa.Integer, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    _now(),
    sa.Index("ix_coupon_redemptions_coupon_user", "coupon_id", "user_id"),
)

# A bulk grant run in the background (migration 0010): its file's rows, the results of the rows
# done so far (appended a chunk at a time with ``processed``), and its runner's lease.
bulk_grant_jobs = sa.Table(
    "bulk_grant_jobs",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("organization_id", UUID(as_uuid=True), nullable=False),
    sa.Column("course_id", UUID(as_uuid=True), nullable=False),
    sa.Column("staff_id", sa.Text, nullable=False),
    sa.Column("dry_run", sa.Boolean, nullable=False),
    sa.Column("status", sa.Text, nullable=False),  # queued | running | done
    sa.Column("total", sa.Integer, nullable=False),
    sa.Column("processed", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("rows", JSONB, nullable=False),
    sa.Column("results", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
    sa.Column("lease_until", _UTC),
    sa.Column("created_at", _UTC, nullable=False),
    sa.Column("finished_at", _UTC),
    sa.CheckConstraint("status IN ('queued', 'running', 'done')", name="ck_bulk_grant_jobs_status"),
    sa.Index("ix_bulk_grant_jobs_open", "created_at", postgresql_where="status <> 'done'"),
)

# --- gifts (migration 0011) ------------------------------------------------------------------

# A course bought for someone else: the payer's payment, the recipient's address, the claim
# link's token (only its SHA-256, hex), and once claimed the claimer's entitlement.
gifts = sa.Table(
    "gifts",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("organization_id", UUID(as_uuid=True), nullable=False),
    sa.Column("course_id", UUID(as_uuid=True), nullable=False),
    sa.Column("course_name", sa.Text, nullable=False),
    sa.Column("payer_user_id", sa.Text, nullable=False),
    sa.Column("payer_email", sa.Text),
    sa.Column("recipient_email", sa.Text, nullable=False),
    # pending | paid | claimed | failed | cancelled | refunded
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("payment_transaction_id", UUID(as_uuid=True), nullable=False),
    sa.Column("claim_token_hash", sa.Text),
    sa.Column("entitlement_id", UUID(as_uuid=True)),
    sa.Column("claimed_by", sa.Text),
    sa.Column("claimed_at", _UTC),
    sa.Column("sent_at", _UTC),
    sa.Column("send_count", sa.Integer, nullable=False, server_default=sa.text("0")),
    _now(),
    # the plan's access duration when bought: the claimer's access lasts that long
    sa.Column("access_days", sa.Integer),
    sa.UniqueConstraint("payment_transaction_id", name="uq_gifts_payment_transaction_id"),
    sa.UniqueConstraint("claim_token_hash", name="uq_gifts_claim_token_hash"),
    sa.Index("ix_gifts_payer_created", "payer_user_id", "created_at"),
)

# --- bundles (migration 0012) ----------------------------------------------------------------

bundles = sa.Table(
    "bundles",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("organization_id", UUID(as_uuid=True), nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("price_in_cents", sa.Integer, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("created_by", sa.Text, nullable=False),
    _now(),
    sa.CheckConstraint("price_in_cents >= 0", name="ck_bundles_price"),
    sa.Index("ix_bundles_organization_id", "organization_id"),
)

bundle_courses = sa.Table(
    "bundle_courses",
    metadata,
    sa.Column(
        "bundle_id", UUID(as_uuid=True), sa.ForeignKey(f"{SCHEMA}.bundles.id"), primary_key=True
    ),
    sa.Column("course_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
)

# One row per checkout of a bundle: what it charged and its one payment (null: free).
bundle_purchases = sa.Table(
    "bundle_purchases",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column(
        "bundle_id", UUID(as_uuid=True), sa.ForeignKey(f"{SCHEMA}.bundles.id"), nullable=False
    ),
    sa.Column("organization_id", UUID(as_uuid=True), nullable=False),
    sa.Column("user_id", sa.Text, nullable=False),
    sa.Column("amount_in_cents", sa.Integer, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("payment_transaction_id", UUID(as_uuid=True), unique=True),
    # the bundle's courses left out because the buyer owned them
    sa.Column("excluded_course_ids", ARRAY(UUID(as_uuid=True)), nullable=False),
    _now(),
)

# The entitlements a bundle purchase opened: the purchase is their source.
bundle_purchase_items = sa.Table(
    "bundle_purchase_items",
    metadata,
    sa.Column(
        "bundle_purchase_id",
        UUID(as_uuid=True),
        sa.ForeignKey(f"{SCHEMA}.bundle_purchases.id"),
        primary_key=True,
    ),
    sa.Column("course_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("entitlement_id", UUID(as_uuid=True), nullable=False),
    sa.Column("list_price_in_cents", sa.Integer, nullable=False),
    sa.Index("ix_bundle_purchase_items_entitlement_id", "entitlement_id"),
)
