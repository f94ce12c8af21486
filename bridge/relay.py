"""Hands stored Stripe events to their workflows, in order of receipt, until each is delivered.

The webhook route only stores; this task delivers. It wakes when an event arrives and also
polls, so events stored while Temporal was down (or by a bridge that then stopped) go out once
Temporal answers again. Rows are claimed with FOR UPDATE SKIP LOCKED, so several bridges can
relay from one inbox without delivering a row twice; within a bridge, order is received_seq.
Delivery stops at the first event Temporal cannot take, so later events never overtake it.
"""

from __future__ import annotations

import asyncio
import json
import logging

import asyncpg

from bridge.deals import DealNotFound, Deals, DealUnavailable
from bridge.metrics import BridgeMetrics
from dealflow.stripe_events import deal_event

log = logging.getLogger("dealflow.bridge.relay")

_BATCH = 50


class Relay:
    def __init__(self, pool: asyncpg.Pool, deals: Deals, metrics: BridgeMetrics, *, interval: float) -> None:
        self.pool = pool
        self.deals = deals
        self.metrics = metrics
        self.interval = interval
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Deliver now rather than at the next poll (a webhook was just stored)."""
        self._wake.set()

    async def run(self) -> None:
        """Relay until cancelled. After a failure it waits a full interval before trying again."""
        while True:
            try:
                healthy = await self.deliver_pending()
            except (OSError, asyncpg.PostgresError) as error:
                log.warning("relay cannot read the inbox: %s", error)
                healthy = False
            except Exception:  # the relay must outlive any one bad pass
                log.exception("relay pass failed; retrying after %.1fs", self.interval)
                healthy = False
            if healthy:
                try:
                    await asyncio.wait_for(self._wake.wait(), self.interval)
                except TimeoutError:
                    pass
            else:
                await asyncio.sleep(self.interval)
            self._wake.clear()

    async def deliver_pending(self) -> bool:
        """Deliver pending events until none is left; False if Temporal stopped answering."""
        while True:
            async with self.pool.acquire() as conn, conn.transaction():
                rows = await conn.fetch(
                    """SELECT event_id, deal_id, payload::text AS payload FROM stripe_events
                       WHERE status = 'pending'
                       ORDER BY received_seq
                       LIMIT $1
                       FOR UPDATE SKIP LOCKED""",
                    _BATCH,
                )
                if not rows:
                    return True
                for row in rows:
                    if not await self._deliver(conn, row):
                        return False

    async def _deliver(self, conn: asyncpg.Connection, row: asyncpg.Record) -> bool:
        _deal_id, signal = deal_event(json.loads(row["payload"]))
        try:
            await self.deals.signal_stripe_event(row["deal_id"], signal)
        except DealNotFound:
            await self._mark(conn, row["event_id"], "orphan", f"no deal workflow for '{row['deal_id']}'")
            self.metrics.relay.labels("orphan").inc()
            return True
        except DealUnavailable as error:
            await conn.execute(
                """UPDATE stripe_events SET attempts = attempts + 1, last_error = $2
                   WHERE event_id = $1""",
                row["event_id"],
                str(error),
            )
            self.metrics.relay.labels("retry").inc()
            log.warning("Temporal unavailable; event %s stays pending: %s", row["event_id"], error)
            return False
        await self._mark(conn, row["event_id"], "delivered", None)
        self.metrics.relay.labels("delivered").inc()
        return True

    @staticmethod
    async def _mark(conn: asyncpg.Connection, event_id: str, status: str, note: str | None) -> None:
        await conn.execute(
            """UPDATE stripe_events
               SET status = $2, last_error = $3, attempts = attempts + 1,
                   delivered_at = CASE WHEN $2 = 'delivered' THEN now() END
               WHERE event_id = $1""",
            event_id,
            status,
            note,
        )
