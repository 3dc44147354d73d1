"""Return URLs, a pure function of the allowlist: which entries staff may set, which return
URLs a checkout may send its buyer to, and the platform's own pages."""

from __future__ import annotations

import uuid

import pytest

from coursemesh.commerce.domain.return_urls import (
    MAX_ENTRIES,
    SESSION_PLACEHOLDER,
    ReturnUrlInvalid,
    ReturnUrlNotAllowed,
    ReturnUrls,
    allowlist_entries,
    platform_pages,
    return_url,
    return_urls,
    with_session,
)

BASE = "https://commerce.coursemesh.example"
PAGES = (f"{BASE}/checkout/success", f"{BASE}/checkout/cancelled")


def check(url: str, *allowlist: str) -> str:
    return return_url(url, "successUrl", allowlist, PAGES)


# --- the allowlist's entries -----------------------------------------------------------------


@pytest.mark.parametrize(
    "entry",
    [
        "https://shop.example.com",
        "https://shop.example.com/app/",
        "https://shop.example.com:8443/app",
        "http://localhost:3000/return",
        "http://127.0.0.1:8080",
        "http://[::1]:5173/done",
        "myapp://checkout",
        "myapp:",
        "com.example.fitness:/callback",
    ],
)
def test_an_allowlist_accepts_https_loopback_http_and_app_schemes(entry: str) -> None:
    assert allowlist_entries([entry]) == (entry,)


@pytest.mark.parametrize(
    "entry",
    [
        "http://shop.example.com",  # http only for localhost and loopback addresses
        "http://localhost.evil.example",
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "file:///etc/passwd",
        "https://user@shop.example.com",
        "https://user:secret@shop.example.com/app",
        "https://shop.example.com/app?ref=1",
        "https://shop.example.com/app?",
        "https://shop.example.com/app#top",
        "myapp://checkout?x=1",
        "shop.example.com/app",  # no scheme
        "/checkout/success",
        "https://",
        "https:///app",
        "https://shop example.com",
        "https://shop.example.com/\tapp",
        "https://shop.example.com:99999",
        "",
    ],
)
def test_an_allowlist_refuses_unsafe_or_malformed_entries(entry: str) -> None:
    with pytest.raises(ReturnUrlInvalid) as refused:
        allowlist_entries([entry])
    assert (refused.value.status, refused.value.code) == (422, "RETURN_URL_INVALID")


def test_an_allowlist_holds_at_most_twenty_entries() -> None:
    twenty = [f"https://shop{i}.example.com" for i in range(MAX_ENTRIES)]
    assert allowlist_entries(twenty) == tuple(twenty)
    with pytest.raises(ReturnUrlInvalid) as refused:
        allowlist_entries([*twenty, "https://one-more.example.com"])
    assert "at most 20" in refused.value.detail


def test_an_allowlist_drops_duplicates_keeping_the_first_spelling() -> None:
    entries = [
        "https://Shop.Example.com/app/",
        "https://shop.example.com/app",
        "https://shop.example.com:443/app",
        "myapp:",
        "MYAPP:",
        "https://shop.example.com/other",
    ]
    assert allowlist_entries(entries) == (
        "https://Shop.Example.com/app/",
        "myapp:",
        "https://shop.example.com/other",
    )
    assert allowlist_entries([]) == ()


def test_a_refused_entry_is_named_by_its_index() -> None:
    with pytest.raises(ReturnUrlInvalid) as refused:
        allowlist_entries(["https://shop.example.com", "javascript:alert(1)"])
    assert "urls[1]" in refused.value.detail


# --- matching a return URL ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://shop.example.com/app",
        "https://shop.example.com/app/",
        "https://shop.example.com/app/done",
        "https://shop.example.com/app/done?order=7#thanks",
    ],
)
def test_an_entry_admits_its_path_and_what_lies_below_it(url: str) -> None:
    assert check(url, "https://shop.example.com/app") == url


