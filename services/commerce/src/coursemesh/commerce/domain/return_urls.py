"""Where a buyer is sent back after the hosted payment page: a checkout's ``successUrl`` and
``cancelUrl``, each allowed only when it falls under an entry of its organization's allowlist
(or is one of the platform's own pages), so a checkout link can never send a buyer to a site
the seller did not name. Pure: no I/O.

An allowlist entry is a URL prefix: a scheme, a host (and port) for ``https``/``http``, and an
optional path. A return URL matches an entry when its scheme and host are the same and its path
is the entry's path or lies below it (``https://shop.example/app`` admits
``https://shop.example/app/done`` but not ``https://shop.example/apples``). ``http`` is for
``localhost`` and loopback addresses only. A custom scheme (``myapp:``, ``myapp://``) brings the
buyer back into a mobile app (a deep link). The provider replaces ``{CHECKOUT_SESSION_ID}`` in a
success URL with the payment session's id (Stripe does so in the success URL only).

Without them the buyer returns to the platform's own pages, which name the checkout by our own
payment id (known before the provider is asked, so no provider needs to fill it in)."""

from __future__ import annotations

import ipaddress
import re
import uuid
from dataclasses import dataclass
from urllib.parse import SplitResult, unquote, urlsplit

from coursemesh.chassis.errors import Unprocessable

MAX_ENTRIES = 20
MAX_URL_LENGTH = 2048
#: The provider's placeholder for the payment session's id (Stripe's, and the sandbox's).
SESSION_PLACEHOLDER = "{CHECKOUT_SESSION_ID}"

_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*$")
# Schemes that run code or read local data in a browser: never a place to send a buyer.
_FORBIDDEN_SCHEMES = frozenset({"javascript", "data", "vbscript", "file", "blob", "about", "ftp"})
_WEB = frozenset({"https", "http"})


class ReturnUrlInvalid(Unprocessable):
    code = "RETURN_URL_INVALID"


class ReturnUrlNotAllowed(Unprocessable):
    code = "RETURN_URL_NOT_ALLOWED"


@dataclass(frozen=True, slots=True)
class _Prefix:
    scheme: str
    host: str  # lower case, with a port when it is not the scheme's default
    path: str  # no trailing "/" (empty: the whole host)

    def admits(self, url: _Prefix) -> bool:
        if url.scheme != self.scheme:
            return False
        if self.scheme not in _WEB and not self.host and not self.path:
            return True  # "myapp:" admits every deep link of the app
        if url.host != self.host:
            return False
        return not self.path or url.path == self.path or url.path.startswith(self.path + "/")


@dataclass(frozen=True, slots=True)
class ReturnUrls:
    """The URLs a hosted payment sends its buyer to: after paying, and on giving up (None:
    the platform's own page)."""

    success_url: str | None
    cancel_url: str | None

    def for_payment(self, public_base_url: str, payment_id: uuid.UUID) -> tuple[str, str]:
        """Both URLs, the platform's pages (naming the payment) for those not given."""
        success, cancelled = platform_pages(public_base_url)
        return (
            self.success_url or f"{success}?session={payment_id}",
            self.cancel_url or f"{cancelled}?session={payment_id}",
        )


