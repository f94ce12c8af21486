"""Webhook delivery as Stripe does it: signed, asynchronous, several at once, retried with
backoff until a 2xx.

The signature is Stripe's: `Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "t.payload"
keyed with the whsec_ secret>`, over the exact bytes sent. `t` is the wall-clock time of the
attempt (not the sandbox clock, which tests may have advanced), so receivers can check recency.
Up to `concurrency` deliveries are in flight at once, so a slow receiver call holds back no other
event; like Stripe, the sandbox promises no order (first attempts start in creation order, and
with a concurrency of 1 they also arrive in it). A failed attempt is retried with backoff, on its
own. Every delivery not yet acknowledged is kept in the store, so a restarted sandbox sends it.
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
from dataclasses import dataclass, field
from typing import Any

import httpx

from stripe_sandbox.faults import FaultInjector
from stripe_sandbox.store import Store, new_id

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
    id: str = field(compare=False)
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
        concurrency: int,
        reorder_hold_seconds: float = 0.2,
    ) -> None:
        self._store = store
        self._faults = faults
        self._retry = retry
        self._timeout = timeout_seconds
        self._concurrency = concurrency
        self._reorder_hold = reorder_hold_seconds
        self._queue: list[_Delivery] = []
        self._in_flight = 0
        self._sequence = itertools.count()
        self._wakeup = asyncio.Event()
        self._slots = asyncio.Semaphore(concurrency)
        self._task: asyncio.Task[None] | None = None
        self._sending: set[asyncio.Task[None]] = set()
        self._http: httpx.AsyncClient | None = None
        self.log: deque[dict[str, Any]] = deque(maxlen=DELIVERY_LOG_SIZE)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Resume deliveries a previous run left pending, then serve the queue."""
        self._http = httpx.AsyncClient(
            timeout=self._timeout,
            limits=httpx.Limits(
                max_connections=self._concurrency, max_keepalive_connections=self._concurrency
            ),
        )
        for delivery_id, pending in self._store.state.pending_deliveries.items():
            self._push(delivery_id, pending["event_id"], pending["attempt"], delay=0.0)
        self._task = asyncio.create_task(self._run(), name="sandbox-webhooks")

    async def stop(self) -> None:
        """Stop sending; deliveries cut short stay pending in the store for the next run."""
        tasks = [task for task in (self._task, *self._sending) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.aclose()

    # ------------------------------------------------------------------ queue

    def enqueue(self, event: dict[str, Any]) -> None:
        """Schedule an event's first delivery (twice when the duplicate fault says so)."""
        if not self._store.state.webhook_url:
            return
        copies = 2 if self._faults.duplicate_webhook() else 1
        for _ in range(copies):
            delivery_id = new_id("whd_", 16)
            self._store.set_delivery(delivery_id, {"event_id": event["id"], "attempt": 1})
            self._push(delivery_id, event["id"], 1, delay=0.0)

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
        return len(self._queue) + self._in_flight

    def _push(self, delivery_id: str, event_id: str, attempt: int, *, delay: float) -> None:
        due = asyncio.get_running_loop().time() + delay
        delivery = _Delivery(due, next(self._sequence), delivery_id, event_id, attempt)
        heapq.heappush(self._queue, delivery)
        self._wakeup.set()

    async def _run(self) -> None:
        """Start a send whenever a slot is free and a delivery is due."""
        while True:
            await self._slots.acquire()
            try:
                batch = await self._next_batch()
            except BaseException:
                self._slots.release()
                raise
            self._in_flight += len(batch)
            task = asyncio.create_task(self._send(batch))
            self._sending.add(task)
            task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._sending.discard(task)
        self._slots.release()

    async def _next_batch(self) -> list[_Delivery]:
        """The next due delivery, or with the reorder fault a window of them, newest first."""
        loop = asyncio.get_running_loop()
        while not self._queue or self._queue[0].due > loop.time():
            self._wakeup.clear()
            wait = self._queue[0].due - loop.time() if self._queue else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), wait)
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

    async def _send(self, batch: list[_Delivery]) -> None:
        """Attempt each delivery of `batch` in turn (a reordered window keeps its order)."""
        for delivery in batch:
            try:
                await self._attempt(delivery)
            finally:
                self._in_flight -= 1

    # ------------------------------------------------------------------ one attempt

    async def _attempt(self, delivery: _Delivery) -> None:
        store = self._store
        event = store.state.objects.get(delivery.event_id)
        url = store.state.webhook_url
        if event is None or not url:
            store.set_delivery(delivery.id, None)
            store.commit()
            return
        assert self._http is not None, "start() opens the client"
        payload = json.dumps(event, indent=2)
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": USER_AGENT,
            "Stripe-Signature": sign(payload, store.state.webhook_secret, timestamp),
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
            store.put(event)
            store.set_delivery(delivery.id, None)
        elif delivery.attempt < self._retry.max_attempts:
            delay = self._retry.delay(delivery.attempt)
            record["next_attempt_in_seconds"] = delay
            attempt = delivery.attempt + 1
            store.set_delivery(delivery.id, {"event_id": delivery.event_id, "attempt": attempt})
            self._push(delivery.id, delivery.event_id, attempt, delay=delay)
        else:
            record["gave_up"] = True
            store.set_delivery(delivery.id, None)
        self.log.append(record)
        store.commit()
