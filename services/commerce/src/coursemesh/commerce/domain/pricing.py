"""Prices and custom course offer codes: pure rules."""

from __future__ import annotations

import re

from coursemesh.commerce.domain import money

CUSTOM_COURSE_CODE = re.compile(r"^X[A-Z0-9]{5}$")


def is_free(price_in_cents: int) -> bool:
    return price_in_cents == 0


def format_amount(amount_in_cents: int, currency: str) -> str:
    """``4900, "USD"`` -> ``"49.00 USD"``, ``4900, "JPY"`` -> ``"4,900 JPY"``: the amount in the
    currency's own minor unit (ISO 4217 digits, :mod:`coursemesh.commerce.domain.money`)."""
    return money.format_amount(amount_in_cents, currency)
