"""Which destinations a webhook may go to. An endpoint URL is the organization's to choose, so
without a check it could make our sender reach inside our own network: loopback, private
ranges, link-local (the cloud metadata service) and every other non-global address are refused,
at registration and again before each send (DNS may change in between)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from coursemesh.integrations.domain.errors import EndpointAddressForbidden, EndpointUrlInvalid

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_URL_LENGTH = 2048
_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


def forbidden_reason(address: IPAddress, *, allow_loopback: bool) -> str | None:
    """Why ``address`` may not be sent to, or None when it may."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return forbidden_reason(address.ipv4_mapped, allow_loopback=allow_loopback)
    if address in _METADATA:
        return "a cloud metadata address"
    if address.is_loopback:
        return None if allow_loopback else "a loopback address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_private or address.is_reserved or not address.is_global:
        return "a private or reserved address"
    return None


class Target:
    """A parsed endpoint URL: where to connect (before resolution) and what to ask for."""

    __slots__ = ("host", "port", "scheme", "url")

    def __init__(self, url: str, scheme: str, host: str, port: int) -> None:
        self.url, self.scheme, self.host, self.port = url, scheme, host, port


def parse_endpoint_url(url: str, *, allow_insecure: bool) -> Target:
    """The URL's parts, or :class:`EndpointUrlInvalid`: https (http only in development), a
    host, no credentials, no fragment."""
    if len(url) > MAX_URL_LENGTH:
        raise EndpointUrlInvalid(f"The URL is longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise EndpointUrlInvalid(f"Not a valid URL: {exc}") from exc
    schemes = {"https", "http"} if allow_insecure else {"https"}
    if parts.scheme not in schemes:
        raise EndpointUrlInvalid(f"The URL must use {' or '.join(sorted(schemes))}")
    if not parts.hostname:
        raise EndpointUrlInvalid("The URL has no host")
    if parts.username or parts.password:
        raise EndpointUrlInvalid("The URL may not carry credentials")
    if parts.fragment:
        raise EndpointUrlInvalid("The URL may not carry a fragment")
    default = 443 if parts.scheme == "https" else 80
    return Target(url, parts.scheme, parts.hostname, port or default)


def literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def check_addresses(host: str, addresses: list[IPAddress], *, allow_loopback: bool) -> IPAddress:
    """The address to connect to: the first of ``addresses``, when none of them is forbidden
    (one forbidden answer among several is refused: a resolver could pick it)."""
    if not addresses:
        raise EndpointAddressForbidden(f"{host} does not resolve")
    for address in addresses:
        reason = forbidden_reason(address, allow_loopback=allow_loopback)
        if reason is not None:
            raise EndpointAddressForbidden(f"{host} resolves to {reason} ({address})")
    return addresses[0]
