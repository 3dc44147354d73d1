"""Commerce's HTTP routes: staff, sellers' payment settings, checkout, payment webhooks, the
pages a buyer returns to, and the sandbox provider's hosted pages."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import MediaType, Request, Response, get, patch, post, put
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, HeaderParameter, JSONBody, QueryParameter
from litestar.response import Redirect

from coursemesh.chassis.auth import (
    Principal,
    authenticate,
    authenticated,
    bearer_token,
    principal_of,
)
from coursemesh.chassis.errors import BadRequest, DomainError, NotFound
from coursemesh.chassis.fastroute import FastRoute
from coursemesh.chassis.openapi import problems
from coursemesh.chassis.paging import Offset
from coursemesh.commerce.adapters.sandbox import Settled
from coursemesh.commerce.app.bundles import BundleCheckoutResponse, BundleDraft
from coursemesh.commerce.app.checkout import NO_RETURN, CheckoutResponse, ReturnRequest
from coursemesh.commerce.app.coupons import CouponDraft
from coursemesh.commerce.app.history import EntitlementNotFound, HistoryPage
from coursemesh.commerce.app.metrics import webhook_outcomes
from coursemesh.commerce.app.ports import (
    CouponSummary,
    PaymentProviderRefused,
    PaymentProviderUnavailable,
    UserDirectoryUnavailable,
    WebhookRejected,
)
from coursemesh.commerce.app.seller_payments import Allowlist
from coursemesh.commerce.app.staff import GrantTarget, UserNotFound
from coursemesh.commerce.bootstrap import Runtime, runtime
from coursemesh.commerce.domain.accounts import (
    ConnectedAccountMissing,
    PaymentAccount,
    PaymentsNotEnabled,
    UnknownConnectedAccount,
    account_status,
)
from coursemesh.commerce.domain.bulk_grants import CsvInvalid, outcome_counts, parse_grant_csv
from coursemesh.commerce.domain.bundles import (
    Bundle,
    BundleCourseUnpriced,
    BundleCurrencyMixed,
    BundleForeignCourse,
    BundleInvalid,
    BundleNotFound,
)
from coursemesh.commerce.domain.checkout import Buyer, PreviousPaymentCompleted
from coursemesh.commerce.domain.coupons import (
    CouponCodeTaken,
    CouponExhausted,
    CouponInvalid,
    CouponLimitPerBuyer,
    CouponNotActive,
    CouponNotFound,
    CouponRefused,
)
from coursemesh.commerce.domain.entitlements import CourseAlreadyOwned, IllegalTransition
from coursemesh.commerce.domain.gifts import (
    Gift,
    GiftAlreadyClaimed,
    GiftCancelled,
    GiftCheckoutPending,
    GiftCourseFree,
    GiftNotFound,
    GiftNotPaid,
    GiftOwnPurchase,
    GiftRecipientInvalid,
)
from coursemesh.commerce.domain.refunds import (
    NothingToRefund,
    RefundsNotOffered,
    RefundWindowClosed,
)
from coursemesh.commerce.domain.return_urls import ReturnUrlInvalid, ReturnUrlNotAllowed
from coursemesh.commerce.http import pages
from coursemesh.commerce.http.schemas import (
    AccessHistoryEntry,
    AccessHistoryPage,
    AllowlistBody,
    AllowlistView,
    BulkGrantJobView,
    BulkGrantRowView,
    BulkGrantView,
    BundleBody,
    BundlePage,
    BundleView,
    CheckoutBody,
    CouponBody,
    CouponPage,
    CouponView,
    EntitlementPage,
    EntitlementView,
    GiftClaimView,
    GiftPage,
    GiftView,
    GrantBody,
    LeadPage,
    LeadView,
    OfferBody,
    OfferView,
    OnboardingBody,
    OnboardingView,
    PaymentAccountView,
    PlanView,
    PriceBody,
    PublicBundleCourse,
    PublicBundleView,
    QuoteCoupon,
    QuoteView,
    RefundRequestBody,
    RefundRequestView,
    RevokeBody,
    WebhookAck,
)

IdempotencyKey = Annotated[
    str | None, HeaderParameter(name="Idempotency-Key", min_length=1, max_length=255)
]
Limit = Annotated[int, QueryParameter(name="limit", ge=1, le=100)]
ORG = "/organizations/{org_id:uuid}"
# A payment id of ours (a UUID) or the provider's session id: letters, digits, `_` and `-`
# only, so that no text PostgreSQL cannot store (U+0000) reaches the lookup.
CouponQuery = Annotated[str | None, QueryParameter(name="coupon", min_length=1, max_length=64)]
SessionQuery = Annotated[
    str, QueryParameter(name="session", min_length=1, max_length=255, pattern=r"^[A-Za-z0-9_-]+$")
]

# The refusals of the use cases (coursemesh.commerce.app, .domain), for the routes' documents.
NOT_SYNCED = (409, "ORGANIZATION_NOT_SYNCED")
NO_COURSE = (404, "COURSE_NOT_FOUND")
ADMIN_ONLY = (403, "ORGANIZATION_ADMIN_REQUIRED")
RETURN_URLS = (ReturnUrlInvalid, ReturnUrlNotAllowed)
PROVIDER = (PaymentProviderUnavailable, PaymentProviderRefused)
COUPON_REFUSALS = (
    CouponNotFound,
    CouponRefused,
    CouponNotActive,
    CouponExhausted,
    CouponLimitPerBuyer,
)
CHECKOUT_REFUSALS = (
    CourseAlreadyOwned,
    *COUPON_REFUSALS,
    PaymentsNotEnabled,
    PreviousPaymentCompleted,
    IllegalTransition,
    (422, "IDEMPOTENCY_KEY_REUSED"),
    *RETURN_URLS,
    *PROVIDER,
)
GIFT_CHECKOUT_REFUSALS = (GiftRecipientInvalid, GiftCourseFree)
WEBHOOK_REFUSALS = problems(
    WebhookRejected,
    (400, "WEBHOOK_TIMESTAMP_STALE"),
    (400, "WEBHOOK_MALFORMED"),
    (403, "WEBHOOK_CROSS_ORG"),
    (404, "WEBHOOK_ENDPOINT_NOT_IN_USE"),
    (404, "UNKNOWN_PAYMENT"),
    (404, "UNKNOWN_PURCHASE"),
    (404, "UNKNOWN_ENTITLEMENT"),
    (404, "UNKNOWN_GIFT"),
    UnknownConnectedAccount,
    (409, "WEBHOOK_SESSION_NOT_SETTLED"),
    ConnectedAccountMissing,
    (422, "WEBHOOK_PAYMENT_MISMATCH"),
    (422, "WEBHOOK_AMOUNT_MISMATCH"),
)
#: The pages a buyer returns to answer an unknown session with a page, not a problem.
NO_CHECKOUT_PAGE = {
    404: ResponseSpec(
        data_container=str,
        media_type=MediaType.HTML,
        description="No checkout has this session: a page saying so",
        generate_examples=False,
    )
}
#: The sandbox's forms answer with the next page to GET once the step is settled.
SEE_OTHER = {
    303: ResponseSpec(
        data_container=None,
        description="Settled: `Location` is the next page (the return URL, or the page again)",
        generate_examples=False,
    )
}

# Bodies that may be absent: an empty body is "nothing asked for", a present one is decoded
# strictly (unknown fields, wrong types: 400).
CHECKOUT = FastRoute(body=CheckoutBody)
ONBOARDING = FastRoute(body=OnboardingBody)


async def _gift_recipient(request: Request[Any, Any, Any]) -> str | None:
    """The address a checkout's body buys the course for, as a gift (None: not a gift)."""
    raw = await request.body()
    return CHECKOUT.decode(raw).gift_recipient_email if raw.strip() else None


