"""Scaling out: two workers and two bridges, each its own process, on one Temporal and one
Postgres, with the sandbox's webhooks spread over both bridges by a round-robin balancer.

Eight deals are played by the demo's people; once they are under way bridge A is SIGKILLed and
stays dead. Then every deal must complete with its money right, every event the sandbox sent
must have been taken by some bridge, kept once in the shared inbox and signalled to its deal
once, whichever bridge took it and whichever relay sent it; and both workers did deal work.

The people (portal, vendor API) reach bridge B directly: a click in flight at a bridge that dies
gets an error behind any balancer, and what this test is about is the webhooks.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import asyncpg
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from chaos import checks
from chaos.money import sandbox_movements
from chaos.stack import ChildProcess, bridge_process, process_environment, worker_process
from dealflow.contract import STRIPE_EVENT
from dealflow.messages.payments import StripeEventSignal
from dealflow.models import workflow_id_for
from dealflow.serve import free_port, serve_app
from demo.cast import STARTED, DealRun, DemoTarget, demo_cast, onboard_vendors, perform
from demo.scenarios import HOLD, REVISION, STRAIGHT
from devstack.stack import StackConfig, run_stack
from starter import start_deal
from stripe_sandbox.control import SandboxControl
from tests.scaleout.balancer import RoundRobin

HOST = "127.0.0.1"
DEALS = 8
SCENARIOS = (STRAIGHT, HOLD, REVISION)
#: Deal steps said across all deals before bridge A is killed (a deal says about eight).
KILL_AT_STEP = 20
DEAL_TIMEOUT = 120.0
SETTLE_SECONDS = 30.0
#: A dead relay's claim lapses after four Temporal deadlines of the bridge (4 x 15 s); the
#: events it held, and the later events of their deals, wait that long for the other relay.
CLAIM_LAPSE_SECONDS = 60.0
#: What an inbox row ends as when its event reached the deal, or needs not reach it.
_DONE = {"delivered", "folded", "ignored"}


async def _play(target: DemoTarget, run: DealRun) -> None:
    await start_deal(target.temporal, run.play.spec, target.task_queue)
    run.play.say(STARTED)
    await perform(run, DEAL_TIMEOUT)


async def _kill_when_under_way(
    bridge: ChildProcess, runs: Sequence[DealRun], balancer: RoundRobin, url: str
) -> float:
    """SIGKILL the bridge once the deals are under way and it has taken webhooks; when, by the
    event loop's clock."""
    while sum(len(run.play.steps) for run in runs) < KILL_AT_STEP or not balancer.accepted_by(url):
        await asyncio.sleep(0.1)
    await bridge.kill()
    return asyncio.get_running_loop().time()


async def _claims_of_the_dead(pool: asyncpg.Pool) -> set[str]:
    """Events a relay claimed and still holds a second later: the dead bridge's, caught between
    signalling and writing it down (a live relay's attempt takes milliseconds). The other relay
    sends these again once the claim lapses, and the deal ignores the repeat."""
    claimed = (
        "SELECT event_id, claimed_by FROM stripe_events"
        " WHERE status = 'pending' AND claimed_by IS NOT NULL"
    )
    await asyncio.sleep(1.0)  # a claim the dead bridge had sent just before it died is written by now
    before = {tuple(row) for row in await pool.fetch(claimed)}
    await asyncio.sleep(1.0)
    return {event_id for event_id, _ in before & {tuple(row) for row in await pool.fetch(claimed)}}


async def _inbox_drained(pool: asyncpg.Pool) -> None:
    deadline = asyncio.get_running_loop().time() + CLAIM_LAPSE_SECONDS + SETTLE_SECONDS
    while await pool.fetchval("SELECT count(*) FROM stripe_events WHERE status = 'pending'"):
        assert asyncio.get_running_loop().time() < deadline, "events still pending in the inbox"
        await asyncio.sleep(0.5)


async def _histories(client: Client, deal_ids: Sequence[str]) -> dict[str, list[HistoryEvent]]:
    return {
        deal_id: list(
            (await client.get_workflow_handle(workflow_id_for(deal_id)).fetch_history()).events
        )
        for deal_id in deal_ids
    }


