"""The sandbox's webhooks (signed, retried until a 2xx) and its injected faults, seen through the
`stripe` library and a receiver that verifies with `stripe.Webhook.construct_event` only."""

from __future__ import annotations

import time

import pytest
import stripe

from stripe_sandbox import SandboxConfig
from tests.stripe_contract.harness import eventually, running_sandbox, session_params


async def test_webhooks_are_signed_with_the_endpoint_secret() -> None:
    async with running_sandbox() as sandbox:
        session = await sandbox.client().v1.checkout.sessions.create_async(session_params())
        await sandbox.control.pay(session.id)
        completed = await sandbox.receiver.wait_for(session.id, "checkout.session.completed")
        assert completed.livemode is False
        assert sandbox.receiver.rejected == []


async def test_a_receiver_with_another_secret_rejects_every_delivery() -> None:
    async with running_sandbox() as sandbox:
        sandbox.receiver.secret = "whsec_someone_elses_secret_0000000000"
        session = await sandbox.client().v1.checkout.sessions.create_async(session_params())
        await sandbox.client().v1.checkout.sessions.expire_async(session.id)
        await eventually(lambda: sandbox.receiver.rejected, what="a rejected delivery")
        assert "No signatures found matching the expected signature" in sandbox.receiver.rejected[0]
        assert sandbox.receiver.events == []


async def test_deliveries_are_retried_with_backoff_until_a_2xx() -> None:
    async with running_sandbox() as sandbox:
        sandbox.receiver.fail_next(2)
        session = await sandbox.client().v1.checkout.sessions.create_async(session_params())
        await sandbox.client().v1.checkout.sessions.expire_async(session.id)
        event = await sandbox.receiver.wait_for(session.id, "checkout.session.expired")
        attempts = [
            a for a in (await sandbox.control.deliveries())["attempts"] if a["event_id"] == event.id
        ]
        assert [(a["attempt"], a["status_code"], a["delivered"]) for a in attempts] == [
            (1, 500, False),
            (2, 500, False),
            (3, 200, True),
        ]
        assert [a.get("next_attempt_in_seconds") for a in attempts[:2]] == [0.05, 0.1]
        stored = await sandbox.client().v1.events.retrieve_async(event.id)
        assert stored.pending_webhooks == 0


async def test_waiting_retries_can_be_sent_now() -> None:
    async with running_sandbox(retry_base_seconds=3600) as sandbox:
        sandbox.receiver.fail_next(1)
        session = await sandbox.client().v1.checkout.sessions.create_async(session_params())
        await sandbox.client().v1.checkout.sessions.expire_async(session.id)

        async def failed_once() -> bool:
            return len((await sandbox.control.deliveries())["attempts"]) == 1

        await eventually(failed_once, what="the first, failed attempt")
        assert (await sandbox.control.deliveries())["pending"] == 1
        assert await sandbox.control.retry_webhooks_now() == 1
        await sandbox.receiver.wait_for(session.id, "checkout.session.expired")


async def test_delivery_gives_up_after_the_last_attempt() -> None:
    async with running_sandbox(webhook_max_attempts=3) as sandbox:
        sandbox.receiver.fail_next(1000)
        session = await sandbox.client().v1.checkout.sessions.create_async(session_params())
        await sandbox.client().v1.checkout.sessions.expire_async(session.id)

        async def gave_up() -> list[dict]:
            attempts = (await sandbox.control.deliveries())["attempts"]
            return [a for a in attempts if a.get("gave_up")]

        last = (await eventually(gave_up, what="the sandbox to give up"))[0]
        assert last["attempt"] == 3
        assert sandbox.receiver.attempts == 3
        assert (await sandbox.control.deliveries())["pending"] == 0


async def test_one_delivery_at_a_time_follows_creation_order() -> None:
    async with running_sandbox(webhook_concurrency=1) as sandbox:
        session = await sandbox.client().v1.checkout.sessions.create_async(session_params())
        outcome = await sandbox.control.pay(session.id)
        intent_id = outcome["payment_intent"]["id"]
        await sandbox.receiver.wait_for(session.id, "checkout.session.completed")
        order = [(e.type, e.data.object.id) for e in sandbox.receiver.events]
        charge_id = outcome["charge"]["id"]
        assert order == [
            ("payment_intent.created", intent_id),
            ("charge.succeeded", charge_id),
            ("payment_intent.succeeded", intent_id),
            ("checkout.session.completed", session.id),
        ]


async def test_reorder_fault_sends_a_window_newest_first() -> None:
    async with running_sandbox() as sandbox:
        await sandbox.control.set_faults(reorder_window=5)
        session = await sandbox.client().v1.checkout.sessions.create_async(session_params())
        await sandbox.control.pay(session.id)
        await eventually(lambda: len(sandbox.receiver.events) == 4, what="the four events")
        assert [e.type for e in sandbox.receiver.events] == [
            "checkout.session.completed",
            "payment_intent.succeeded",
            "charge.succeeded",
            "payment_intent.created",
        ]
        listed = await sandbox.client().v1.events.list_async({"limit": 4})
        assert [e.id for e in listed.data] == [e.id for e in sandbox.receiver.events]