def platform_pages(public_base_url: str) -> tuple[str, str]:
    """The platform's own return pages: success, cancelled."""
    base = public_base_url.rstrip("/")
    return f"{base}/checkout/success", f"{base}/checkout/cancelled"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _parse(
    raw: str, what: str, error: type[Unprocessable], *, any_http: bool = False
) -> tuple[_Prefix, SplitResult]:
    """``raw`` as a prefix to compare. ``any_http``: plain ``http`` is not refused (one of the
    platform's own pages, whose scheme is the operator's choice, and a URL compared with them)."""
    if not isinstance(raw, str) or not raw or len(raw) > MAX_URL_LENGTH:
        raise error(f"{what} must be a URL of at most {MAX_URL_LENGTH} characters")
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in raw):
        raise error(f"{what} must not contain spaces or control characters: {raw!r}")
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:
        raise error(f"{what} is not a URL: {raw!r}") from None
    scheme = parts.scheme.lower()
    if not _SCHEME.fullmatch(scheme):
        raise error(f"{what} must be an absolute URL with a scheme: {raw!r}")
    if scheme in _FORBIDDEN_SCHEMES:
        raise error(f"{what} must not use the {scheme}: scheme")
    if parts.username is not None or parts.password is not None:
        raise error(f"{what} must not carry a user name or password: {raw!r}")
    # a browser resolves "." and ".." (also percent-encoded): such a path could climb out of
    # the prefix it appears to be under
    if any(unquote(segment) in (".", "..") for segment in parts.path.split("/")):
        raise error(f"{what} must not contain '.' or '..' path segments: {raw!r}")
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"  # an IPv6 address, kept apart from its port
    if scheme in _WEB:
        if not host:
            raise error(f"{what} must name a host: {raw!r}")
        if scheme == "http" and not any_http and not _is_loopback(host):
            raise error(f"{what} must use https (http only for localhost): {raw!r}")
        default = 443 if scheme == "https" else 80
        if port is not None and port != default:
            host = f"{host}:{port}"
    elif port is not None:
        host = f"{host}:{port}"
    return _Prefix(scheme, host, parts.path.rstrip("/")), parts


def allowlist_entries(urls: list[str]) -> tuple[str, ...]:
    """The allowlist as staff set it, checked: each entry a URL prefix with no query or
    fragment, at most :data:`MAX_ENTRIES`, duplicates removed (first kept)."""
    if len(urls) > MAX_ENTRIES:
        raise ReturnUrlInvalid(f"An allowlist holds at most {MAX_ENTRIES} entries")
    seen: dict[_Prefix, str] = {}
    for i, raw in enumerate(urls):
        prefix, parts = _parse(raw, f"urls[{i}]", ReturnUrlInvalid)
        if parts.query or parts.fragment or "?" in raw or "#" in raw:
            raise ReturnUrlInvalid(f"urls[{i}] is a prefix: no query or fragment: {raw!r}")
        seen.setdefault(prefix, raw)
    return tuple(seen.values())


def return_url(
    raw: str, field: str, allowlist: tuple[str, ...], platform_pages: tuple[str, ...]
) -> str:
    """``raw`` when it is a valid URL under an allowlist entry or one of the platform's pages;
    a clear refusal otherwise."""
    url, _ = _parse(raw, field, ReturnUrlInvalid, any_http=True)
    for page in platform_pages:
        if _parse(page, "a platform page", ReturnUrlInvalid, any_http=True)[0].admits(url):
            return raw
    _parse(raw, field, ReturnUrlInvalid)  # elsewhere, the rules of an entry: https, …
    for entry in allowlist:
        if _parse(entry, "an allowlist entry", ReturnUrlInvalid)[0].admits(url):
            return raw
    raise ReturnUrlNotAllowed(
        f"{field} is not on this organization's return URL allowlist: {raw!r}"
        " (staff set it with PUT /organizations/{orgId}/return-url-allowlist)",
        extra={"field": field},
    )


def return_urls(
    success_url: str | None,
    cancel_url: str | None,
    *,
    allowlist: tuple[str, ...],
    public_base_url: str,
) -> ReturnUrls:
    """The checkout's return URLs as asked for, each checked (the platform's own pages are
    always allowed); None for the ones not given."""
    pages = platform_pages(public_base_url)
    return ReturnUrls(
        success_url=None
        if success_url is None
        else return_url(success_url, "successUrl", allowlist, pages),
        cancel_url=None
        if cancel_url is None
        else return_url(cancel_url, "cancelUrl", allowlist, pages),
    )


def with_session(url: str, session_id: str) -> str:
    """A return URL as the provider sends the buyer to it (its placeholder replaced)."""
    return url.replace(SESSION_PLACEHOLDER, session_id)
