"""Buyer directories (the ``BuyerDirectory`` port): where a receipt goes when the buyer's
token carried no ``email`` claim. Clerk's Backend API in production, an address derived from
the user id for `make up`, or none."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from coursemesh.commerce.app.ports import BuyerDirectory, DirectoryUnavailable
from coursemesh.commerce.settings import Settings

log = logging.getLogger("coursemesh.commerce.identity")


@dataclass(frozen=True)
class ClerkDirectory:
    """``GET {api_base}/v1/users/{user_id}`` with the instance's secret key; the primary address
    is the ``email_addresses[]`` entry whose ``id`` is the user's ``primary_email_address_id``.

    404 (no such user) is None; 5xx, 429, a refused key, a malformed answer or no answer at all
    raise :class:`DirectoryUnavailable` (the caller retries later)."""

    secret_key: str
    api_base: str = "https://api.clerk.com"
    timeout: float = 5.0

    async def email_of(self, user_id: str) -> str | None:
        if not user_id:
            raise ValueError("a user id is required")
        url = f"{self.api_base.rstrip('/')}/v1/users/{quote(user_id, safe='')}"
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.get(
                    url,
                    headers={
                        "Authorization": f"Bearer {self.secret_key}",
                        "Accept": "application/json",
                    },
                )
        except httpx.HTTPError as exc:
            raise DirectoryUnavailable(f"clerk: {type(exc).__name__}: {exc}") from exc
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise DirectoryUnavailable(f"clerk answered {response.status_code} for a user")
        try:
            return primary_email(response.json())
        except ValueError as exc:  # JSON that is not a user (json errors are ValueErrors too)
            raise DirectoryUnavailable(f"clerk: malformed user: {exc}") from exc

    async def user_with_email(self, email: str) -> str | None:
        """``GET {api_base}/v1/users?email_address=…``: the id of the one user Clerk lists."""
        url = f"{self.api_base.rstrip('/')}/v1/users"
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.get(
                    url,
                    params={"email_address": email, "limit": "2"},
                    headers={
                        "Authorization": f"Bearer {self.secret_key}",
                        "Accept": "application/json",
                    },
                )
        except httpx.HTTPError as exc:
            raise DirectoryUnavailable(f"clerk: {type(exc).__name__}: {exc}") from exc
        if response.status_code != 200:
            raise DirectoryUnavailable(f"clerk answered {response.status_code} for a user list")
        try:
            users = response.json()
            if not isinstance(users, list):
                raise ValueError("not a list")
            ids = [u.get("id") for u in users if isinstance(u, dict)]
        except ValueError as exc:
            raise DirectoryUnavailable(f"clerk: malformed user list: {exc}") from exc
        if len(ids) != 1 or not isinstance(ids[0], str) or not ids[0]:
            return None
        return ids[0]


def primary_email(user: Any) -> str | None:
    """The primary address of a Clerk user object; None when it has none."""
    if not isinstance(user, dict):
        raise ValueError("not an object")
    primary = user.get("primary_email_address_id")
    addresses = user.get("email_addresses") or []
    if not isinstance(addresses, list):
        raise ValueError("email_addresses is not a list")
    if primary is None:
        return None
    for entry in addresses:
        if isinstance(entry, dict) and entry.get("id") == primary:
            address = entry.get("email_address")
            if isinstance(address, str) and address:
                return address
            raise ValueError("the primary email address has no email_address")
    return None


_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")


@dataclass(frozen=True)
class DevDirectory:
    """For `make up`: every user is ``{user id}@{domain}`` (characters an address may not hold
    become ``_``). The development SMTP server keeps every message, whatever its domain."""

    domain: str = "users.coursemesh.local"

    async def email_of(self, user_id: str) -> str | None:
        if not user_id:
            raise ValueError("a user id is required")
        return f"{_UNSAFE.sub('_', user_id)[:64]}@{self.domain}"

    async def user_with_email(self, email: str) -> str | None:
        """The user whose derived address ``email`` is (one without characters an address
        may not hold, or longer than 64: those cannot be told back)."""
        local, _, domain = email.rpartition("@")
        if domain.lower() != self.domain or not local or _UNSAFE.search(local) or len(local) >= 64:
            return None
        return local


@dataclass(frozen=True)
class NoDirectory:
    """No directory: a receipt without the buyer's email ends as ``no_address``."""

    async def email_of(self, user_id: str) -> str | None:
        return None

    async def user_with_email(self, email: str) -> str | None:
        return None


def buyer_directory(settings: Settings) -> BuyerDirectory:
    """The directory ``IDENTITY_PROVIDER`` names (its default: see ``Settings``)."""
    kind = settings.buyer_directory
    if kind == "clerk":
        assert settings.clerk_secret_key is not None  # the settings refuse clerk without a key
        return ClerkDirectory(settings.clerk_secret_key, settings.clerk_api_base)
    if kind == "dev":
        return DevDirectory(settings.dev_email_domain)
    return NoDirectory()
