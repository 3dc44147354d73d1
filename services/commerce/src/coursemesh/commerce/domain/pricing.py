"""Prices and custom course offer codes: pure rules."""

from __future__ import annotations

import re

CUSTOM_COURSE_CODE = re.compile(r"^X[A-Z0-9]{5}$")


def is_free(price_in_cents: int) -> bool:
    return price_in_cents == 0


def format_amount(amount_in_cents: int, currency: str) -> str:
    """``4900, "USD"`` -> ``"49.00 USD"`` (two minor digits; enough for the currencies sold)."""
    return f"{amount_in_cents // 100}.{amount_in_cents % 100:02d} {currency}"
