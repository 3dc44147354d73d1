"""Counters commerce exports, next to every service's own (``GET /metrics``, and OTLP when
configured; see coursemesh.chassis.metrics)."""

from __future__ import annotations

from opentelemetry import metrics

# The process' meter provider (Prometheus, OTLP) is installed by the service's app factory.
_meter = metrics.get_meter("coursemesh.commerce")


class Counter:
    """An OpenTelemetry counter that also keeps its in-process total (read by tests/health)."""

    def __init__(self, name: str, description: str, unit: str = "{webhook}") -> None:
        self._counter = _meter.create_counter(name, unit=unit, description=description)
        self.total = 0

    def start_at_zero(self, name: str, values: tuple[str, ...]) -> None:
        """Show the series of known label values before their first event: a dashboard's
        rate over them reads 0 instead of no data."""
        for value in values:
            self._counter.add(0, {name: value})

    def add(self, amount: int = 1, **attributes: str) -> None:
        self.total += amount
        self._counter.add(amount, attributes)


webhook_cross_org_mismatches = Counter(
    "commerce.webhook.cross_org_mismatches",
    "Payment webhooks whose entitlement/purchase belongs to another org than the URL's",
)
webhook_payment_mismatches = Counter(
    "commerce.webhook.payment_mismatches",
    "Verified payment webhooks refused because they disagree with the recorded payment"
    " (another transaction, another amount or currency, a sandbox session not settled)",
)
webhook_outcomes = Counter(
    "commerce.webhook.outcomes",
    "Payment provider webhooks by provider and outcome: applied, duplicate or ignored, else"
    " the refusal's problem code (INVALID_SIGNATURE, WEBHOOK_CROSS_ORG, ...)",
)


def start_counters_at_zero() -> None:
    """Called once the process' meter provider is installed (what is recorded before goes
    nowhere): the refusals a dashboard watches read 0 from the start, not "no data"."""
    webhook_cross_org_mismatches.start_at_zero(
        "kind", ("unknown-account", "account", "course-entitlement", "custom-course-purchase")
    )
    webhook_payment_mismatches.start_at_zero(
        "code", ("WEBHOOK_PAYMENT_MISMATCH", "WEBHOOK_AMOUNT_MISMATCH")
    )
