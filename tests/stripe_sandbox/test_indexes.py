"""The sandbox finds objects through indexes instead of scanning them all: lists, cursors, time
ranges, a session by its payment intent, customers by email, refunds by payment intent,
transfers by group and a transfer's reversals, what falls due, and the balance.
Each is checked right after the objects it covers are made or changed, and again after a restart
rebuilt it."""

from __future__ import annotations

from pathlib import Path

import pytest
import stripe

from stripe_sandbox.indexes import Deadlines, Timeline
from tests.stripe_contract.harness import running_sandbox, session_params


def ids(page: stripe.ListObject) -> list[str]:
    return [item.id for item in page.data]


async def test_a_session_is_listed_by_its_payment_intent_once_paid_and_after_a_restart(
    tmp_path: Path,
) -> None:
    state_file = tmp_path / "sandbox.json"
    async with running_sandbox(state_file=state_file) as first:
        sessions = first.client().v1.checkout.sessions
        paid, _, unpaid = [await sessions.create_async(session_params()) for _ in range(3)]
        intent_id = (await first.control.pay(paid.id))["payment_intent"]["id"]
        assert ids(await sessions.list_async({"payment_intent": intent_id})) == [paid.id]
        assert ids(await sessions.list_async({"status": "complete"})) == [paid.id]
        await sessions.expire_async(unpaid.id)
        assert ids(await sessions.list_async({"status": "expired"})) == [unpaid.id]
    async with running_sandbox(state_file=state_file) as second:
        sessions = second.client().v1.checkout.sessions
        assert ids(await sessions.list_async({"payment_intent": intent_id})) == [paid.id]
        assert ids(await sessions.list_async({"payment_intent": "pi_unknown"})) == []
        assert ids(await sessions.list_async({"status": "expired"})) == [unpaid.id]
        assert len((await sessions.list_async({"status": "open"})).data) == 1


async def test_customers_are_listed_by_exact_email_and_stay_deleted_after_a_restart(
    tmp_path: Path,
) -> None:
    state_file = tmp_path / "sandbox.json"
    async with running_sandbox(state_file=state_file) as first:
        customers = first.client().v1.customers
        kept = await customers.create_async({"email": "ana@example.com"})
        gone = await customers.create_async({"email": "ana@example.com"})
        other = await customers.create_async({"email": "bo@example.com"})
        await customers.delete_async(gone.id)
        assert ids(await customers.list_async({"email": "ana@example.com"})) == [kept.id]
    async with running_sandbox(state_file=state_file) as second:
        client = second.client()
        customers = client.v1.customers
        assert ids(await customers.list_async({"email": "ana@example.com"})) == [kept.id]
        assert ids(await customers.list_async({"email": "Ana@example.com"})) == []
        assert ids(await customers.list_async({"email": "nobody@example.com"})) == []
        assert ids(await customers.list_async()) == [other.id, kept.id]
        assert (await customers.retrieve_async(gone.id)).deleted is True
        session = await client.v1.checkout.sessions.create_async(session_params(customer=kept.id))
        assert session.customer == kept.id


async def test_money_out_is_listed_by_intent_group_and_transfer_after_a_restart(
    tmp_path: Path,
) -> None:
    state_file = tmp_path / "sandbox.json"
    async with running_sandbox(state_file=state_file) as first:
        client = first.client().v1
        intents = []
        for _ in range(2):
            session = await client.checkout.sessions.create_async(session_params())
            intents.append((await first.control.pay(session.id))["payment_intent"])
        refunded, paid_out = intents
        refunds = [
            await client.refunds.create_async({"payment_intent": refunded["id"], "amount": 100})
            for _ in range(2)
        ]
        await first.control.create_account("acct_1Indexed")
        grouped = {"destination": "acct_1Indexed", "currency": "usd", "amount": 500}
        source = {"source_transaction": paid_out["latest_charge"]}
        mine = await client.transfers.create_async({**grouped, **source, "transfer_group": "d:m1"})
        await client.transfers.create_async({**grouped, **source, "transfer_group": "d:m2"})
        reversal = await client.transfers.reversals.create_async(mine.id, {"amount": 200})
    async with running_sandbox(state_file=state_file) as second:
        client = second.client().v1
        newest_first = [refund.id for refund in reversed(refunds)]
        assert ids(await client.refunds.list_async({"payment_intent": refunded["id"]})) == newest_first
        assert ids(await client.refunds.list_async({"payment_intent": paid_out["id"]})) == []
        charge = {"charge": refunded["latest_charge"]}
        assert ids(await client.refunds.list_async({**charge, "limit": 1})) == newest_first[:1]
        assert ids(await client.transfers.list_async({"transfer_group": "d:m1"})) == [mine.id]
        other = {"transfer_group": "d:m1", "destination": "acct_1Other"}
        assert ids(await client.transfers.list_async(other)) == []
        assert len((await client.transfers.list_async()).data) == 2
        assert ids(await client.transfers.reversals.list_async(mine.id)) == [reversal.id]
        with pytest.raises(stripe.InvalidRequestError):
            await client.transfers.reversals.list_async("tr_unknown")


