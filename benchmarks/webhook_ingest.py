"""How fast the bridge answers signed Stripe webhooks at a steady rate, and how soon each
payment's deal shows it funded.

    .venv/bin/python -m benchmarks.webhook_ingest [--deals 200] [--rate 50]

Starts `dealflow dev` in a home and on ports of its own (Temporal dev server, embedded Postgres,
sandbox, SMTP sink, worker and bridge in one process, as people run it), opens N one-milestone
deals, signs each and pays each through the sandbox with its webhook delivery turned off. Then it
POSTs the events those payments made (as the sandbox wrote them, signed afresh) to the bridge at
R per second, on schedule whatever the answers take (Stripe does not wait either), and measures:

- the bridge's answer to each POST;
- per deal, from its first event's POST to the workflow task that funded it (the `funded` row's
  time in the ledger: the workflow's own clock, no polling load);
- for every twentieth deal, from its first POST to its `status` query showing it funded
  (polled every 0.25 s: an upper bound by up to that much; few, so the queries add little load).

It also reports the CPU the stack spent from the first POST until the ledger was written down
after the last funding, per payment, by process (dealflow dev's own, the Temporal server,
Postgres): a figure the other load on a shared machine moves less than latencies. It prints a
line for people and one JSON line for comparing runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
import stripe
from temporalio.client import Client
from temporalio.service import RPCError

from dealflow.contract import SIGN_SOW, STATUS
from dealflow.db import embedded_database_url
from dealflow.messages import ActionResult, DealStatus, SignSow
from dealflow.models import workflow_id_for
from dealflow.secret_rules import ensure_dev_secrets
from dealflow.serve import free_port
from dealflow.settings import Settings
from devstack.runtime import DevRuntime, bridge_alive, connect_runtime, read_runtime
from starter import start_deal
from stripe_sandbox.control import SandboxControl
from tests.bridge_support import FUNDED_STATES, deal_spec

#: The events a card payment through Checkout makes (manual capture: amount_capturable_updated).
PAYMENT_EVENT_TYPES = ("checkout.session.completed", "payment_intent.succeeded")
STATUS_SAMPLE_EVERY = 20
STATUS_POLL_SECONDS = 0.25
START_TIMEOUT = 120.0
SETTLE_TIMEOUT = 120.0
#: The ledger's row count, polled every 0.5 s, is the same this many times: setup is over.
SETTLED_POLLS = 4
#: Deals started, signed and paid at once while setting up.
SETUP_CONCURRENCY = 8


@dataclass
class Sent:
    """What the benchmark measured, per event and per deal."""

    answer_seconds: list[float] = field(default_factory=list)
    answers: Counter[str] = field(default_factory=Counter)
    first_post: dict[str, float] = field(default_factory=dict)
    status_seen: dict[str, float] = field(default_factory=dict)


def _stack_processes(runtime: DevRuntime, home: Path) -> dict[str, list[psutil.Process]]:
    """dealflow dev (worker, bridge, sandbox, SMTP sink), its Temporal server, and the embedded
    Postgres of its home (the postmaster and its backends)."""
    dev = psutil.Process(runtime.pid)
    data_dir = str(home / "pg")
    postmasters = [
        p for p in psutil.process_iter(["cmdline"]) if data_dir in " ".join(p.info["cmdline"] or [])
    ]
    return {
        "dealflow_dev": [dev],
        "temporal": [p for p in dev.children(recursive=True) if p.name().startswith("temporal")],
        "postgres": [q for p in postmasters for q in (p, *p.children(recursive=True))],
    }


def _cpu_seconds(processes: dict[str, list[psutil.Process]]) -> dict[str, float]:
    def used(process: psutil.Process) -> float:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            return 0.0
        return times.user + times.system

    return {name: sum(used(p) for p in group) for name, group in processes.items()}


def percentile(values: Sequence[float], share: float) -> float | None:
    """Nearest-rank percentile (`share` in 0..1); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def _s(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)