async def _checkout_body(request: Request[Any, Any, Any]) -> tuple[ReturnRequest, str | None]:
    """The return URLs and the coupon code a checkout's body asks for."""
    raw = await request.body()
    if not raw.strip():
        return NO_RETURN, None
    body = CHECKOUT.decode(raw)
    returns = (
        NO_RETURN
        if body.success_url is None and body.cancel_url is None
        else ReturnRequest(body.success_url, body.cancel_url)
    )
    return returns, body.coupon_code


# --- staff ------------------------------------------------------------------------------


@patch(
    f"{ORG}/courses/{{course_id:uuid}}/price",
    guards=[authenticated],
    opt=problems(NO_COURSE, NOT_SYNCED),
)
async def set_price(
    request: Request[Any, Any, Any],
    org_id: FromPath[uuid.UUID],
    course_id: FromPath[uuid.UUID],
    data: JSONBody[PriceBody],
    principal: NamedDependency[Principal],
) -> PlanView:
    window, days = data.refund_window_days, data.access_days
    plan = await runtime(request).staff.set_price(
        org_id,
        course_id,
        principal.sub,
        data.price_in_cents,
        data.is_active,
        None if isinstance(window, msgspec.UnsetType) else window,
        keep_refund_window=isinstance(window, msgspec.UnsetType),
        access_days=None if isinstance(days, msgspec.UnsetType) else days,
        keep_access_days=isinstance(days, msgspec.UnsetType),
    )
    return PlanView(
        plan_id=plan.id,
        course_id=plan.course_id,
        organization_id=plan.organization_id,
        price_in_cents=plan.price_in_cents,
        currency=plan.currency,
        is_active=plan.is_active,
        refund_window_days=plan.refund_window_days,
        access_days=plan.access_days,
    )


