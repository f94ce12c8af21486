"""A deal's page and history in the Temporal UI tell its story: the summary and details it
started with, where it stands now (stage, what it waits for, the next deadline, its money), and
a line on every activity and timer."""

from __future__ import annotations

from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from dealflow.console import activity_summary, current_details, deal_details, deal_summary
from dealflow.contract import DEAL_STAGE_SINCE
from dealflow.messages import CreateCheckoutInput, Deadline, DealStage, MoneyTotals
from tests.deal_harness import make_spec, running_deal

SCHEDULED = EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
TIMER = EventType.EVENT_TYPE_TIMER_STARTED


async def current(handle) -> str:  # type: ignore[no-untyped-def]
    metadata = await handle.query("__temporal_workflow_metadata")
    return metadata.current_details


async def test_the_ui_shows_each_deal_and_each_step(dev_server_env: WorkflowEnvironment) -> None:
    spec = make_spec(milestones=2)
    async with running_deal(dev_server_env, spec) as deal:
        description = await deal.handle.describe()
        assert await description.static_summary() == deal_summary(spec)
        assert await description.static_details() == deal_details(spec)
        await deal.wait_for("the SOW sent", lambda s: s.stage is DealStage.SOW_SENT)
        details = await current(deal.handle)
        assert "**Stage:** sow_sent" in details and "the client's signature" in details
        assert "**Next:**" in details
        started_since = description.typed_search_attributes[DEAL_STAGE_SINCE]
        final = await deal.complete()
        history = await deal.handle.fetch_history()
        ended = await deal.handle.describe()
    assert ended.typed_search_attributes[DEAL_STAGE_SINCE] > started_since, "the stage moved on"
    assert final.stage == "completed"
    converter = dev_server_env.client.data_converter.payload_converter
    scheduled = [e for e in history.events if e.event_type == SCHEDULED]
    timers = [e for e in history.events if e.event_type == TIMER]
    missing = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in scheduled
        if not e.user_metadata.HasField("summary")
    ]
    assert not missing, f"activities without a summary: {missing}"
    assert all(t.user_metadata.HasField("summary") for t in timers)
    checkout = [
        converter.from_payload(e.user_metadata.summary, str)
        for e in scheduled
        if e.activity_task_scheduled_event_attributes.activity_type.name
        == "create_checkout_session"
    ]
    first = spec.milestones[0]
    assert checkout[0].startswith(f"checkout for {first.key!r}")
    assert checkout[0].endswith(f"USD {first.amount // 100:,}.00 (link 1)")


def test_the_lines_say_what_and_how_much() -> None:
    checkout = CreateCheckoutInput(
        deal_id="d",
        milestone_key="design",
        generation=2,
        title="Visual design",
        amount=900_000,
        currency="usd",
        client_email="ada@example.com",
        capture_method="automatic",
        expires_at="2026-12-02T00:00:00Z",
    )
    assert (
        activity_summary("create_checkout_session", checkout)
        == "checkout for 'design' 'Visual design' USD 9,000.00 (link 2)"
    )
    assert activity_summary("retrieve_charge", "ch_123") == "retrieve charge ch_123"
    details = current_details(
        DealStage.DELIVERED,
        Deadline(at="2026-12-16T10:00:00Z", action="auto-approve 'design'"),
        MoneyTotals(contract=900_000, funded=900_000),
        "usd",
    )
    assert details.split("\n\n") == [
        "**Stage:** delivered",
        "**Waiting for:** the client's review",
        "**Next:** auto-approve 'design' at 2026-12-16T10:00+00:00",
        "**Money:** contract USD 9,000.00, held USD 9,000.00",
    ]


def test_a_sow_out_for_signature_waits_for_the_signer_whose_turn_it_is() -> None:
    money = MoneyTotals(contract=900_000)
    assert "**Waiting for:** the client's signature" in current_details(DealStage.SOW_SENT, None, money, "usd")
    countersigning = current_details(DealStage.SOW_SENT, None, money, "usd", "vendor")
    assert "**Waiting for:** the vendor's signature" in countersigning
