"""Money: amounts are integers in the currency's minor unit (``amount_in_cents``), whose size
ISO 4217 sets per currency (USD 2 digits, JPY 0, KWD 3). The table comes from babel's CLDR
currency data, a maintained copy of ISO 4217: a pure look-up, no I/O of ours."""

from __future__ import annotations

import re
from decimal import Decimal

from babel.numbers import get_currency_precision

_CODE = re.compile(r"^[A-Z]{3}$")


def minor_units(currency: str) -> int:
    """How many digits of ``currency`` are after the decimal point (``"JPY"`` -> 0).

    A code that is not three upper-case letters is refused (``ValueError``); a well-formed code
    CLDR does not know gets its default, 2."""
    if not _CODE.fullmatch(currency):
        raise ValueError(f"not an ISO 4217 currency code: {currency!r}")
    return int(get_currency_precision(currency))


def format_amount(amount: int, currency: str) -> str:
    """An amount in minor units, for people: ``4900, "USD"`` -> ``"49.00 USD"``,
    ``4900, "JPY"`` -> ``"4,900 JPY"``, ``1234, "KWD"`` -> ``"1.234 KWD"`` (thousands grouped
    with commas, as the receipts and the payment page are in English)."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise ValueError(f"an amount is an integer of minor units, not {amount!r}")
    digits = minor_units(currency)
    major = Decimal(amount).scaleb(-digits)
    return f"{major:,.{digits}f} {currency}"
