"""Counters commerce exports (OpenTelemetry metrics API; a no-op without an SDK)."""

from __future__ import annotations

from opentelemetry import metrics

_meter = metrics.get_meter("coursemesh.commerce")


class Counter:
    """An OpenTelemetry counter that also keeps its in-process total (read by tests/health)."""

    def __init__(self, name: str, description: str) -> None:
        self._counter = _meter.create_counter(name, description=description)
        self.total = 0

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