@post(
    f"{ORG}/entitlements/{{entitlement_id:uuid}}/revoke",
    guards=[authenticated],
    status_code=200,
    opt=problems((404, "ENTITLEMENT_NOT_FOUND"), IllegalTransition),
)
async def revoke(
    request: Request[Any, Any, Any],
    org_id: FromPath[uuid.UUID],
    entitlement_id: FromPath[uuid.UUID],
    data: JSONBody[RevokeBody],
    principal: NamedDependency[Principal],
) -> EntitlementView:
    ent = await runtime(request).staff.revoke_entitlement(
        org_id, entitlement_id, principal.sub, data.reason
    )
    return EntitlementView.of(ent)


@post(
    f"{ORG}/courses/{{course_id:uuid}}/grants",
    guards=[authenticated],
    description="Give a user the course without a payment (staff): a new entitlement, or their "
    "revoked one active again; audited with the staff member and the reason. Revoke it as any "
    "entitlement.",
    opt=problems(
        NO_COURSE, CourseAlreadyOwned, IllegalTransition, UserNotFound, UserDirectoryUnavailable
    ),
)
async def grant_course(
    request: Request[Any, Any, Any],
    org_id: FromPath[uuid.UUID],
    course_id: FromPath[uuid.UUID],
    data: JSONBody[GrantBody],
    principal: NamedDependency[Principal],
) -> EntitlementView:
    if (data.user_id is None) == (data.email is None):
        raise BadRequest("Give exactly one of userId and email", code="VALIDATION_FAILED")
    ent = await runtime(request).staff.grant(
        org_id, course_id, principal.sub, GrantTarget(data.user_id, data.email), data.reason
    )
    return EntitlementView.of(ent)


BulkReason = Annotated[str | None, QueryParameter(name="reason", min_length=1, max_length=500)]


@post(
    f"{ORG}/courses/{{course_id:uuid}}/grants/bulk",
    guards=[authenticated],
    status_code=200,
    description="Grant the course to every user of a CSV file (staff): a header line naming "
    "`userId` and optionally `reason` (a row without one takes the `reason` parameter), at "
    "most 10,000 users. Each row goes through the single grant's rule and gets its outcome; "
    "`dryRun=true` says what each row would do and writes nothing; uploading a file again "
    "changes nothing for the users it already gave the course to.",
    opt=problems(NO_COURSE, CsvInvalid),
)
async def bulk_grant_course(
    request: Request[Any, Any, Any],
    org_id: FromPath[uuid.UUID],
    course_id: FromPath[uuid.UUID],
    principal: NamedDependency[Principal],
    dry_run: Annotated[bool, QueryParameter(name="dryRun")] = False,
    reason: BulkReason = None,
) -> BulkGrantView:
    rows = parse_grant_csv(await request.body(), reason)
    results = await runtime(request).bulk_grants.run(
        org_id, course_id, principal.sub, rows, dry_run=dry_run
    )
    return BulkGrantView(
        dry_run=dry_run,
        total=len(results),
        counts=outcome_counts(results),
        rows=[BulkGrantRowView.of(r) for r in results],
    )


BULK_JOBS = f"{ORG}/courses/{{course_id:uuid}}/grants/bulk/jobs"


@post(
    BULK_JOBS,
    guards=[authenticated],
    status_code=202,
    description="The same file as `grants/bulk`, run in the background for a large file: "
    "answers at once with the job and its `Location`, whose `processed`, `total` and "
    "`percent` show the progress while the rows are granted a chunk at a time.",
    opt=problems(NO_COURSE, CsvInvalid),
)
async def start_bulk_grant_job(
    request: Request[Any, Any, Any],
    org_id: FromPath[uuid.UUID],
    course_id: FromPath[uuid.UUID],
    principal: NamedDependency[Principal],
    dry_run: Annotated[bool, QueryParameter(name="dryRun")] = False,
    reason: BulkReason = None,
) -> Response[BulkGrantJobView]:
    rows = parse_grant_csv(await request.body(), reason)
    job = await runtime(request).bulk_grants.start(
        org_id, course_id, principal.sub, rows, dry_run=dry_run
    )
    return Response(
        BulkGrantJobView.of(job, []),
        status_code=202,
        headers={
            "Location": f"/organizations/{org_id}/courses/{course_id}/grants/bulk/jobs/{job.id}"
        },
    )


@get(
    f"{BULK_JOBS}/{{job_id:uuid}}",
    guards=[authenticated],
    description="A background bulk grant: its progress, the outcomes so far and, once "
    "`status` is `done`, every row's result.",
    opt=problems(NO_COURSE, (404, "BULK_GRANT_JOB_NOT_FOUND")),
)
async def bulk_grant_job(
    request: Request[Any, Any, Any],
    org_id: FromPath[uuid.UUID],
    course_id: FromPath[uuid.UUID],
    job_id: FromPath[uuid.UUID],
    principal: NamedDependency[Principal],
) -> BulkGrantJobView:
    job, results = await runtime(request).bulk_grants.job(org_id, course_id, principal.sub, job_id)
    return BulkGrantJobView.of(job, results)


