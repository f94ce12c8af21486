"""Webhook delivery as Stripe does it: signed, asynchronous, retried with backoff until a 2xx.

The signature is Stripe's: `Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "t.payload"
keyed with the whsec_ secret>`, over the exact bytes sent. `t` is the wall-clock time of the
attempt (not the sandbox clock, which tests may have advanced), so receivers can check recency.
First attempts go out one at a time in creation order; a failed one is retried later without
holding back the events behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import heapq
import hmac
import itertools
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from stripe_sandbox.faults import FaultInjector
from stripe_sandbox.store import Store

USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
#: How many delivery attempts `/_sandbox/webhook/deliveries` remembers.
DELIVERY_LOG_SIZE = 2000


def sign(payload: str, secret: str, timestamp: int) -> str:
    """The `Stripe-Signature` header value for `payload` sent at `timestamp`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


@dataclass(frozen=True)
class RetryPolicy:
    """Delay before attempt n+1 is base * 2**(n-1), at most `max_seconds`; `max_attempts` in all.

    With base 60 s, max 6 h and 16 attempts the schedule spans about three days, as Stripe's does.
    """

    base_seconds: float = 60.0
    max_seconds: float = 6 * 3600.0
    max_attempts: int = 16

    def delay(self, attempt: int) -> float:
        return min(self.base_seconds * 2 ** (attempt - 1), self.max_seconds)


@dataclass(order=True)
class _Delivery:
    due: float
    sequence: int
    event_id: str = field(compare=False)
    attempt: int = field(compare=False)


class WebhookDispatcher:
    def __init__(
        self,
        store: Store,
        faults: FaultInjector,
        *,
        retry: RetryPolicy,
        timeout_seconds: float,
        reorder_hold_seconds: float = 0.2,
    ) -> None:
        self._store = store
        self._faults = faults
        self._retry = retry
        self._timeout = timeout_seconds
        self._reorder_hold = reorder_hold_seconds
        self._queue: list[_Delivery] = []
        self._in_flight: list[_Delivery] = []
        self._sequence = itertools.count()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._http: httpx.AsyncClient | None = None
        self.log: deque[dict[str, Any]] = deque(maxlen=DELIVERY_LOG_SIZE)
        self.on_change: Callable[[], None] = store.save

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Resume deliveries a previous run left pending, then serve the queue."""
        self._http = httpx.AsyncClient(timeout=self._timeout)
        for pending in self._store.state.pending_deliveries:
            self._push(pending["event_id"], pending["attempt"], delay=0.0)
        self._task = asyncio.create_task(self._run(), name="sandbox-webhooks")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._http is not None:
            await self._http.aclose()
        self._sync_pending()

    # ------------------------------------------------------------------ queue

    def enqueue(self, event: dict[str, Any]) -> None:
        """Schedule an event's first delivery (twice when the duplicate fault says so)."""
        if not self._store.state.webhook_url:
            return
        copies = 2 if self._faults.duplicate_webhook() else 1
        for _ in range(copies):
            self._push(event["id"], 1, delay=0.0)
        self._sync_pending()

    def retry_pending_now(self) -> int:
        """Make every waiting retry due immediately (for demos that cannot wait for backoff)."""
        now = asyncio.get_running_loop().time()
        for delivery in self._queue:
            delivery.due = now
        heapq.heapify(self._queue)
        self._wakeup.set()
        return len(self._queue)

    @property
    def pending(self) -> int:
        return len(self._queue) + len(self._in_flight)

    def _push(self, event_id: str, attempt: int, *, delay: float) -> None:
        due = asyncio.get_running_loop().time() + delay
        heapq.heappush(self._queue, _Delivery(due, next(self._sequence), event_id, attempt))
        self._wakeup.set()

    def _sync_pending(self) -> None:
        waiting = sorted(self._in_flight + self._queue)
        self._store.state.pending_deliveries = [
            {"event_id": delivery.event_id, "attempt": delivery.attempt} for delivery in waiting
        ]
        self.on_change()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            wait = self._queue[0].due - loop.time()
            if wait > 0:
                self._wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), wait)
                continue
            batch = await self._take_batch(loop)
            self._in_flight = batch
            for delivery in batch:
                await self._attempt(delivery)
                self._in_flight = [d for d in self._in_flight if d is not delivery]
                self._sync_pending()

    async def _take_batch(self, loop: asyncio.AbstractEventLoop) -> list[_Delivery]:
        """The next due delivery, or with the reorder fault a window of them, newest first."""
        window = self._faults.reorder_window
        if window <= 1:
            return [heapq.heappop(self._queue)]
        await asyncio.sleep(self._reorder_hold)
        batch = []
        while self._queue and len(batch) < window and self._queue[0].due <= loop.time():
            batch.append(heapq.heappop(self._queue))
        batch.reverse()
        if len(batch) > 1:
            self._faults.reordered(len(batch))
        return batch

    # ------------------------------------------------------------------ one attempt

    async def _attempt(self, delivery: _Delivery) -> None:
        state = self._store.state
        event = state.objects.get(delivery.event_id)
        url = state.webhook_url
        if event is None or not url or self._http is None:
            return
        payload = json.dumps(event, indent=2)
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": USER_AGENT,
            "Stripe-Signature": sign(payload, state.webhook_secret, timestamp),
        }
        record: dict[str, Any] = {
            "event_id": event["id"],
            "type": event["type"],
            "attempt": delivery.attempt,
            "url": url,
            "at": timestamp,
        }
        try:
            response = await self._http.post(url, content=payload.encode(), headers=headers)
            record["status_code"] = response.status_code
            delivered = 200 <= response.status_code < 300
        except httpx.HTTPError as error:
            record["error"] = f"{type(error).__name__}: {error}"
            delivered = False
        record["delivered"] = delivered
        if delivered:
            event["pending_webhooks"] = max(0, event["pending_webhooks"] - 1)
        elif delivery.attempt < self._retry.max_attempts:
            delay = self._retry.delay(delivery.attempt)
            record["next_attempt_in_seconds"] = delay
            self._push(delivery.event_id, delivery.attempt + 1, delay=delay)
        else:
            record["gave_up"] = True
        self.log.append(record)
