"""When a failed delivery is tried again: the Standard Webhooks (Svix) schedule, with jitter so
that a receiver coming back up is not hit by every retry at the same instant."""

from __future__ import annotations

import random
from collections.abc import Callable

#: Delay before attempt n + 1 (after the n-th failed attempt), in seconds: immediately (the
#: first attempt), 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h. After the last, the
#: delivery has failed for good (a replay starts it over).
SCHEDULE: tuple[float, ...] = (
    0,
    5,
    5 * 60,
    30 * 60,
    2 * 3600,
    5 * 3600,
    10 * 3600,
    14 * 3600,
    20 * 3600,
    24 * 3600,
)
MAX_ATTEMPTS = len(SCHEDULE)
JITTER = 0.1
#: The longest Retry-After a receiver may ask for (429, 503) before we fall back on the schedule.
MAX_RETRY_AFTER_SECONDS = 24 * 3600


def retry_delay(
    attempts_made: int,
    *,
    scale: float = 1.0,
    retry_after: float | None = None,
    rand: Callable[[], float] = random.random,
) -> float | None:
    """Seconds until the next attempt after ``attempts_made`` failed ones, None when none is
    left. ``retry_after`` (the receiver asked to slow down) wins when it is longer than the
    schedule's step and within bounds."""
    if attempts_made >= MAX_ATTEMPTS:
        return None
    step = SCHEDULE[attempts_made]
    if retry_after is not None and step < retry_after <= MAX_RETRY_AFTER_SECONDS:
        step = retry_after
    jittered = step * (1 + JITTER * (2 * rand() - 1))
    return max(0.0, jittered * scale)