async def test_duplicate_fault_sends_each_event_twice() -> None:
    async with running_sandbox() as sandbox:
        await sandbox.control.set_faults(duplicate_webhook_probability=1.0)
        session = await sandbox.client().v1.checkout.sessions.create_async(session_params())
        await sandbox.client().v1.checkout.sessions.expire_async(session.id)
        await eventually(
            lambda: len(sandbox.receiver.about(session.id)) == 2, what="two deliveries"
        )
        first, second = sandbox.receiver.about(session.id)
        assert (first.id, first.type) == (second.id, "checkout.session.expired")


async def test_500s_are_retried_by_the_library() -> None:
    async with running_sandbox() as sandbox:
        await sandbox.control.set_faults(fail_next=[500, 500])
        session = await sandbox.client(max_network_retries=2).v1.checkout.sessions.create_async(
            session_params()
        )
        assert session.status == "open"
        faults = await sandbox.control.faults()
        assert (faults["injected"], faults["fail_next"]) == ({"500": 2}, [])
        listed = await sandbox.client().v1.checkout.sessions.list_async({"limit": 10})
        assert [s.id for s in listed.data] == [session.id]


async def test_a_500_surfaces_as_api_error_without_retries() -> None:
    async with running_sandbox() as sandbox:
        await sandbox.control.set_faults(fail_next=[500])
        with pytest.raises(stripe.APIError) as raised:
            await sandbox.client(max_network_retries=0).v1.checkout.sessions.create_async(
                session_params()
            )
        assert raised.value.http_status == 500
        assert raised.value.json_body["error"]["type"] == "api_error"


async def test_lock_timeout_429s_are_retried_by_the_library() -> None:
    async with running_sandbox() as sandbox:
        await sandbox.control.set_faults(fail_next=[429], rate_limit_code="lock_timeout")
        session = await sandbox.client(max_network_retries=1).v1.checkout.sessions.create_async(
            session_params()
        )
        assert session.id.startswith("cs_test_")
        assert (await sandbox.control.faults())["injected"] == {"429": 1}


async def test_rate_limit_429s_reach_the_caller_as_rate_limit_errors() -> None:
    async with running_sandbox() as sandbox:
        await sandbox.control.set_faults(fail_next=[429])
        with pytest.raises(stripe.RateLimitError) as raised:
            await sandbox.client(max_network_retries=2).v1.checkout.sessions.create_async(
                session_params()
            )
        assert raised.value.http_status == 429
        assert raised.value.json_body["error"]["code"] == "rate_limit"


async def test_probabilistic_faults_are_reproducible_with_a_seed() -> None:
    async with running_sandbox() as sandbox:
        outcomes = []
        for _ in range(2):
            await sandbox.control.set_faults(error_500_probability=0.5, seed=7)
            run = []
            for _ in range(8):
                try:
                    await sandbox.client().v1.events.list_async({"limit": 1})
                    run.append("ok")
                except stripe.APIError:
                    run.append("500")
            outcomes.append(run)
        assert outcomes[0] == outcomes[1]
        assert set(outcomes[0]) == {"ok", "500"}


async def test_latency_fault_delays_every_api_call() -> None:
    async with running_sandbox() as sandbox:
        await sandbox.control.set_faults(latency_ms=300)
        started = time.monotonic()
        await sandbox.client().v1.events.list_async({"limit": 1})
        assert time.monotonic() - started >= 0.3


async def test_state_survives_a_restart_with_a_state_file(tmp_path) -> None:
    state_file = tmp_path / "sandbox.json"
    async with running_sandbox(state_file=state_file) as first:
        client = first.client()
        session = await client.v1.checkout.sessions.create_async(
            session_params(), {"idempotency_key": "restart-1"}
        )
        await first.control.pay(session.id)
        await first.receiver.wait_for(session.id, "checkout.session.completed")
    async with running_sandbox(state_file=state_file) as second:
        client = second.client()
        assert (await client.v1.checkout.sessions.retrieve_async(session.id)).status == "complete"
        replay = await client.v1.checkout.sessions.create_async(
            session_params(), {"idempotency_key": "restart-1"}
        )
        assert replay.id == session.id
        events = await client.v1.events.list_async({"type": "checkout.session.*"})
        assert session.id in [e.data.object.id for e in events.data]
        movements = (await second.control.money())["movements"]
        assert [m["kind"] for m in movements] == ["charge", "stripe_fee"]


async def test_webhook_endpoint_can_be_changed_at_runtime() -> None:
    async with running_sandbox(webhook_url=None) as sandbox:
        session = await sandbox.client().v1.checkout.sessions.create_async(session_params())
        await sandbox.client().v1.checkout.sessions.expire_async(session.id)
        assert (await sandbox.control.deliveries())["attempts"] == []
        receiver_url = sandbox.receiver_url
        await sandbox.control.set_webhook(receiver_url, "whsec_contract_suite_secret_0123456789")
        other = await sandbox.client().v1.checkout.sessions.create_async(session_params())
        await sandbox.client().v1.checkout.sessions.expire_async(other.id)
        await sandbox.receiver.wait_for(other.id, "checkout.session.expired")
        assert sandbox.receiver.about(session.id) == []


def test_config_refuses_a_secret_that_is_not_a_signing_secret() -> None:
    with pytest.raises(ValueError, match="whsec_"):
        SandboxConfig(webhook_secret="shh")