def _stripe_signals(events: Sequence[HistoryEvent]) -> list[tuple[str, str]]:
    """(event id, identity of the client that signalled it) of each `stripe_event` signal."""
    signals = []
    for event in events:
        attributes = event.workflow_execution_signaled_event_attributes
        if (
            event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
            and attributes.signal_name == STRIPE_EVENT
        ):
            [signal] = pydantic_data_converter.payload_converter.from_payloads(
                list(attributes.input.payloads), [StripeEventSignal]
            )
            signals.append((signal.event_id, attributes.identity))
    return signals


def _worker_identities(events: Sequence[HistoryEvent]) -> set[str]:
    return {
        identity
        for event in events
        for identity in (
            event.workflow_task_completed_event_attributes.identity,
            event.activity_task_started_event_attributes.identity,
        )
        if identity
    }


def _pid_of(identity: str) -> int:
    return int(identity.split("@", 1)[0])


async def _ledger_settled(
    pool: asyncpg.Pool, sandbox: SandboxControl, deal_ids: set[str]
) -> checks.CheckResult:
    """The ledger is written by activities after the stages change: give it time to catch up."""
    deadline = asyncio.get_running_loop().time() + SETTLE_SECONDS
    while True:
        result = await checks.ledger_equals_sandbox(
            pool, await sandbox_movements(sandbox), deal_ids
        )
        if result.ok or asyncio.get_running_loop().time() > deadline:
            return result
        await asyncio.sleep(0.5)