@asynccontextmanager
async def dealflow_dev(home: Path) -> AsyncIterator[DevRuntime]:
    """`dealflow dev` on free ports with its own home; stopped with Ctrl-C's signal at the end."""
    ports = {
        name: str(free_port()) for name in ("BRIDGE", "SANDBOX", "SMTP", "TEMPORAL", "TEMPORAL_UI")
    }
    env = {
        **os.environ,
        "DEALFLOW_ENV": "dev",
        "DEALFLOW_HOME": str(home),
        **{f"DEALFLOW_{name}_PORT": port for name, port in ports.items()},
    }
    log = (home / "dev.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "dealflow"),
        "dev",
        env=env,
        cwd=home,
        stdout=log,
        stderr=log,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while (runtime := read_runtime(home)) is None or not await bridge_alive(runtime.bridge_url):
            if process.returncode is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dealflow dev did not start; see {home / 'dev.log'}")
            await asyncio.sleep(0.5)
        yield runtime
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(process.wait(), 60)
            except TimeoutError:
                process.kill()
                await process.wait()
        log.close()


async def _status(client: Client, deal_id: str) -> DealStatus:
    """The deal's status; asked again while a busy worker lets the query time out."""
    handle = client.get_workflow_handle(workflow_id_for(deal_id))
    while True:
        try:
            return await handle.query(STATUS, result_type=DealStatus)
        except RPCError:
            await asyncio.sleep(STATUS_POLL_SECONDS)


async def _open_and_pay(
    client: Client, sandbox: SandboxControl, task_queue: str, deal_id: str
) -> None:
    """Start the deal, sign it, wait for its pay link and pay it (no webhook goes out)."""
    spec = deal_spec(
        deal_id,
        milestones=[{"key": "build", "title": "Build", "amount": 120000, "due_in_days": 10}],
    )
    handle = await start_deal(client, spec, task_queue)
    await handle.execute_update(
        SIGN_SOW, SignSow(signer_name="Casey Client", consent=True), result_type=ActionResult
    )
    while True:
        [milestone] = (await _status(client, deal_id)).milestones
        if milestone.checkout_session_id:
            break
        await asyncio.sleep(0.2)
    await sandbox.pay(milestone.checkout_session_id)


async def _payment_events(sandbox_url: str, api_key: str, since: int) -> list[dict[str, Any]]:
    """Every payment event the sandbox made since `since`, oldest first."""
    events: list[dict[str, Any]] = []
    params: dict[str, Any] = {
        "limit": 100,
        "types[]": list(PAYMENT_EVENT_TYPES),
        "created[gte]": since,
    }
    async with httpx.AsyncClient(
        base_url=sandbox_url, headers={"Authorization": f"Bearer {api_key}"}
    ) as http:
        while True:
            page = (await http.get("/v1/events", params=params)).raise_for_status().json()
            events.extend(page["data"])
            if not page["has_more"]:
                return events[::-1]
            params["starting_after"] = page["data"][-1]["id"]


async def _post(http: httpx.AsyncClient, event: dict[str, Any], secret: str, sent: Sent) -> None:
    body = json.dumps(event)
    header = stripe.WebhookSignature.generate_signature_header(body, secret, int(time.time()))
    started = time.monotonic()
    answer = await http.post(
        "/webhooks/stripe",
        content=body,
        headers={"Stripe-Signature": header, "Content-Type": "application/json"},
    )
    sent.answer_seconds.append(time.monotonic() - started)
    ok = answer.status_code == 200
    sent.answers[answer.json()["status"] if ok else f"http {answer.status_code}"] += 1


async def _watch_status(client: Client, deal_id: str, sent: Sent) -> None:
    """Poll the deal's `status` from its first POST until it shows the milestone funded."""
    while deal_id not in sent.first_post:
        await asyncio.sleep(STATUS_POLL_SECONDS / 2)
    while True:
        [milestone] = (await _status(client, deal_id)).milestones
        if milestone.state in FUNDED_STATES:
            sent.status_seen[deal_id] = time.time()
            return
        await asyncio.sleep(STATUS_POLL_SECONDS)


async def _settled(pool: asyncpg.Pool) -> None:
    """Wait until the deals' setup is written down (the ledger stops growing for a while), so
    the measured load is the webhooks' alone, not a tail of mails and ledger writes."""
    counts: list[int] = []
    while len(counts) < SETTLED_POLLS or len(set(counts[-SETTLED_POLLS:])) > 1:
        counts.append(await pool.fetchval("SELECT count(*) FROM deal_events"))
        await asyncio.sleep(0.5)


async def _funded_at(pool: asyncpg.Pool, deal_ids: list[str]) -> dict[str, float]:
    """When each deal's workflow funded it (its `funded` ledger row), waiting until all are."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while True:
        rows = await pool.fetch(
            "SELECT deal_id, min(occurred_at) AS at FROM deal_events WHERE kind = 'funded' AND deal_id = ANY($1) GROUP BY deal_id",
            deal_ids,
        )
        if len(rows) == len(deal_ids) or time.monotonic() > deadline:
            return {row["deal_id"]: row["at"].timestamp() for row in rows}
        await asyncio.sleep(0.5)


async def run(deals: int, rate: float, home: Path) -> dict[str, object]:
    async with dealflow_dev(home) as runtime:
        assert runtime.sandbox_url is not None
        dev_secrets = ensure_dev_secrets(home)
        client = await connect_runtime(runtime, Settings(_env_file=None, DEALFLOW_HOME=home, **dev_secrets))

        token = dev_secrets["DEALFLOW_SANDBOX_TOKEN"]
        async with SandboxControl(runtime.sandbox_url, token=token) as sandbox:
            webhook = await sandbox.set_webhook(None)
            since = await sandbox.now()
            deal_ids = [f"ingest-{n:04d}" for n in range(deals)]
            gate = asyncio.Semaphore(SETUP_CONCURRENCY)

            async def prepare(deal_id: str) -> None:
                async with gate:
                    await _open_and_pay(client, sandbox, runtime.task_queue, deal_id)

            await asyncio.gather(*(prepare(d) for d in deal_ids))
        pool = await asyncpg.create_pool(embedded_database_url(home), min_size=1, max_size=2)
        await _settled(pool)
        assert runtime.sandbox_api_key is not None
        events = await _payment_events(runtime.sandbox_url, runtime.sandbox_api_key, since)
        deal_of = {event["id"]: event["data"]["object"]["metadata"]["deal_id"] for event in events}

        sent = Sent()
        watchers = [
            asyncio.create_task(_watch_status(client, deal_id, sent))
            for deal_id in deal_ids[::STATUS_SAMPLE_EVERY]
        ]
        processes = _stack_processes(runtime, home)
        cpu_before = _cpu_seconds(processes)
        limits = httpx.Limits(max_connections=500, max_keepalive_connections=100)
        async with httpx.AsyncClient(
            base_url=runtime.bridge_url, limits=limits, timeout=60
        ) as http:
            started = time.monotonic()
            posts = []
            for number, event in enumerate(events):
                await asyncio.sleep(max(0.0, started + number / rate - time.monotonic()))
                sent.first_post.setdefault(deal_of[event["id"]], time.time())
                posts.append(asyncio.create_task(_post(http, event, webhook["secret"], sent)))
            await asyncio.gather(*posts)
            sending = time.monotonic() - started
        try:
            funded_at = await _funded_at(pool, deal_ids)
            await _settled(pool)
        finally:
            await pool.close()
        cpu = {name: used - cpu_before[name] for name, used in _cpu_seconds(processes).items()}
        await asyncio.wait(watchers, timeout=SETTLE_TIMEOUT)
        for task in watchers:
            task.cancel()

    funded = [funded_at[d] - sent.first_post[d] for d in deal_ids if d in funded_at]
    seen = [sent.status_seen[d] - sent.first_post[d] for d in sent.status_seen]
    return {
        "benchmark": "webhook_ingest",
        "deals": deals,
        "rate": rate,
        "events": len(events),
        "achieved_rate": round(len(events) / sending, 1),
        "answer_ms_p50": _ms(percentile(sent.answer_seconds, 0.5)),
        "answer_ms_p99": _ms(percentile(sent.answer_seconds, 0.99)),
        "answer_ms_max": _ms(max(sent.answer_seconds, default=None)),
        "answers": dict(sent.answers),
        "post_to_funded_s_p50": _s(percentile(funded, 0.5)),
        "post_to_funded_s_p99": _s(percentile(funded, 0.99)),
        "post_to_status_s_p50": _s(percentile(seen, 0.5)),
        "post_to_status_s_p99": _s(percentile(seen, 0.99)),
        "status_sampled": len(seen),
        "funded": len(funded),
        **{
            f"cpu_ms_per_payment_{name}": round(1000 * used / deals, 1)
            for name, used in cpu.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, default=200, help="open deals, each paid once")
    parser.add_argument("--rate", type=float, default=50.0, help="webhook POSTs per second")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="webhook-bench-") as home:
        result = asyncio.run(run(args.deals, args.rate, Path(home)))
    print(
        f"webhooks: {result['events']} events for {result['deals']} deals at {result['achieved_rate']}/s: "
        f"answer p50 {result['answer_ms_p50']} ms, p99 {result['answer_ms_p99']} ms; POST to funded "
        f"p50 {result['post_to_funded_s_p50']} s, p99 {result['post_to_funded_s_p99']} s (status sample p99 "
        f"{result['post_to_status_s_p99']} s); {result['funded']}/{result['deals']} funded"
    )
    print(json.dumps(result))
    if result["funded"] != result["deals"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