@post(
    f"{ORG}/custom-course-offers",
    guards=[authenticated],
    opt=problems(NOT_SYNCED, (409, "OFFER_CODE_TAKEN")),
)
async def create_offer(
    request: Request[Any, Any, Any],
    org_id: FromPath[uuid.UUID],
    data: JSONBody[OfferBody],
    principal: NamedDependency[Principal],
) -> OfferView:
    offer = await runtime(request).staff.create_offer(
        org_id, principal.sub, data.code, data.title, data.price_in_cents
    )
    return OfferView(
        offer_id=offer.id,
        organization_id=offer.organization_id,
        code=offer.code,
        title=offer.title,
        price_in_cents=offer.price_in_cents,
        currency=offer.currency,
    )


@get(
    f"{ORG}/courses/{{course_id:uuid}}/entitlements",
    guards=[authenticated],
    opt=problems(NO_COURSE),
)
async def list_course_entitlements(
    request: Request[Any, Any, Any],
    org_id: FromPath[uuid.UUID],
    course_id: FromPath[uuid.UUID],
    principal: NamedDependency[Principal],
    limit: Limit = 50,
    offset: Offset = 0,
) -> EntitlementPage:
    ents, total = await runtime(request).staff.course_entitlements(
        org_id, course_id, principal.sub, limit, offset
    )
    return EntitlementPage([EntitlementView.of(e) for e in ents], total, limit, offset)


@get(f"{ORG}/leads", guards=[authenticated])
async def list_leads(
    request: Request[Any, Any, Any],
    org_id: FromPath[uuid.UUID],
    principal: NamedDependency[Principal],
    limit: Limit = 50,
    offset: Offset = 0,
) -> LeadPage:
    entries, total = await runtime(request).staff.organization_leads(
        org_id, principal.sub, limit, offset
    )
    items = [
        LeadView(
            lead_id=e.lead_id,
            user_id=e.user_id,
            email=e.email,
            source=e.source,
            membership_id=e.membership_id,
            linked_at=e.linked_at,
        )
        for e in entries
    ]
    return LeadPage(items, total, limit, offset)


def _history_page(page: HistoryPage) -> AccessHistoryPage:
    return AccessHistoryPage(
        [AccessHistoryEntry.of(e) for e in page.items], page.total, page.limit, page.offset
    )


@get(
    f"{ORG}/entitlements/{{entitlement_id:uuid}}/history",
    guards=[authenticated],
    description="Why the buyer gained or lost access: every step of the entitlement, oldest "
    "first, with who took it and the payment it is about.",
    opt=problems(EntitlementNotFound),
)
async def entitlement_history(
    request: Request[Any, Any, Any],
    org_id: FromPath[uuid.UUID],
    entitlement_id: FromPath[uuid.UUID],
    principal: NamedDependency[Principal],
    limit: Limit = 50,
    offset: Offset = 0,
) -> AccessHistoryPage:
    page = await runtime(request).access_history.entitlement_history(
        org_id, entitlement_id, principal.sub, offset, limit
    )
    return _history_page(page)


# --- sellers' payment settings ------------------------------------------------------------


def _account_view(
    org_id: uuid.UUID, provider: str, account: PaymentAccount | None
) -> PaymentAccountView:
    return PaymentAccountView(
        organization_id=org_id,
        provider=provider,
        status=account_status(account),
        account_id=account.account_id if account else None,
        charges_enabled=bool(account and account.charges_enabled),
        payouts_enabled=bool(account and account.payouts_enabled),
        details_submitted=bool(account and account.details_submitted),
    )


@post(
    f"{ORG}/payments/onboarding",
    guards=[authenticated],
    status_code=200,
    opt=problems(
        ADMIN_ONLY,
        NOT_SYNCED,
        (409, "PAYMENT_ACCOUNT_AT_ANOTHER_PROVIDER"),
        *RETURN_URLS,
        *PROVIDER,
    ),
    **ONBOARDING.route_options(),
)
async def start_onboarding(
    request: Request[Any, Any, Any], org_id: FromPath[uuid.UUID]
) -> OnboardingView:
    principal = principal_of(request)
    raw = await request.body()
    body = ONBOARDING.decode(raw) if raw.strip() else OnboardingBody()
    rt = runtime(request)
    started = await rt.seller_payments.onboard(
        org_id, principal.sub, body.return_url, body.refresh_url
    )
    return OnboardingView(
        url=started.link.url,
        expires_at=started.link.expires_at,
        account=_account_view(org_id, rt.provider.name, started.account),
    )


@get(f"{ORG}/payments/account", guards=[authenticated])
async def payment_account(
    request: Request[Any, Any, Any],
    org_id: FromPath[uuid.UUID],
    principal: NamedDependency[Principal],
) -> PaymentAccountView:
    rt = runtime(request)
    account = await rt.seller_payments.account(org_id, principal.sub)
    return _account_view(org_id, rt.provider.name, account)


def _allowlist_view(allowlist: Allowlist) -> AllowlistView:
    return AllowlistView(organization_id=allowlist.organization_id, urls=list(allowlist.urls))


