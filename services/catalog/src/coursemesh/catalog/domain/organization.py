"""Organization rules (pure)."""

from __future__ import annotations

import pycountry

from coursemesh.chassis.errors import Unprocessable


def check_currency(code: str) -> None:
    """The shape (``^[A-Z]{3}$``) is checked at the edge; here, that ISO 4217 knows the code."""
    if pycountry.currencies.get(alpha_3=code) is None:
        raise Unprocessable(
            f"{code} is not an ISO 4217 currency code",
            code="INVALID_CURRENCY",
            extra={"errors": [{"path": "$.currency", "message": "unknown ISO 4217 code"}]},
        )
