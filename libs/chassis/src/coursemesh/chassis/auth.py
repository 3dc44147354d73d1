"""RS256 JWT verification (JWKS URL or PEM file) and the Litestar pieces around it.

Every service verifies tokens itself; the gateway is not trusted for identity.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import jwt
import msgspec
from jwt import PyJWKClient
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from coursemesh.chassis.errors import Unauthorized
from coursemesh.chassis.headers import raw_header

log = logging.getLogger("coursemesh.auth")


class Principal(msgspec.Struct, frozen=True):
    """The authenticated caller: the identity provider's subject and what it says of them."""

    sub: str
    email: str | None = None
    name: str | None = None


# How long a key fetched from the JWKS is trusted before it is fetched again (rotation).
JWKS_LIFESPAN_SECONDS = 300.0
# Verified tokens remembered per process (each entry well under 1 KiB).
VERIFIED_TOKENS_KEPT = 10_000


class TokenError(Unauthorized):
    code = "INVALID_TOKEN"


class JwtVerifier:
    def __init__(
        self,
        *,
        jwks_url: str | None = None,
        public_key_pem: bytes | None = None,
        issuer: str | None = None,
        audience: str | None = None,
        leeway: float = 30.0,
    ) -> None:
        if not jwks_url and not public_key_pem:
            raise ValueError("a JWKS URL or a PEM public key is required")
        self._jwks = (
            PyJWKClient(jwks_url, cache_keys=True, lifespan=JWKS_LIFESPAN_SECONDS)
            if jwks_url
            else None
        )
        self._keys: dict[str, tuple[Any, float]] = {}  # kid -> (key, monotonic expiry)
        self._verified: dict[str, tuple[Principal, float]] = {}  # token -> (who, unix expiry)
        self._pem = public_key_pem
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway

    @classmethod
    def from_settings(
        cls,
        *,
        jwks_url: str | None,
        public_key_file: str | None,
        issuer: str | None,
        audience: str | None,
    ) -> JwtVerifier:
        pem = None
        if public_key_file:
            with open(public_key_file, "rb") as fh:
                pem = fh.read()
        return cls(jwks_url=jwks_url, public_key_pem=pem, issuer=issuer, audience=audience)

    async def verify(self, token: str) -> Principal:
        known = self._verified.get(token)
        if known is not None and time.time() < known[1]:
            # The same bytes were verified before: a client sends one token for many requests,
            # and an RS256 check plus two base64/JSON parses cost more than the request's SQL.
            return known[0]
        principal, expires_at = await self._verify(token)
        if len(self._verified) >= VERIFIED_TOKENS_KEPT:
            self._verified.pop(next(iter(self._verified)))  # the oldest entry
        # Trusted until it expires, and no longer than a JWKS key is (a key may be withdrawn).
        self._verified[token] = (principal, min(expires_at, time.time() + JWKS_LIFESPAN_SECONDS))
        return principal

    async def _verify(self, token: str) -> tuple[Principal, float]:
        try:
            key = await self._key_for(token)
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=["RS256"],
                issuer=self._issuer,
                audience=self._audience,
                leeway=self._leeway,
                options={
                    "require": ["exp", "sub"],
                    "verify_aud": self._audience is not None,
                },
            )
        except jwt.ExpiredSignatureError:
            raise TokenError("The token has expired", code="TOKEN_EXPIRED") from None
        except (jwt.PyJWTError, ValueError) as exc:
            raise TokenError(f"The token is not valid: {exc}") from None
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise TokenError("The token has no subject")
        email = claims.get("email")
        name = claims.get("name")
        principal = Principal(
            sub=sub,
            email=email if isinstance(email, str) else None,
            name=name if isinstance(name, str) else None,
        )
        return principal, float(claims["exp"])

    async def _key_for(self, token: str) -> Any:
        if self._jwks is None:
            return self._pem
        kid = jwt.get_unverified_header(token).get("kid")
        known = self._keys.get(kid) if isinstance(kid, str) else None
        if known is not None and known[1] > time.monotonic():
            # The common case, answered on the event loop: handing every request to a thread
            # cost more than the verification itself (GIL hand-offs under load).
            return known[0]
        client = self._jwks
        # PyJWKClient fetches over blocking urllib on a cache miss: keep it off the event loop.
        signing_key = await asyncio.to_thread(client.get_signing_key_from_jwt, token)
        if isinstance(kid, str):
            self._keys[kid] = (signing_key.key, time.monotonic() + JWKS_LIFESPAN_SECONDS)
        return signing_key.key


def bearer_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    header = raw_header(connection.scope, b"authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise TokenError("The Authorization header must be 'Bearer <token>'")
    return value.strip()


async def authenticate(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """Verify the bearer token of the connection (cached on the scope)."""
    cached = connection.scope.get("state", {}).get("principal")
    if isinstance(cached, Principal):
        return cached
    token = bearer_token(connection)
    if token is None:
        raise Unauthorized("A bearer token is required", code="MISSING_TOKEN")
    verifier: JwtVerifier = connection.app.state.verifier
    principal = await verifier.verify(token)
    connection.scope.setdefault("state", {})["principal"] = principal
    return principal


async def authenticated(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """Litestar guard: the request carries a valid bearer token."""
    await authenticate(connection)


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """The caller verified by the :func:`authenticated` guard, read without a dependency.

    For the hottest handlers: Litestar resolves two or more dependencies of one handler through
    an anyio task group, a noticeable part of a cached request's cost.
    """
    cached = connection.scope.get("state", {}).get("principal")
    if not isinstance(cached, Principal):
        raise RuntimeError("principal_of() needs the `authenticated` guard on the route")
    return cached


async def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    """Litestar dependency ``principal``: the verified caller (401 otherwise)."""
    return await authenticate(request)
