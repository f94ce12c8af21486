"""Prometheus metrics of one bridge app, in its own registry so several apps (tests) coexist."""

from __future__ import annotations

import time
from collections import deque

from prometheus_client import CollectorRegistry, Counter, Gauge

_DAY = 24 * 3600


class BridgeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.webhooks = Counter(
            "dealflow_bridge_webhooks",
            "Stripe webhooks by outcome (pending, orphan, ignored, folded, duplicate, rejected)",
            ["outcome"],
            registry=self.registry,
        )
        self.signature_failures = Counter(
            "dealflow_bridge_webhook_signature_failures",
            "Webhooks refused because the signature was missing, wrong or outside 5 minutes",
            registry=self.registry,
        )
        self.relay = Counter(
            "dealflow_bridge_relay",
            "Inbox event attempts by outcome (delivered, retried, undeliverable; folded or ignored: an ended deal had accounted for it)",
            ["outcome"],
            registry=self.registry,
        )
        self.orphans_adopted = Counter(
            "dealflow_bridge_orphans_adopted",
            "Orphan Stripe events handed to their deal once the payment they name was known",
            registry=self.registry,
        )
        self.actions = Counter(
            "dealflow_bridge_actions",
            "Portal, vendor and admin actions by workflow update and outcome (done, rejected, refused)",
            ["action", "outcome"],
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "dealflow_bridge_rate_limited",
            "Requests answered 429, by route family",
            ["scope"],
            registry=self.registry,
        )
        self.inbox_backlog = Gauge(
            "dealflow_bridge_inbox_backlog",
            "Stripe events stored but not yet delivered to their workflow",
            registry=self.registry,
        )
        self.inbox_undeliverable = Gauge(
            "dealflow_bridge_inbox_undeliverable",
            "Stripe events the relay gave up on (deal missing or ended); they wait for an operator",
            registry=self.registry,
        )
        self.ledger_quarantined = Gauge(
            "dealflow_ledger_quarantined_rows",
            "Ledger rows Postgres refused for good, kept aside in ledger_quarantine",
            registry=self.registry,
        )
        self._signature_failure_times: deque[float] = deque(maxlen=100_000)

    def count_rate_limited(self, scope: str) -> None:
        self.rate_limited.labels(scope).inc()

    def signature_failed(self) -> None:
        self.signature_failures.inc()
        self._signature_failure_times.append(time.time())

    def signature_failures_last_day(self) -> int:
        """Failures this process saw in the last 24 h (they are never stored: nothing is)."""
        cutoff = time.time() - _DAY
        while self._signature_failure_times and self._signature_failure_times[0] < cutoff:
            self._signature_failure_times.popleft()
        return len(self._signature_failure_times)
