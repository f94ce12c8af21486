"""Webhooks go out several at once, as Stripe sends them: each event is acknowledged once, a 5xx
is retried on its own without holding back the others, and what is not yet acknowledged when the
sandbox stops is sent by the next run."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass, field

import stripe
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dealflow.serve import serve_app
from tests.stripe_contract.harness import eventually, running_sandbox, session_params

CONCURRENCY = 6
EVENTS = 30


@dataclass
class SlowReceiver:
    """Takes a while to answer each delivery, counts how many are in flight, and answers 503 to
    the first attempt at every third event it sees."""

    in_flight: int = 0
    most_in_flight: int = 0
    attempts: Counter[str] = field(default_factory=Counter)
    acknowledged: Counter[str] = field(default_factory=Counter)

    async def _handle(self, request: Request) -> Response:
        event_id = json.loads(await request.body())["id"]
        self.attempts[event_id] += 1
        refuse = self.attempts[event_id] == 1 and len(self.attempts) % 3 == 0
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.05)
        finally:
            self.in_flight -= 1
        if refuse:
            return Response(status_code=503)
        self.acknowledged[event_id] += 1
        return Response(status_code=200)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/webhook", self._handle, methods=["POST"])])


async def expired_sessions(client: stripe.StripeClient, count: int) -> list[str]:
    """Make `count` sessions and expire them: one `checkout.session.expired` event each."""
    ids = []
    for _ in range(count):
        session = await client.v1.checkout.sessions.create_async(session_params())
        await client.v1.checkout.sessions.expire_async(session.id)
        ids.append(session.id)
    return ids


async def test_many_events_are_delivered_several_at_a_time_and_acknowledged_once() -> None:
    receiver = SlowReceiver()
    async with (
        serve_app(receiver.app()) as receiver_base,
        running_sandbox(
            webhook_url=f"{receiver_base}/webhook", webhook_concurrency=CONCURRENCY
        ) as sandbox,
    ):
        client = sandbox.client()
        await expired_sessions(client, EVENTS)

        async def all_acknowledged() -> bool:
            return len(receiver.acknowledged) == EVENTS and (
                (await sandbox.control.deliveries())["pending"] == 0
            )

        await eventually(all_acknowledged, timeout=20, what="every event acknowledged")
        events = await client.v1.events.list_async({"limit": 100})

    assert sorted(receiver.acknowledged) == sorted(event.id for event in events.data)
    assert set(receiver.acknowledged.values()) == {1}
    assert sorted(Counter(receiver.attempts.values()).items()) == [(1, 20), (2, 10)]
    assert 1 < receiver.most_in_flight <= CONCURRENCY
    assert all(event.pending_webhooks == 0 for event in events.data)


async def test_a_failing_delivery_is_retried_without_holding_back_the_others() -> None:
    async with running_sandbox(retry_base_seconds=3) as sandbox:
        sandbox.receiver.fail_next(1)
        await expired_sessions(sandbox.client(), 5)

        async def attempts() -> list[tuple[str, int, bool]]:
            log = (await sandbox.control.deliveries())["attempts"]
            return [(a["event_id"], a["attempt"], a["delivered"]) for a in log]

        async def retried() -> list[tuple[str, int, bool]] | None:
            log = await attempts()
            return log if sum(delivered for _, _, delivered in log) == 5 else None

        # The log is in the order the attempts ended: the failed event's retry comes after the
        # four others went through on their first attempt, none waiting for it.
        log = await eventually(retried, what="all five events delivered")
        [failed] = [event_id for event_id, _, delivered in log if not delivered]
        assert [(attempt, delivered) for event_id, attempt, delivered in log if event_id == failed] == [
            (1, False), (2, True)
        ]
        others = [(attempt, delivered) for event_id, attempt, delivered in log[:-1] if event_id != failed]
        assert others == [(1, True)] * 4 and log[-1] == (failed, 2, True)
        event = await sandbox.client().v1.events.retrieve_async(failed)
        assert await sandbox.receiver.wait_for(event.data.object.id, "checkout.session.expired")


async def test_deliveries_left_pending_are_sent_after_a_restart(tmp_path) -> None:
    state_file = tmp_path / "sandbox.json"
    async with running_sandbox(state_file=state_file, retry_base_seconds=3600) as first:
        first.receiver.fail_next(1000)
        sessions = await expired_sessions(first.client(), 3)
        await eventually(
            lambda: first.receiver.attempts == 3, what="a failed attempt at each event"
        )
        assert (await first.control.deliveries())["pending"] == 3
    async with running_sandbox(state_file=state_file, retry_base_seconds=3600) as second:
        for session_id in sessions:
            await second.receiver.wait_for(session_id, "checkout.session.expired")
        attempts = (await second.control.deliveries())["attempts"]
        assert sorted((a["attempt"], a["delivered"]) for a in attempts) == [(2, True)] * 3
        assert (await second.control.deliveries())["pending"] == 0