@pytest.mark.parametrize(
    "url",
    [
        "https://shop.example.com/apples",  # a prefix of the name, not of the path
        "https://shop.example.com/ap",
        "https://shop.example.com/",
        "https://shop.example.com/other/app",
        "https://shop.example.com:8443/app/done",  # another port
        "https://evil.example.com/app/done",  # another host
        "https://shop.example.com.evil.example/app",
        "https://evil.example/https://shop.example.com/app",
    ],
)
def test_an_entry_refuses_other_paths_hosts_and_ports(url: str) -> None:
    with pytest.raises(ReturnUrlNotAllowed) as refused:
        check(url, "https://shop.example.com/app")
    assert (refused.value.status, refused.value.code) == (422, "RETURN_URL_NOT_ALLOWED")
    assert refused.value.extra == {"field": "successUrl"}


def test_another_scheme_is_refused() -> None:
    with pytest.raises(ReturnUrlNotAllowed):
        check("https://localhost:3000/app/done", "http://localhost:3000/app")
    with pytest.raises(ReturnUrlNotAllowed):
        check("otherapp://checkout/done", "myapp://checkout")


def test_an_entry_without_a_path_admits_the_whole_host() -> None:
    assert check("https://shop.example.com/any/page", "https://shop.example.com") == (
        "https://shop.example.com/any/page"
    )
    assert check("https://shop.example.com", "https://shop.example.com/") == (
        "https://shop.example.com"
    )


def test_the_host_and_scheme_compare_case_insensitively_and_the_url_is_kept_as_given() -> None:
    url = "HTTPS://SHOP.Example.COM/app/Done"
    assert check(url, "https://shop.example.com/app") == url
    assert check("https://shop.example.com/app/x", "https://SHOP.EXAMPLE.COM/app") == (
        "https://shop.example.com/app/x"
    )


def test_the_default_port_is_the_same_as_none() -> None:
    assert check("https://shop.example.com:443/app/x", "https://shop.example.com/app")
    assert check("https://shop.example.com/app/x", "https://shop.example.com:443/app")
    assert check("http://localhost/done", "http://localhost:80")
    with pytest.raises(ReturnUrlNotAllowed):
        check("http://localhost:3000/done", "http://localhost")


def test_loopback_http_is_matched_by_its_port() -> None:
    assert check("http://localhost:3000/return?x=1", "http://localhost:3000/return")
    assert check("http://[::1]:5173/done/ok", "http://[::1]:5173/done")
    with pytest.raises(ReturnUrlNotAllowed):
        check("http://127.0.0.1:3001/return", "http://127.0.0.1:3000")


def test_an_app_scheme_entry_admits_its_deep_links() -> None:
    assert check("myapp://checkout/done?s=1", "myapp://checkout") == "myapp://checkout/done?s=1"
    with pytest.raises(ReturnUrlNotAllowed):
        check("myapp://settings", "myapp://checkout")
    # the bare scheme admits every deep link of the app
    assert check("myapp://anything/at/all", "myapp:") == "myapp://anything/at/all"
    assert check("myapp:done", "myapp:") == "myapp:done"


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(document.cookie)",
        "data:text/html,hi",
        "http://shop.example.com/app",  # http off loopback: invalid, not merely unlisted
        "https://buyer@shop.example.com/app",
        "not a url",
        "/checkout/success",
    ],
)
def test_an_unsafe_return_url_is_invalid_whatever_the_allowlist(url: str) -> None:
    with pytest.raises(ReturnUrlInvalid) as refused:
        check(url, "https://shop.example.com/app", "myapp:")
    assert refused.value.code == "RETURN_URL_INVALID"


def test_the_platform_pages_are_always_allowed() -> None:
    success = f"{BASE}/checkout/success?session={SESSION_PLACEHOLDER}&from=app"
    assert check(success) == success
    assert check(f"{BASE}/checkout/cancelled") == f"{BASE}/checkout/cancelled"
    assert check(f"{BASE}/checkout/success", "https://shop.example.com") == (
        f"{BASE}/checkout/success"
    )
    with pytest.raises(ReturnUrlNotAllowed):
        check(f"{BASE}/admin")
    with pytest.raises(ReturnUrlNotAllowed):
        check(f"{BASE}/checkout/successful")


