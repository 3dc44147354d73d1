"""Which destinations a webhook may go to. An endpoint URL is the organization's to choose, so
without a check it could make our sender reach inside our own network: loopback, private
ranges, link-local (the cloud metadata service) and every other non-global address are refused,
at registration and again before each send (DNS may change in between)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

import idna

from coursemesh.integrations.domain.errors import EndpointAddressForbidden, EndpointUrlInvalid

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_URL_LENGTH = 2048
_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
# NAT64's well-known prefix carries an IPv4 address in its last 32 bits (RFC 6052); its
# local-use prefix (RFC 8215) leads into the operator's own network.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form stands for (mapped, 6to4, NAT64), which a gateway on
    the way would reach: it is judged as that IPv4 address."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def forbidden_reason(address: IPAddress, *, allow_loopback: bool) -> str | None:
    """Why ``address`` may not be sent to, or None when it may."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return forbidden_reason(embedded, allow_loopback=allow_loopback)
        if address in _NAT64_LOCAL:
            return "a private or reserved address"
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
    """A parsed endpoint URL: where to connect (before resolution) and what to ask for.
    ``host`` is the ASCII form (an internationalised name in its ``xn--`` spelling), the one
    DNS, the Host header and TLS's SNI all use; ``path`` carries the query too."""

    __slots__ = ("explicit_port", "host", "path", "port", "scheme", "url")

    def __init__(
        self, url: str, scheme: str, host: str, port: int, path: str, *, explicit_port: bool
    ) -> None:
        self.url, self.scheme, self.host, self.port = url, scheme, host, port
        self.path, self.explicit_port = path, explicit_port

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}" if self.explicit_port else host


def ascii_host(host: str) -> str:
    """The host as DNS knows it: IDNA 2008 with UTS #46 mapping for a non-ASCII name."""
    if host.isascii():
        return host
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise EndpointUrlInvalid(f"Not a valid host name: {exc}") from exc


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
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(
        url,
        parts.scheme,
        ascii_host(parts.hostname),
        port or default,
        path,
        explicit_port=port is not None and port != default,
    )


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
