"""Token buckets per client IP: a flood from one address gets 429s, everyone else is served.

In-process on purpose: each bridge protects itself and needs no shared store. Behind a proxy,
run uvicorn with `--proxy-headers --forwarded-allow-ips` so the client address is the real one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request

from bridge.errors import ApiError


@dataclass(frozen=True)
class RateLimit:
    """`per_second` tokens refill a bucket of `burst` tokens; each request takes one."""

    per_second: float
    burst: int


class _Bucket:
    __slots__ = ("tokens", "updated")

    def __init__(self, tokens: float, updated: float) -> None:
        self.tokens = tokens
        self.updated = updated


class RateLimiter:
    """One bucket per client address. Full, idle buckets are forgotten so memory stays bounded."""

    _PRUNE_AT = 10_000

    def __init__(self, scope: str, limit: RateLimit, on_limited: Callable[[str], None] | None = None) -> None:
        self.scope = scope
        self.limit = limit
        self._buckets: dict[str, _Bucket] = {}
        self._on_limited = on_limited

    def take(self, key: str, now: float | None = None) -> float:
        """Take a token for `key`; return 0 if allowed, else the seconds until one is free."""
        now = time.monotonic() if now is None else now
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._PRUNE_AT:
                self._prune(now)
            bucket = self._buckets[key] = _Bucket(self.limit.burst, now)
        bucket.tokens = min(self.limit.burst, bucket.tokens + (now - bucket.updated) * self.limit.per_second)
        bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.limit.per_second

    def _prune(self, now: float) -> None:
        refill = self.limit.burst / self.limit.per_second
        self._buckets = {k: b for k, b in self._buckets.items() if now - b.updated < refill}

    async def __call__(self, request: Request) -> None:
        """FastAPI dependency: raise 429 with Retry-After when the caller's bucket is empty."""
        client = request.client.host if request.client else "unknown"
        wait = self.take(client)
        if wait:
            if self._on_limited is not None:
                self._on_limited(self.scope)
            raise ApiError(
                429,
                "too many requests; slow down and retry later",
                headers={"Retry-After": str(math.ceil(wait))},
            )