@put(
    f"{ORG}/return-url-allowlist",
    guards=[authenticated],
    opt=problems(ADMIN_ONLY, ReturnUrlInvalid),
)
async def set_return_allowlist(
    request: Request[Any, Any, Any],
    org_id: FromPath[uuid.UUID],
    data: JSONBody[AllowlistBody],
    principal: NamedDependency[Principal],
) -> AllowlistView:
    allowlist = await runtime(request).seller_payments.set_return_allowlist(
        org_id, principal.sub, data.urls
    )
    return _allowlist_view(allowlist)


@get(f"{ORG}/return-url-allowlist", guards=[authenticated])
async def get_return_allowlist(
    request: Request[Any, Any, Any],
    org_id: FromPath[uuid.UUID],
    principal: NamedDependency[Principal],
) -> AllowlistView:
    return _allowlist_view(
        await runtime(request).seller_payments.return_allowlist(org_id, principal.sub)
    )


# --- buyers -------------------------------------------------------------------------------


@post(
    "/courses/{course_id:uuid}/checkout",
    guards=[authenticated],
    description="Buy the course: free at once, or through the hosted payment page. With "
    "`giftRecipientEmail` the course is bought as a gift for that address: a gift and its "
    "payment, no entitlement; once paid the recipient is mailed a claim link (no coupon, no "
    "free course).",
    opt=problems(NO_COURSE, (400, "NO_ACTIVE_PLAN"), *CHECKOUT_REFUSALS, *GIFT_CHECKOUT_REFUSALS),
    **CHECKOUT.route_options(),
)
async def checkout_course(
    request: Request[Any, Any, Any],
    course_id: FromPath[uuid.UUID],
    idempotency_key: IdempotencyKey = None,
) -> CheckoutResponse:
    # The busiest write: no dependencies (Litestar resolves two or more through an anyio task
    # group, which costs more than a free checkout's own work).
    principal = principal_of(request)
    returns, coupon_code = await _checkout_body(request)
    recipient = await _gift_recipient(request)
    if recipient is not None:
        return await runtime(request).checkout.gift(
            course_id,
            Buyer(principal.sub, principal.email),
            recipient,
            idempotency_key,
            returns,
            coupon_code,
        )
    return await runtime(request).checkout.course(
        course_id, Buyer(principal.sub, principal.email), idempotency_key, returns, coupon_code
    )


@post(
    "/custom-course-offers/{code:str}/checkout",
    guards=[authenticated],
    opt=problems((404, "OFFER_NOT_FOUND"), *CHECKOUT_REFUSALS),
    **CHECKOUT.route_options(),
)
async def checkout_offer(
    request: Request[Any, Any, Any],
    code: FromPath[str],
    idempotency_key: IdempotencyKey = None,
) -> CheckoutResponse:
    principal = principal_of(request)
    returns, coupon_code = await _checkout_body(request)
    if coupon_code is not None:
        raise CouponRefused("Coupons apply to course checkouts, not to custom course offers")
    if await _gift_recipient(request) is not None:
        raise GiftRecipientInvalid("Gifts apply to course checkouts, not to custom course offers")
    return await runtime(request).checkout.offer(
        code, Buyer(principal.sub, principal.email), idempotency_key, returns
    )


@get(
    "/me/courses/{course_id:uuid}/history",
    guards=[authenticated],
    description="Why the caller has or lost access to the course: every step of their "
    "entitlement, oldest first (a staff member's step names no person).",
    opt=problems(EntitlementNotFound),
)
async def my_course_history(
    request: Request[Any, Any, Any],
    course_id: FromPath[uuid.UUID],
    principal: NamedDependency[Principal],
    limit: Limit = 50,
    offset: Offset = 0,
) -> AccessHistoryPage:
    page = await runtime(request).access_history.my_course_history(
        principal.sub, course_id, offset, limit
    )
    return _history_page(page)


REFUND = FastRoute(body=RefundRequestBody)


@post(
    "/me/courses/{course_id:uuid}/refund-request",
    guards=[authenticated],
    status_code=202,
    description="The caller's money back for a course bought with a refund window, while it is "
    "open: the refund is asked of the payment provider at once, and access ends when the "
    "provider confirms it. Asking again answers the first request.",
    opt=problems(EntitlementNotFound, NothingToRefund, RefundsNotOffered, RefundWindowClosed),
    **REFUND.route_options(),
)
async def request_refund(
    request: Request[Any, Any, Any], course_id: FromPath[uuid.UUID]
) -> RefundRequestView:
    principal = principal_of(request)
    raw = await request.body()
    reason = REFUND.decode(raw).reason if raw.strip() else None
    asked = await runtime(request).refunds.request(principal.sub, course_id, reason)
    return RefundRequestView(
        payment_id=asked.payment_id,
        amount_in_cents=asked.amount_in_cents,
        currency=asked.currency,
        status="requested",
        requested_at=asked.requested_at,
        window_closes_at=asked.window_closes_at,
    )