async def test_pages_run_newest_first_from_either_cursor() -> None:
    async with running_sandbox() as sandbox:
        sessions = sandbox.client().v1.checkout.sessions
        made = [(await sessions.create_async(session_params())).id for _ in range(25)]
        newest_first = made[::-1]
        first = await sessions.list_async({"limit": 10})
        assert (ids(first), first.has_more) == (newest_first[:10], True)
        last = await sessions.list_async({"limit": 10, "starting_after": newest_first[19]})
        assert (ids(last), last.has_more) == (newest_first[20:], False)
        before = await sessions.list_async({"limit": 3, "ending_before": newest_first[10]})
        assert (ids(before), before.has_more) == (newest_first[7:10], True)
        paged = [session.id async for session in first.auto_paging_iter()]
        assert paged == newest_first
        with pytest.raises(stripe.InvalidRequestError) as raised:
            await sessions.list_async({"starting_after": "cs_test_unknown"})
        assert raised.value.param == "starting_after"


async def test_created_ranges_select_by_the_sandbox_clock() -> None:
    async with running_sandbox() as sandbox:
        client = sandbox.client()
        early = await client.v1.checkout.sessions.create_async(session_params())
        await client.v1.checkout.sessions.expire_async(early.id)
        await sandbox.control.advance_clock(3600)
        late = await client.v1.checkout.sessions.create_async(session_params())
        await client.v1.checkout.sessions.expire_async(late.id)
        sessions = client.v1.checkout.sessions
        assert ids(await sessions.list_async({"created": {"gt": early.created}})) == [late.id]
        assert ids(await sessions.list_async({"created": {"lte": early.created}})) == [early.id]
        assert ids(await sessions.list_async({"created": {"lt": late.created}})) == [early.id]
        assert ids(await sessions.list_async({"created": early.created})) == [early.id]
        events = await client.v1.events.list_async(
            {"type": "checkout.session.expired", "created": {"gte": late.created}}
        )
        assert [event.data.object.id for event in events.data] == [late.id]


async def test_what_falls_due_is_still_due_after_a_restart(tmp_path: Path) -> None:
    state_file = tmp_path / "sandbox.json"
    async with running_sandbox(state_file=state_file) as first:
        client = first.client()
        now = await first.control.now()
        session = await client.v1.checkout.sessions.create_async(
            session_params(expires_at=now + 31 * 60)
        )
        held = await client.v1.payment_intents.create_async(
            {
                "amount": 2000,
                "currency": "usd",
                "payment_method": "pm_card_visa",
                "confirm": True,
                "capture_method": "manual",
            }
        )
    async with running_sandbox(state_file=state_file) as second:
        assert (await second.control.advance_clock(30 * 60))["expired_sessions"] == []
        assert (await second.control.advance_clock(2 * 60))["expired_sessions"] == [session.id]
        lapsed = await second.control.advance_clock(7 * 86400)
        assert lapsed["lapsed_authorizations"] == [held.id]
        intent = await second.client().v1.payment_intents.retrieve_async(held.id)
        assert (intent.status, intent.cancellation_reason) == ("canceled", "automatic")


async def test_the_available_balance_is_kept_across_a_restart(tmp_path: Path) -> None:
    state_file = tmp_path / "sandbox.json"
    async with running_sandbox(state_file=state_file) as first:
        session = await first.client().v1.checkout.sessions.create_async(session_params(5000))
        await first.control.pay(session.id)
        vendor = (await first.client().v1.accounts.create_async({"type": "express"})).id
        await first.control.onboard_account(vendor)
        await first.control.advance_clock(2 * 86_400)  # the card money becomes available
    async with running_sandbox(state_file=state_file) as second:
        transfers = second.client().v1.transfers
        # 5000 less Stripe's fee of 175 (2.9 % + 30 cents).
        transfer = {"amount": 4826, "currency": "usd", "destination": vendor}
        with pytest.raises(stripe.InvalidRequestError, match="4825 usd available"):
            await transfers.create_async(transfer)
        await transfers.create_async({**transfer, "amount": 4825})
        assert (await second.control.money())["available"] == {"usd": 0}


def test_a_timeline_span_is_the_positions_a_created_range_can_match() -> None:
    timeline = Timeline()
    for number, created in enumerate([100, 100, 105, 110, 110, 120]):
        timeline.append(f"obj_{number}", created)
    assert timeline.span(None) == range(6)
    assert timeline.span({"gte": 105, "lt": 120}) == range(2, 5)
    assert timeline.span({"gt": 105, "lte": 110}) == range(3, 5)
    assert timeline.span({"eq": 100}) == range(2)
    assert timeline.span({"gt": 200}) == range(6, 6)
    timeline.append("obj_0", 500)
    assert (timeline.position("obj_0"), len(timeline)) == (0, 6)


def test_deadlines_hand_out_each_due_id_once_at_its_latest_time() -> None:
    deadlines = Deadlines()
    deadlines.set("a", 10)
    deadlines.set("b", 20)
    deadlines.set("c", 15)
    deadlines.set("c", 30)
    deadlines.set("b", None)
    assert deadlines.pop_due(5) == []
    assert deadlines.pop_due(25) == ["a"]
    assert deadlines.pop_due(25) == []
    assert deadlines.pop_due(30) == ["c"]