async def test_two_workers_and_two_bridges_deliver_every_webhook_once_and_a_killed_bridge_loses_nothing(
    dev_server_env: WorkflowEnvironment, database_url: str, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    balancer_port = free_port(HOST)
    bridge_a_port, bridge_b_port = free_port(HOST), free_port(HOST)
    bridge_a_url, bridge_b_url = f"http://{HOST}:{bridge_a_port}", f"http://{HOST}:{bridge_b_port}"
    config = StackConfig(
        home=home,
        database_url=database_url,
        task_queue=f"deals-{uuid.uuid4().hex[:8]}",
        host=HOST,
        bridge_port=balancer_port,  # the sandbox's webhook endpoint
        public_url=bridge_b_url,  # the links in mails
        webhook_retry_base_seconds=0.5,
        run_worker=False,
        run_bridge=False,
    )
    balancer = RoundRobin([bridge_a_url, bridge_b_url])
    client = dev_server_env.client
    async with (
        run_stack(config, client) as stack,
        serve_app(balancer.app(), host=HOST, port=balancer_port),
    ):
        environment = process_environment(stack.settings, client.service_client.config.target_host)
        workers = [
            worker_process(environment, home / f"worker-{n}.log", f"worker {n}") for n in (1, 2)
        ]
        bridge_a = bridge_process(environment, bridge_a_port, home / "bridge-a.log", "bridge A")
        bridge_b = bridge_process(environment, bridge_b_port, home / "bridge-b.log", "bridge B")
        children = [*workers, bridge_a, bridge_b]
        try:
            await asyncio.gather(*(child.start() for child in children))
            target = dataclasses.replace(DemoTarget.from_stack(stack), bridge_url=bridge_b_url)
            async with demo_cast(target, step_timeout=DEAL_TIMEOUT) as cast:
                runs = [
                    cast.deal_run(
                        SCENARIOS[n % len(SCENARIOS)], f"scale-{uuid.uuid4().hex[:6]}-{n}", n
                    )
                    for n in range(DEALS)
                ]
                await onboard_vendors(target, runs)
                killer = asyncio.create_task(
                    _kill_when_under_way(bridge_a, runs, balancer, bridge_a_url)
                )
                plays = asyncio.gather(*(_play(target, run) for run in runs))
                killed_at = await killer
                in_flight_at_kill = await _claims_of_the_dead(stack.pool)
                await plays
            deal_ids = [run.play.spec.deal_id for run in runs]
            assert [run.error for run in runs if not run.ok] == [], "every deal completes"

            await _inbox_drained(stack.pool)
            async with stack.sandbox_control() as sandbox:
                ledger = await _ledger_settled(stack.pool, sandbox, set(deal_ids))
                deliveries = await sandbox.deliveries()
                movements = await sandbox_movements(sandbox)
            histories = await _histories(client, deal_ids)
            inbox = {
                row["event_id"]: row
                for row in await stack.pool.fetch(
                    "SELECT event_id, deal_id, type, status, attempts, last_error, received_at FROM stripe_events"
                )
            }
            bridge_pids = {bridge_a.process.pid: "A", bridge_b.process.pid: "B"}
            worker_pids = {worker.process.pid for worker in workers}
        finally:
            for child in reversed(children):
                await child.stop()
            await balancer.aclose()

    # Every event the sandbox sent was taken by some bridge (a 2xx); none is still owed.
    sent = {attempt["event_id"] for attempt in deliveries["attempts"]}
    taken = {attempt["event_id"] for attempt in deliveries["attempts"] if attempt["delivered"]}
    assert deliveries["pending"] == 0 and sent == taken, f"never taken: {sorted(sent - taken)}"
    taken_by_a, taken_by_b = balancer.accepted_by(bridge_a_url), balancer.accepted_by(bridge_b_url)
    assert taken_by_a and taken_by_b, "the balancer spread the webhooks over both bridges"

    # Each is kept once in the shared inbox (its id is the key) and reached its deal, or needed
    # not. An event the dead bridge was signalling is sent again once its claim lapses: a repeat
    # the deal ignores; its deal's later events wait behind it (each deal's events go in order),
    # while the deal may go on without them (it polls Stripe for an open payment). One the dead
    # bridge was answering when it died (a 502 from the balancer) Stripe sends again after its
    # backoff. Any of these, when its deal has ended meanwhile, is kept as folded if the deal's
    # ledger had its payment (bridge/late_events.py), else refused and kept as undeliverable.
    assert set(inbox) == taken
    unfinished = {event_id: row["status"] for event_id, row in inbox.items() if row["status"] not in _DONE}
    resent_by_stripe = {attempt["event_id"] for attempt in deliveries["attempts"] if not attempt["delivered"]}
    held_behind = {
        event_id
        for event_id, row in inbox.items()
        for dead in in_flight_at_kill & set(inbox)
        if row["deal_id"] == inbox[dead]["deal_id"] and row["received_at"] >= inbox[dead]["received_at"]
    }
    late = in_flight_at_kill | held_behind | resent_by_stripe
    assert {e: dict(inbox[e]) for e in unfinished if e not in late} == {}, late
    assert all(
        status == "undeliverable" and "has ended" in (inbox[e]["last_error"] or "")
        for e, status in unfinished.items()
    ), {e: dict(inbox[e]) for e in unfinished}

    # Each was signalled to its deal exactly once, by one of the two bridges (one the dead
    # bridge was signalling: not at all, once or twice: its signal may have died with it, and
    # its deal may have ended before the other bridge sent it again).
    signals = {deal_id: _stripe_signals(events) for deal_id, events in histories.items()}
    counts = Counter((deal_id, event_id) for deal_id, pairs in signals.items() for event_id, _ in pairs)
    delivered = {(row["deal_id"], event_id) for event_id, row in inbox.items() if row["status"] == "delivered"}
    maybe = {(inbox[event_id]["deal_id"], event_id) for event_id in in_flight_at_kill & set(inbox)}
    assert delivered <= set(counts) <= delivered | maybe, "every relayed event, and only those, reached its deal"
    assert {key: n for key, n in counts.items() if n > (2 if key[1] in in_flight_at_kill else 1)} == {}
    relayed_by = Counter(bridge_pids[_pid_of(identity)] for pairs in signals.values() for _, identity in pairs)
    # B relays; A may have died before its relay took an event (on a loaded machine it often does).
    assert relayed_by["B"] > 0, relayed_by

    # What bridge A took before it died is not lost: all of it is in the inbox, done, and no
    # webhook was answered by it once dead (one cut off as it died was retried, and taken by B).
    # (or, being late as above, kept by its ended deal as folded or undeliverable)
    assert all(inbox[event_id]["status"] in _DONE or event_id in late for event_id in taken_by_a)
    assert not any(
        a.upstream == bridge_a_url and a.at > killed_at and a.status_code < 300
        for a in balancer.answers
    )

    # Both workers ran deal work, and no money moved twice.
    identities = set().union(*(_worker_identities(events) for events in histories.values()))
    assert worker_pids <= {_pid_of(identity) for identity in identities}, (
        "both workers took deal tasks"
    )
    assert checks.charged_once(runs, movements).problems == []
    assert ledger.problems == [], "the ledger is the sandbox's money to the cent"