# --- coupons --------------------------------------------------------------------------------


def _coupon_view(summary: CouponSummary) -> CouponView:
    c = summary.coupon
    return CouponView(
        coupon_id=c.id,
        organization_id=c.organization_id,
        code=c.code,
        percent_off=c.percent_off,
        amount_off_cents=c.amount_off_cents,
        course_ids=None if c.course_ids is None else list(c.course_ids),
        valid_from=c.valid_from,
        valid_until=c.valid_until,
        max_redemptions=c.max_redemptions,
        max_per_buyer=c.max_per_buyer,
        redemptions=summary.redeemed,
        reserved=summary.reserved,
        created_at=c.created_at,
    )


@post(
    f"{ORG}/coupons",
    guards=[authenticated],
    description="A coupon of the organization (staff): a percentage or a fixed amount off, "
    "for some courses or all, in a validity window, with caps on its uses.",
    opt=problems(CouponInvalid, CouponCodeTaken),
)
async def create_coupon(
    request: Request[Any, Any, Any],
    org_id: FromPath[uuid.UUID],
    data: JSONBody[CouponBody],
    principal: NamedDependency[Principal],
) -> CouponView:
    summary = await runtime(request).coupons.create(
        org_id,
        principal.sub,
        CouponDraft(
            code=data.code,
            percent_off=data.percent_off,
            amount_off_cents=data.amount_off_cents,
            course_ids=data.course_ids,
            valid_from=data.valid_from,
            valid_until=data.valid_until,
            max_redemptions=data.max_redemptions,
            max_per_buyer=data.max_per_buyer,
        ),
    )
    return _coupon_view(summary)


@get(f"{ORG}/coupons", guards=[authenticated])
async def list_coupons(
    request: Request[Any, Any, Any],
    org_id: FromPath[uuid.UUID],
    principal: NamedDependency[Principal],
    limit: Limit = 50,
    offset: Offset = 0,
) -> CouponPage:
    found, total = await runtime(request).coupons.listed(org_id, principal.sub, offset, limit)
    return CouponPage([_coupon_view(s) for s in found], total, limit, offset)


@get(
    "/courses/{course_id:uuid}/quote",
    description="A course's price before paying, with a coupon when `coupon` names one. "
    "Anyone may ask; with a bearer token the caller's own cap on the coupon is checked too.",
    opt=problems(NO_COURSE, (400, "NO_ACTIVE_PLAN"), *COUPON_REFUSALS),
)
async def course_quote(
    request: Request[Any, Any, Any],
    course_id: FromPath[uuid.UUID],
    coupon: CouponQuery = None,
) -> QuoteView:
    caller = await authenticate(request) if bearer_token(request) is not None else None
    q = await runtime(request).coupons.quote(course_id, coupon, caller.sub if caller else None)
    applied = q.coupon
    return QuoteView(
        course_id=course_id,
        currency=q.currency,
        price_in_cents=q.price_in_cents,
        discount_in_cents=q.discount_in_cents,
        total_in_cents=q.total_in_cents,
        coupon=(
            None
            if applied is None
            else QuoteCoupon(applied.code, applied.percent_off, applied.amount_off_cents)
        ),
    )


# --- the pages a buyer returns to ---------------------------------------------------------


@get("/checkout/success", media_type=MediaType.HTML, responses=NO_CHECKOUT_PAGE)
async def checkout_success(request: Request[Any, Any, Any], session: SessionQuery) -> Response[str]:
    rt = runtime(request)
    summary = await rt.checkout_lookup.by_session(session)
    return pages.success(summary, library_url=rt.settings.library_url)


@get("/checkout/cancelled", media_type=MediaType.HTML, responses=NO_CHECKOUT_PAGE)
async def checkout_cancelled(
    request: Request[Any, Any, Any], session: SessionQuery
) -> Response[str]:
    return pages.cancelled(await runtime(request).checkout_lookup.by_session(session))


@get("/payments/onboarding/return", media_type=MediaType.HTML)
async def onboarding_returned() -> Response[str]:
    return pages.onboarding_returned()


@get("/payments/onboarding/refresh", media_type=MediaType.HTML)
async def onboarding_expired() -> Response[str]:
    return pages.onboarding_expired()


# --- provider -> commerce -----------------------------------------------------------------


def _endpoint_not_in_use(provider: str) -> NotFound:
    return NotFound(
        f"This webhook endpoint is not in use: the payment provider is {provider}",
        code="WEBHOOK_ENDPOINT_NOT_IN_USE",
    )


@post("/webhooks/payments/{org_id:uuid}", status_code=200, opt=WEBHOOK_REFUSALS)
async def payment_webhook(
    org_id: FromPath[uuid.UUID], request: Request[Any, Any, Any]
) -> WebhookAck:
    """The sandbox's endpoint, one per organization (signed with the organization's secret)."""
    rt = runtime(request)
    if rt.provider.name != "sandbox":
        raise _endpoint_not_in_use(rt.provider.name)
    return await _receive_webhook(rt, request, org_id)


