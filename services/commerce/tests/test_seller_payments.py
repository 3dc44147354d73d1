"""A seller's payment settings on the embedded stack with the sandbox provider: onboarding a
connected account, the return URL allowlist, checkouts that name their return URLs, the
platform's return pages, and sandbox events guarded by their connected account."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from commerce_support import OWNER, TRAINER, Harness
from test_webhooks import post_webhook, press_pay

from coursemesh.chassis.testing import wait_for
from coursemesh.commerce.adapters.sandbox import organization_webhook_secret, sign
from coursemesh.commerce.adapters.tables import (
    payment_accounts,
    payment_transactions,
    sandbox_sessions,
)

SHOP = "https://shop.example.com/checkout"


async def seller(h: Harness) -> tuple[uuid.UUID, uuid.UUID]:
    """A shop whose owner allowlisted ``SHOP``."""
    org, course = await h.shop(price=4900)
    r = await h.client.put(
        f"/organizations/{org}/return-url-allowlist",
        json={"urls": [SHOP, "fitapp://purchases"]},
        headers=h.auth(OWNER),
    )
    assert r.status_code == 200, r.text
    return org, course


async def test_the_owner_onboards_in_the_sandbox_and_the_account_is_enabled(
    harness: Harness,
) -> None:
    org = await harness.catalog.organization()
    await harness.catalog.member(org, TRAINER)
    account = await harness.onboard(org)
    assert account["provider"] == "sandbox"
    assert account["accountId"].startswith("acct_sbx_")
    assert (account["chargesEnabled"], account["payoutsEnabled"]) == (True, True)
    [row] = await harness.rows(payment_accounts)
    assert (row["organization_id"], row["account_id"]) == (org, account["accountId"])
    shown = await harness.client.get(
        f"/organizations/{org}/payments/account", headers=harness.auth(TRAINER)
    )
    assert shown.json()["status"] == "enabled"


async def test_the_sandboxs_account_updated_reaches_commerce_by_signed_webhook(
    live: Callable[..., Awaitable[Harness]],
) -> None:
    h = await live()
    org = await h.catalog.organization()
    await h.catalog.member(org, OWNER, role="owner")
    started = await h.client.post(
        f"/organizations/{org}/payments/onboarding",
        json={"returnUrl": f"{h.settings.public_base_url}/payments/onboarding/return"},
        headers=h.auth(OWNER),
    )
    assert started.status_code == 200, started.text
    form = await h.client.get(started.json()["url"])
    assert "Submit details" in form.text
    submitted = await h.client.post(started.json()["url"])
    assert submitted.status_code == 303
    assert submitted.headers["location"].endswith("/payments/onboarding/return")

    async def enabled() -> bool:
        r = await h.client.get(f"/organizations/{org}/payments/account", headers=h.auth(OWNER))
        return bool(r.json()["status"] == "enabled")

    # account.updated is delivered by the sandbox's background sender: truly asynchronous
    await wait_for(enabled, timeout=20, message="the account enabled by its signed webhook")


async def test_the_allowlist_is_the_owners_and_refuses_what_is_no_url_prefix(
    harness: Harness,
) -> None:
    org, _ = await harness.shop(price=0)
    url = f"/organizations/{org}/return-url-allowlist"
    empty = await harness.client.get(url, headers=harness.auth(TRAINER))
    assert empty.json() == {"organizationId": str(org), "urls": []}
    before = await harness.snapshot()
    for urls, code in (
        (["http://shop.example.com"], "RETURN_URL_INVALID"),  # http only for localhost
        (["javascript:alert(1)"], "RETURN_URL_INVALID"),
        (["https://shop.example.com/x?next=1"], "RETURN_URL_INVALID"),
        (["https://user:pw@shop.example.com"], "RETURN_URL_INVALID"),
        (["shop.example.com"], "RETURN_URL_INVALID"),
    ):
        r = await harness.client.put(url, json={"urls": urls}, headers=harness.auth(OWNER))
        assert (r.status_code, r.json()["code"]) == (422, code), urls
    too_many = [f"https://s{i}.example.com" for i in range(21)]
    r = await harness.client.put(url, json={"urls": too_many}, headers=harness.auth(OWNER))
    assert (r.status_code, r.json()["code"]) == (400, "VALIDATION_FAILED")
    r = await harness.client.put(url, json={"urls": [SHOP]}, headers=harness.auth(TRAINER))
    assert (r.status_code, r.json()["code"]) == (403, "ORGANIZATION_ADMIN_REQUIRED")
    r = await harness.client.put(url, json={"urls": [SHOP]}, headers=harness.auth("user_x"))
    assert r.status_code == 404
    assert await harness.snapshot() == before
    saved = await harness.client.put(
        url, json={"urls": [SHOP, SHOP, "http://localhost:5173"]}, headers=harness.auth(OWNER)
    )
    assert saved.json()["urls"] == [SHOP, "http://localhost:5173"]  # duplicates dropped
    assert (await harness.client.get(url, headers=harness.auth(TRAINER))).json() == saved.json()


async def test_a_checkout_sends_the_buyer_back_to_allowlisted_urls_only(harness: Harness) -> None:
    _, course = await seller(harness)
    before = await harness.snapshot()
    for body, field in (
        ({"successUrl": "https://evil.example.com/checkout"}, "successUrl"),
        ({"successUrl": f"{SHOP}/ok", "cancelUrl": "https://shop.example.com/other"}, "cancelUrl"),
        ({"successUrl": "https://shop.example.com/checkoutx"}, "successUrl"),
        ({"cancelUrl": "fitapp://other"}, "cancelUrl"),
    ):
        r = await harness.client.post(
            f"/courses/{course}/checkout", json=body, headers=harness.auth("user_a")
        )
        assert (r.status_code, r.json()["code"], r.json()["field"]) == (
            422,
            "RETURN_URL_NOT_ALLOWED",
            field,
        ), body
    for raw in (b'{"successUrl": 7}', b'{"returnTo": "x"}', b"[]", b"{"):
        r = await harness.client.post(
            f"/courses/{course}/checkout",
            content=raw,
            headers={**harness.auth("user_a"), "content-type": "application/json"},
        )
        assert r.status_code == 400, raw
    assert await harness.snapshot() == before
    r = await harness.client.post(
        f"/courses/{course}/checkout",
        json={
            "successUrl": f"{SHOP}/done?session={{CHECKOUT_SESSION_ID}}",
            "cancelUrl": "fitapp://purchases/cancelled",
        },
        headers=harness.auth("user_a"),
    )
    assert r.status_code == 201, r.text
    [session] = await harness.rows(sandbox_sessions)
    assert session["success_url"] == f"{SHOP}/done?session={{CHECKOUT_SESSION_ID}}"
    assert session["cancel_url"] == "fitapp://purchases/cancelled"
    [txn] = await harness.rows(payment_transactions)
    assert session["account_id"] == txn["provider_account_id"]
    paid = await harness.client.post(f"/pay/{session['id']}/pay", follow_redirects=False)
    assert paid.headers["location"] == f"{SHOP}/done?session={session['id']}"
    # the platform's own pages need no allowlist
    other = await harness.client.post(
        f"/courses/{course}/checkout",
        json={"successUrl": f"{harness.settings.public_base_url}/checkout/success"},
        headers=harness.auth("user_b"),
    )
    assert other.status_code == 201, other.text


async def test_a_paid_offer_of_a_seller_without_an_account_is_409_and_changes_nothing(
    harness: Harness,
) -> None:
    org = await harness.catalog.organization()
    await harness.catalog.member(org, TRAINER)
    r = await harness.client.post(
        f"/organizations/{org}/custom-course-offers",
        json={"code": "XPAID1", "title": "Calm", "priceInCents": 900},
        headers=harness.auth(TRAINER),
    )
    assert r.status_code == 201, r.text
    before = await harness.snapshot()
    refused = await harness.client.post(
        "/custom-course-offers/XPAID1/checkout", headers=harness.auth("user_a")
    )
    assert (refused.status_code, refused.json()["code"]) == (409, "PAYMENTS_NOT_ENABLED")
    assert await harness.snapshot() == before


async def test_the_return_pages_show_the_checkout_by_its_session(harness: Harness) -> None:
    _, course = await harness.shop(price=4900)
    assert (await harness.checkout(course)).status_code == 201
    [txn] = await harness.rows(payment_transactions)
    session = txn["provider_transaction_id"]
    pending = await harness.client.get(f"/checkout/success?session={session}")
    assert pending.status_code == 200
    assert pending.headers["content-type"].startswith("text/html")
    assert pending.headers["cache-control"] == "no-store"
    assert "Confirming your payment" in pending.text
    assert 'http-equiv="refresh"' in pending.text
    assert "49.00 USD" in pending.text
    # the pages name the checkout by our payment id (their default) or the provider's session
    by_payment = await harness.client.get(f"/checkout/success?session={txn['id']}")
    assert by_payment.text == pending.text
    cancelled = await harness.client.get(f"/checkout/cancelled?session={txn['id']}")
    assert "Nothing was charged." in cancelled.text
    assert f'href="{txn["payment_page_url"]}"' in cancelled.text  # try again, same session
    await press_pay(harness, txn)
    assert (await post_webhook(harness, txn["organization_id"], txn)).status_code == 200
    done = await harness.client.get(f"/checkout/success?session={session}")
    assert "Thank you: your purchase is ready" in done.text
    assert "http-equiv" not in done.text
    unknown = await harness.client.get("/checkout/success?session=cs_nobody")
    assert unknown.status_code == 404
    assert "We could not find this checkout" in unknown.text
    missing = await harness.client.get("/checkout/cancelled")
    assert (missing.status_code, missing.json()["code"]) == (400, "VALIDATION_FAILED")
    # a session id is letters, digits, `_` and `-`: other text (U+0000, which PostgreSQL
    # cannot compare) is refused before any lookup
    for page in ("success", "cancelled"):
        for bad in ("cs%00x", "cs x", "../cs"):
            refused = await harness.client.get(f"/checkout/{page}?session={bad}")
            assert (refused.status_code, refused.json()["code"]) == (400, "VALIDATION_FAILED")
    onboarding = await harness.client.get("/payments/onboarding/refresh")
    assert "expired" in onboarding.text


async def _sandbox_event(
    h: Harness, path_org: uuid.UUID, event: dict[str, Any], signer: uuid.UUID | None = None
) -> Any:
    body = json.dumps(event)
    assert h.settings.sandbox_webhook_key is not None
    secret = organization_webhook_secret(h.settings.sandbox_webhook_key, signer or path_org)
    headers = sign(secret, f"msg_{uuid.uuid4().hex}", body, datetime.now(UTC))
    return await h.client.post(
        f"/webhooks/payments/{path_org}",
        content=body,
        headers={**headers, "content-type": "application/json"},
    )


async def test_sandbox_events_are_guarded_by_their_connected_account(harness: Harness) -> None:
    org_a, course = await harness.shop(price=4900)
    org_b, _ = await harness.shop(price=4900)
    assert (await harness.checkout(course)).status_code == 201
    [txn] = await harness.rows(payment_transactions)
    accounts = {r["organization_id"]: r["account_id"] for r in await harness.rows(payment_accounts)}
    await press_pay(harness, txn)
    before = await harness.snapshot()
    unknown = await post_webhook(harness, org_a, txn, account="acct_sbx_nobody")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "UNKNOWN_CONNECTED_ACCOUNT")
    # signed for org A's URL, on org B's account
    cross = await post_webhook(harness, org_a, txn, account=accounts[org_b])
    assert (cross.status_code, cross.json()["code"]) == (403, "WEBHOOK_CROSS_ORG")
    forged_account = {
        "id": f"evt_{uuid.uuid4().hex}",
        "type": "account.updated",
        "account": accounts[org_a],
        "data": {
            "accountId": accounts[org_b],
            "chargesEnabled": False,
            "payoutsEnabled": False,
            "detailsSubmitted": False,
        },
    }
    r = await _sandbox_event(harness, org_a, forged_account)
    assert (r.status_code, r.json()["code"]) == (400, "WEBHOOK_MALFORMED")
    assert await harness.snapshot() == before
    disabled = {**forged_account, "data": {**forged_account["data"], "accountId": accounts[org_a]}}
    assert (await _sandbox_event(harness, org_a, disabled)).json() == {"status": "applied"}
    assert (await _sandbox_event(harness, org_a, disabled)).json() == {"status": "duplicate"}
    shown = await harness.client.get(
        f"/organizations/{org_a}/payments/account", headers=harness.auth(TRAINER)
    )
    assert shown.json()["status"] == "onboarding"
    refused = await harness.checkout(course, "user_later")
    assert (refused.status_code, refused.json()["code"]) == (409, "PAYMENTS_NOT_ENABLED")
