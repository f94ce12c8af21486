"""Faults on request: what a real network and a busy Stripe do to an integration.

API faults (500, 429, latency) hit `/v1/` requests before anything executes, as a load balancer
would, so a retry with the same Idempotency-Key runs the operation once. Webhook faults (send
twice, reorder) act on deliveries. `fail_next` makes tests deterministic; probabilities use a
seeded random generator when `seed` is set.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from stripe_sandbox.errors import StripeError

FaultStatus = Literal[500, 429]


class FaultConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    error_500_probability: float = Field(default=0.0, ge=0.0, le=1.0)
    error_429_probability: float = Field(default=0.0, ge=0.0, le=1.0)
    #: `rate_limit`: Stripe's rate limiter (the library does not retry it by itself);
    #: `lock_timeout`: Stripe's object lock, answered with `Stripe-Should-Retry: true` (it does).
    rate_limit_code: Literal["rate_limit", "lock_timeout"] = "rate_limit"
    latency_ms: int = Field(default=0, ge=0, le=60_000)
    duplicate_webhook_probability: float = Field(default=0.0, ge=0.0, le=1.0)
    #: Deliveries ready together are sent newest first, in batches of this size (0/1: in order).
    reorder_window: int = Field(default=0, ge=0, le=1000)
    #: Statuses answered to the next API requests, one each, before the probabilities apply.
    fail_next: list[FaultStatus] = Field(default_factory=list, max_length=1000)
    seed: int | None = None


class FaultInjector:
    def __init__(self) -> None:
        self.configure(FaultConfig())

    def configure(self, config: FaultConfig) -> None:
        self.config = config
        self._fail_next = list(config.fail_next)
        self._random = random.Random(config.seed)
        self.injected: Counter[str] = Counter()

    def snapshot(self) -> dict:
        return {
            **self.config.model_dump(),
            "fail_next": list(self._fail_next),
            "injected": dict(self.injected),
        }

    async def before_api_request(self) -> StripeError | None:
        """Wait the configured latency, then maybe answer with an injected error instead."""
        if self.config.latency_ms:
            await asyncio.sleep(self.config.latency_ms / 1000)
        status: int | None = None
        if self._fail_next:
            status = self._fail_next.pop(0)
        elif self._random.random() < self.config.error_500_probability:
            status = 500
        elif self._random.random() < self.config.error_429_probability:
            status = 429
        if status is None:
            return None
        self.injected[str(status)] += 1
        return self._error(status)

    def _error(self, status: int) -> StripeError:
        if status == 500:
            return StripeError(
                500,
                "api_error",
                "An unknown error occurred (injected by the dealflow sandbox's faults).",
            )
        if self.config.rate_limit_code == "lock_timeout":
            return StripeError(
                429,
                "invalid_request_error",
                "This object cannot be accessed right now because another API request or Stripe process "
                "is currently accessing it (injected by the dealflow sandbox's faults).",
                code="lock_timeout",
                headers={"Stripe-Should-Retry": "true"},
            )
        return StripeError(
            429,
            "invalid_request_error",
            "Request rate limit exceeded (injected by the dealflow sandbox's faults). "
            "Learn more about rate limits here https://stripe.com/docs/rate-limits.",
            code="rate_limit",
        )

    def duplicate_webhook(self) -> bool:
        probability = self.config.duplicate_webhook_probability
        duplicate = probability > 0 and self._random.random() < probability
        if duplicate:
            self.injected["duplicate_webhook"] += 1
        return duplicate

    def reordered(self, deliveries: int) -> None:
        """Count deliveries the reorder fault sent out of creation order."""
        self.injected["reordered_webhook"] += deliveries

    @property
    def reorder_window(self) -> int:
        return self.config.reorder_window