@post("/webhooks/stripe", status_code=200, opt=WEBHOOK_REFUSALS)
async def stripe_webhook(request: Request[Any, Any, Any]) -> WebhookAck:
    """Stripe's one platform endpoint: events on every connected account."""
    rt = runtime(request)
    if rt.provider.name != "stripe":
        raise _endpoint_not_in_use(rt.provider.name)
    return await _receive_webhook(rt, request, None)


async def _receive_webhook(
    rt: Runtime, request: Request[Any, Any, Any], org_id: uuid.UUID | None
) -> WebhookAck:
    """Verify and apply one delivery, counting its outcome (what the provider's dashboard
    shows as delivered or failed, seen from our side)."""
    try:
        event = rt.provider.verify_webhook(org_id, await request.body(), dict(request.headers))
        status = await rt.webhooks.handle(event, org_id)
    except DomainError as exc:
        webhook_outcomes.add(1, provider=rt.provider.name, outcome=exc.code)
        raise
    webhook_outcomes.add(1, provider=rt.provider.name, outcome=status)
    return WebhookAck(status=status)


# --- the sandbox provider's hosted page ---------------------------------------------------


@get("/pay/{session_id:str}", media_type=MediaType.HTML)
async def payment_page(request: Request[Any, Any, Any], session_id: FromPath[str]) -> str:
    return await runtime(request).sandbox_pages.show(session_id)


def _page_or_redirect(settled: Settled) -> Response[str] | Redirect:
    """A form's answer: on to ``redirect`` (303, the browser GETs it), else the page."""
    if settled.redirect:
        return Redirect(settled.redirect, status_code=303)
    return Response(settled.page, media_type=MediaType.HTML)


@post("/pay/{session_id:str}/pay", status_code=200, responses=SEE_OTHER)
async def pay(
    request: Request[Any, Any, Any], session_id: FromPath[str]
) -> Response[str] | Redirect:
    return _page_or_redirect(await runtime(request).sandbox_pages.settle(session_id, paid=True))


@post("/pay/{session_id:str}/decline", status_code=200, responses=SEE_OTHER)
async def decline(
    request: Request[Any, Any, Any], session_id: FromPath[str]
) -> Response[str] | Redirect:
    return _page_or_redirect(await runtime(request).sandbox_pages.settle(session_id, paid=False))


@get("/pay/accounts/{account_id:str}/onboarding", media_type=MediaType.HTML, responses=SEE_OTHER)
async def sandbox_onboarding(
    request: Request[Any, Any, Any], account_id: FromPath[str]
) -> Response[str] | Redirect:
    return _page_or_redirect(await runtime(request).sandbox_pages.onboarding(account_id))


@post("/pay/accounts/{account_id:str}/onboarding", status_code=200, responses=SEE_OTHER)
async def sandbox_submit_onboarding(
    request: Request[Any, Any, Any], account_id: FromPath[str]
) -> Response[str] | Redirect:
    return _page_or_redirect(await runtime(request).sandbox_pages.complete_onboarding(account_id))


# --- gifts ----------------------------------------------------------------------------------


def _gift_view(g: Gift) -> GiftView:
    return GiftView(
        gift_id=g.id,
        course_id=g.course_id,
        course_name=g.course_name,
        organization_id=g.organization_id,
        recipient_email=g.recipient_email,
        status=g.status,
        payment_id=g.payment_transaction_id,
        created_at=g.created_at,
        sent_at=g.sent_at,
        send_count=g.send_count,
        claimed_at=g.claimed_at,
    )


@post(
    "/gifts/{claim_token:str}/claim",
    guards=[authenticated],
    status_code=200,
    description="Claim a gift with the token of its claim link: the course for the signed-in "
    "caller (never the account that paid), audited `gift_claimed`. A link works once; a "
    "resend replaces it.",
    opt=problems(
        GiftNotFound,
        GiftAlreadyClaimed,
        GiftOwnPurchase,
        GiftCancelled,
        GiftNotPaid,
        CourseAlreadyOwned,
        GiftCheckoutPending,
    ),
)
async def claim_gift(
    request: Request[Any, Any, Any],
    # any text: a token that is not one of ours is not found (only its hash is looked up)
    claim_token: FromPath[str],
    principal: NamedDependency[Principal],
) -> GiftClaimView:
    done = await runtime(request).gifts.claim(claim_token, principal.sub)
    return GiftClaimView(
        gift_id=done.gift.id,
        course_id=done.gift.course_id,
        entitlement=EntitlementView.of(done.entitlement),
    )


@get(
    "/me/gifts",
    guards=[authenticated],
    description="The gifts the caller paid for, newest first: course, recipient, status, "
    "when the claim link was sent and when it was claimed.",
)
async def my_gifts(
    request: Request[Any, Any, Any],
    principal: NamedDependency[Principal],
    limit: Limit = 50,
    offset: Offset = 0,
) -> GiftPage:
    found, total = await runtime(request).gifts.mine(principal.sub, offset, limit)
    return GiftPage([_gift_view(g) for g in found], total, limit, offset)


