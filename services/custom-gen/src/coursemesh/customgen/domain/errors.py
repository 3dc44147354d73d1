"""Refusals specific to custom-gen (the generic ones come from ``coursemesh.chassis.errors``)."""

from __future__ import annotations

from coursemesh.chassis.errors import DomainError


class PayloadTooLarge(DomainError):
    status, code, title = 413, "PAYLOAD_TOO_LARGE", "Content Too Large"