# --- a checkout's return URLs ----------------------------------------------------------------


def test_a_checkout_without_return_urls_gets_the_platform_pages_naming_its_payment() -> None:
    urls = return_urls(None, None, allowlist=(), public_base_url=BASE + "/")
    assert urls == ReturnUrls(None, None)
    payment = uuid.uuid4()
    assert urls.for_payment(BASE + "/", payment) == (
        f"{BASE}/checkout/success?session={payment}",
        f"{BASE}/checkout/cancelled?session={payment}",
    )
    assert platform_pages(BASE + "/") == PAGES


def test_each_given_return_url_is_checked_under_its_own_field() -> None:
    allowlist = ("https://shop.example.com/app",)
    urls = return_urls(
        "https://shop.example.com/app/done", None, allowlist=allowlist, public_base_url=BASE
    )
    assert urls == ReturnUrls("https://shop.example.com/app/done", None)
    payment = uuid.uuid4()
    assert urls.for_payment(BASE, payment) == (
        "https://shop.example.com/app/done",
        f"{BASE}/checkout/cancelled?session={payment}",
    )
    with pytest.raises(ReturnUrlNotAllowed) as refused:
        return_urls(
            "https://shop.example.com/app/done",
            "https://evil.example.com/",
            allowlist=allowlist,
            public_base_url=BASE,
        )
    assert refused.value.extra == {"field": "cancelUrl"}
    with pytest.raises(ReturnUrlNotAllowed) as unlisted:
        return_urls("https://evil.example.com/", None, allowlist=allowlist, public_base_url=BASE)
    assert unlisted.value.extra == {"field": "successUrl"}


def test_the_session_placeholder_is_kept_and_replaced_by_with_session() -> None:
    asked = f"https://shop.example.com/app/done?session={SESSION_PLACEHOLDER}"
    deep = f"myapp://checkout/{SESSION_PLACEHOLDER}/done"
    urls = return_urls(
        asked, deep, allowlist=("https://shop.example.com/app", "myapp:"), public_base_url=BASE
    )
    assert (urls.success_url, urls.cancel_url) == (asked, deep)
    assert urls.for_payment(BASE, uuid.uuid4()) == (asked, deep)
    assert with_session(asked, "cs_test_42") == (
        "https://shop.example.com/app/done?session=cs_test_42"
    )
    assert with_session(deep, "cs_test_42") == "myapp://checkout/cs_test_42/done"
    assert with_session("https://shop.example.com/app", "cs_test_42") == (
        "https://shop.example.com/app"
    )


@pytest.mark.parametrize(
    "url",
    [
        "https://shop.example.com/app/../admin",
        "https://shop.example.com/app/%2e%2e/admin",
        "https://shop.example.com/app/%2E%2E",
        "https://shop.example.com/app/./x",
    ],
)
def test_dot_segments_cannot_climb_out_of_an_entrys_path(url: str) -> None:
    with pytest.raises(ReturnUrlInvalid):
        check(url, "https://shop.example.com/app")


def test_an_ipv6_host_is_not_confused_with_its_port() -> None:
    assert check("https://[2001:db8::1]:8443/x", "https://[2001:db8::1]:8443")
    with pytest.raises(ReturnUrlNotAllowed):
        check("https://[2001:db8::1:8443]/x", "https://[2001:db8::1]:8443")


def test_the_platform_pages_are_allowed_on_a_plain_http_base_too() -> None:
    base = "http://coursemesh.internal:8080"
    pages = platform_pages(base)
    assert return_url(f"{base}/checkout/success?x=1", "successUrl", (), pages)
    allowed = return_url(
        "https://shop.example.com/ok", "successUrl", ("https://shop.example.com",), pages
    )
    assert allowed == "https://shop.example.com/ok"
