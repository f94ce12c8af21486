"""When deals first show an amount collected, read from the `deals` read model: one query for
every watched deal per interval, instead of a `status` query per deal (the read model is what the
portal, the dashboard and the admin list read where it is enough)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import asyncpg


@dataclass(frozen=True)
class _Wanted:
    deal_id: str
    collected: int
    seen: asyncio.Future[float]


class ReadModelWatch:
    """`collected(deal, amount)` gives a future of the monotonic time the deal's row first showed
    `funded + released >= amount`, as of the start of the query that saw it."""

    def __init__(self, pool: asyncpg.Pool, *, interval: float = 0.05) -> None:
        self.pool = pool
        self.interval = interval
        self._wanted: list[_Wanted] = []
        self.queries = 0

    def collected(self, deal_id: str, amount: int) -> asyncio.Future[float]:
        seen: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._wanted.append(_Wanted(deal_id, amount, seen))
        return seen

    async def poll_forever(self) -> None:
        """One query every interval while any deal is watched (run it `beside` the work)."""
        while True:
            self._wanted = [wanted for wanted in self._wanted if not wanted.seen.done()]
            if self._wanted:
                asked_at = time.monotonic()
                rows = await self.pool.fetch(
                    "SELECT deal_id, funded + released AS collected FROM deals WHERE deal_id = ANY($1::text[])",
                    sorted({wanted.deal_id for wanted in self._wanted}),
                )
                self.queries += 1
                collected = {row["deal_id"]: row["collected"] for row in rows}
                for wanted in self._wanted:
                    if collected.get(wanted.deal_id, -1) >= wanted.collected:
                        wanted.seen.set_result(asked_at)
            await asyncio.sleep(self.interval)