@post(
    "/me/gifts/{gift_id:uuid}/resend",
    guards=[authenticated],
    status_code=200,
    description="Mail the claim link of the caller's paid, unclaimed gift again, with a new "
    "token: the link sent before stops working.",
    opt=problems(GiftNotFound, GiftAlreadyClaimed, GiftCancelled, GiftNotPaid),
)
async def resend_gift(
    request: Request[Any, Any, Any],
    gift_id: FromPath[uuid.UUID],
    principal: NamedDependency[Principal],
) -> GiftView:
    return _gift_view(await runtime(request).gifts.resend(gift_id, principal.sub))


# --- bundles ----------------------------------------------------------------------------------


def _bundle_view(b: Bundle) -> BundleView:
    return BundleView(
        bundle_id=b.id,
        organization_id=b.organization_id,
        name=b.name,
        course_ids=list(b.course_ids),
        price_in_cents=b.price_in_cents,
        currency=b.currency,
        created_at=b.created_at,
    )


@post(
    f"{ORG}/bundles",
    guards=[authenticated],
    description="A bundle of the organization (staff): 2 to 50 distinct courses of its own, "
    "sold together at one price in the currency their plans share.",
    opt=problems(BundleInvalid, BundleForeignCourse, BundleCourseUnpriced, BundleCurrencyMixed),
)
async def create_bundle(
    request: Request[Any, Any, Any],
    org_id: FromPath[uuid.UUID],
    data: JSONBody[BundleBody],
    principal: NamedDependency[Principal],
) -> BundleView:
    bundle = await runtime(request).bundles.create(
        org_id, principal.sub, BundleDraft(data.name, data.course_ids, data.price_in_cents)
    )
    return _bundle_view(bundle)


@get(f"{ORG}/bundles", guards=[authenticated])
async def list_bundles(
    request: Request[Any, Any, Any],
    org_id: FromPath[uuid.UUID],
    principal: NamedDependency[Principal],
    limit: Limit = 50,
    offset: Offset = 0,
) -> BundlePage:
    found, total = await runtime(request).bundles.listed(org_id, principal.sub, offset, limit)
    return BundlePage([_bundle_view(b) for b in found], total, limit, offset)


@get(
    "/public/bundles/{bundle_id:uuid}",
    description="A bundle on sale: its price and its courses with their own prices; 404 while "
    "any of its courses is unpublished or has no active plan.",
    opt=problems(BundleNotFound),
)
async def public_bundle(
    request: Request[Any, Any, Any], bundle_id: FromPath[uuid.UUID]
) -> PublicBundleView:
    found = await runtime(request).bundles.public(bundle_id)
    b = found.bundle
    return PublicBundleView(
        bundle_id=b.id,
        organization_id=b.organization_id,
        name=b.name,
        price_in_cents=b.price_in_cents,
        currency=b.currency,
        courses=[
            PublicBundleCourse(c.course_id, c.name, c.price_in_cents or 0) for c in found.courses
        ],
    )


@post(
    "/bundles/{bundle_id:uuid}/checkout",
    guards=[authenticated],
    description="Buy a bundle: one payment for its courses, one entitlement per course. "
    "Courses the caller already owns are left out and the price is reduced in proportion to "
    "their list prices; the answer says what is charged and which courses are included.",
    opt=problems(BundleNotFound, *CHECKOUT_REFUSALS),
    **CHECKOUT.route_options(),
)
async def checkout_bundle(
    request: Request[Any, Any, Any],
    bundle_id: FromPath[uuid.UUID],
    idempotency_key: IdempotencyKey = None,
) -> BundleCheckoutResponse:
    principal = principal_of(request)
    returns, coupon_code = await _checkout_body(request)
    if coupon_code is not None:
        raise CouponRefused("Coupons apply to course checkouts, not to bundles")
    return await runtime(request).bundle_checkout.bundle(
        bundle_id, Buyer(principal.sub, principal.email), idempotency_key, returns
    )


ROUTES = [
    set_price,
    revoke,
    grant_course,
    bulk_grant_course,
    start_bulk_grant_job,
    bulk_grant_job,
    create_offer,
    list_course_entitlements,
    entitlement_history,
    list_leads,
    start_onboarding,
    payment_account,
    set_return_allowlist,
    get_return_allowlist,
    checkout_course,
    checkout_offer,
    my_course_history,
    request_refund,
    create_coupon,
    list_coupons,
    course_quote,
    checkout_success,
    checkout_cancelled,
    onboarding_returned,
    onboarding_expired,
    payment_webhook,
    stripe_webhook,
    payment_page,
    pay,
    decline,
    sandbox_onboarding,
    sandbox_submit_onboarding,
    claim_gift,
    my_gifts,
    resend_gift,
    create_bundle,
    list_bundles,
    public_bundle,
    checkout_bundle,
]
