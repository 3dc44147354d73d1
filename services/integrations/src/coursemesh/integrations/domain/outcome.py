"""What a receiver's answer means for a delivery (Standard Webhooks' recommendations)."""

from __future__ import annotations

from typing import Literal

Outcome = Literal["delivered", "retry", "slow_down", "gone"]


def outcome_of(status: int | None) -> Outcome:
    """``status`` None: no answer (refused connection, timeout, forbidden address). A redirect
    is a failure: it is never followed, since its target was not checked."""
    if status is None:
        return "retry"
    if 200 <= status < 300:
        return "delivered"
    if status == 410:
        return "gone"  # the receiver says this endpoint is no more: it is disabled
    if status in (429, 502, 503, 504):
        return "slow_down"
    return "retry"
