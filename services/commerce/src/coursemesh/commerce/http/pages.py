"""The platform's own pages a person lands on: after a hosted payment (success, cancelled) and
after the payment provider's onboarding. Small, self-contained HTML (no scripts, no external
assets); every value from the database is escaped."""

from __future__ import annotations

import html

from litestar import MediaType, Response

from coursemesh.commerce.app.ports import CheckoutSummary
from coursemesh.commerce.domain.pricing import format_amount

#: How often the success page reloads itself while the provider's confirmation is on its way.
REFRESH_SECONDS = 3

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;"
    "color:#1b1b1f}h1{font-size:1.5rem}.amount{font-size:1.25rem;font-weight:600}"
    "a.button{display:inline-block;padding:.6rem 1rem;background:#1b1b1f;color:#fff;"
    "border-radius:.4rem;text-decoration:none}"
)


def _page(title: str, body: str, *, status: int = 200, refresh: bool = False) -> Response[str]:
    meta = f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">' if refresh else ""
    text = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"{meta}<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>"
    )
    return Response(
        text,
        status_code=status,
        media_type=MediaType.HTML,
        # the page tells a payment's state: never from a cache
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


def _item(summary: CheckoutSummary) -> str:
    e = html.escape
    logo = (
        f'<img src="{e(summary.seller_logo_url)}" alt="" height="40">'
        if summary.seller_logo_url
        else ""
    )
    return (
        f"<header>{logo}<p class='seller'>{e(summary.seller_name)}</p></header>"
        f"<p class='item'>{e(summary.description)}</p>"
        f"<p class='amount'>{e(format_amount(summary.amount_in_cents, summary.currency))}</p>"
    )


def _unknown() -> Response[str]:
    return _page(
        "Checkout not found",
        "<h1>We could not find this checkout</h1>"
        "<p>The link may be incomplete. Your purchases are in your library in the app.</p>",
        status=404,
    )


def success(summary: CheckoutSummary | None, *, library_url: str | None) -> Response[str]:
    """What was bought and where to open it; while the provider's confirmation is on its way,
    a page that reloads itself until it arrives."""
    if summary is None:
        return _unknown()
    e = html.escape
    where = (
        f'<p><a class="button" href="{e(library_url)}">Open your library</a></p>'
        if library_url
        else "<p>Open it from your library in the app.</p>"
    )
    if summary.status == "completed":
        return _page(
            "Thank you",
            f"<h1>Thank you: your purchase is ready</h1>{_item(summary)}"
            f"<p class='status'>Payment confirmed. A receipt is on its way.</p>{where}",
        )
    if summary.status == "pending":
        return _page(
            "Confirming your payment",
            f"<h1>Confirming your payment…</h1>{_item(summary)}"
            "<p class='status'>The payment provider is confirming your payment. This page"
            " updates by itself.</p>",
            refresh=True,
        )
    return _page(
        "Payment not completed",
        f"<h1>This payment did not complete</h1>{_item(summary)}"
        f"<p class='status'>Its status: {e(summary.status)}. Nothing more will be charged;"
        " you can check out again from the shop.</p>",
    )


def cancelled(summary: CheckoutSummary | None) -> Response[str]:
    """Nothing was charged; try again on the same payment page while it is open."""
    if summary is None:
        return _unknown()
    e = html.escape
    if summary.status == "completed":
        return _page(
            "Already paid",
            f"<h1>This purchase is already paid</h1>{_item(summary)}"
            "<p class='status'>Nothing more will be charged.</p>",
        )
    again = (
        f'<p><a class="button" href="{e(summary.payment_page_url)}">Try again</a></p>'
        if summary.status == "pending" and summary.payment_page_url
        else "<p>To try again, check out again from the shop.</p>"
    )
    return _page(
        "Payment cancelled",
        f"<h1>Payment cancelled</h1>{_item(summary)}"
        f"<p class='status'>Nothing was charged.</p>{again}",
    )


def onboarding_returned() -> Response[str]:
    return _page(
        "Details submitted",
        "<h1>Thank you</h1><p>Your details went to the payment provider. Your organization's"
        " payment account shows whether charges are enabled; paid checkouts open as soon as"
        " they are.</p>",
    )


def onboarding_expired() -> Response[str]:
    return _page(
        "Link expired",
        "<h1>This onboarding link has expired</h1><p>Ask for a new one from your"
        " organization's payment settings.</p>",
    )
