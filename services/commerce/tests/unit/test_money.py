"""Amounts in each currency's own minor unit (ISO 4217 digits from babel's CLDR data)."""

from __future__ import annotations

import pytest

from coursemesh.commerce.domain.money import format_amount, minor_units
from coursemesh.commerce.domain.pricing import format_amount as pricing_format_amount


@pytest.mark.parametrize(
    ("currency", "digits"), [("USD", 2), ("EUR", 2), ("JPY", 0), ("KRW", 0), ("KWD", 3), ("BHD", 3)]
)
def test_minor_units_per_currency(currency: str, digits: int) -> None:
    assert minor_units(currency) == digits


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (4900, "USD", "49.00 USD"),
        (5, "USD", "0.05 USD"),
        (0, "EUR", "0.00 EUR"),
        (123456789, "EUR", "1,234,567.89 EUR"),
        (4900, "JPY", "4,900 JPY"),
        (7, "JPY", "7 JPY"),
        (15000, "KRW", "15,000 KRW"),
        (1234, "KWD", "1.234 KWD"),
        (5, "KWD", "0.005 KWD"),
        (2500750, "BHD", "2,500.750 BHD"),
    ],
)
def test_format_amount_uses_the_currencys_minor_unit(
    amount: int, currency: str, shown: str
) -> None:
    assert format_amount(amount, currency) == shown
    assert pricing_format_amount(amount, currency) == shown  # the page's and receipts' entry


@pytest.mark.parametrize("currency", ["usd", "US", "USDX", "", "4900"])
def test_a_malformed_currency_code_is_refused(currency: str) -> None:
    with pytest.raises(ValueError, match="ISO 4217"):
        format_amount(4900, currency)


@pytest.mark.parametrize("amount", [49.0, "4900", True])
def test_an_amount_that_is_not_integer_minor_units_is_refused(amount: object) -> None:
    with pytest.raises(ValueError, match="integer"):
        format_amount(amount, "USD")  # type: ignore[arg-type]
