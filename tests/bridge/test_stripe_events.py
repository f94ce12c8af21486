"""Verified Stripe events become (deal id, signal) by the objects' metadata, or orphans."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bridge.stripe_events import MalformedEvent, concerns_deals, deal_event, funding_intent
from tests.bridge_support import card_payment, session_completed, stripe_event


def test_checkout_session_maps_every_field() -> None:
    event = session_completed("acme-site", "build", 120000, created=1_700_000_000, livemode=True)
    deal_id, signal = deal_event(event)
    session = event["data"]["object"]
    assert deal_id == "acme-site"
    assert signal.event_id == event["id"]
    assert signal.type == "checkout.session.completed"
    assert signal.livemode is True
    assert signal.created == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert signal.object_id == session["id"] == signal.checkout_session_id
    assert signal.payment_intent_id == session["payment_intent"]
    assert (signal.amount, signal.currency, signal.milestone_key) == (120000, "usd", "build")


def test_payment_intent_amount_and_id() -> None:
    intent = {"id": "pi_1", "object": "payment_intent", "amount": 5000, "currency": "eur",
              "metadata": {"deal_id": "d-1", "milestone_key": "m1"}}
    deal_id, signal = deal_event(stripe_event("payment_intent.succeeded", intent))
    assert deal_id == "d-1"
    assert (signal.payment_intent_id, signal.checkout_session_id, signal.amount) == ("pi_1", None, 5000)


def test_refunded_charge_takes_the_refunded_amount_and_the_expanded_intents_metadata() -> None:
    charge = {
        "id": "ch_1", "object": "charge", "amount": 9000, "amount_refunded": 4000, "currency": "usd",
        "metadata": {},
        "payment_intent": {"id": "pi_9", "object": "payment_intent", "metadata": {"deal_id": "d-9", "milestone_key": "k"}},
    }
    deal_id, signal = deal_event(stripe_event("charge.refunded", charge))
    assert deal_id == "d-9"
    assert (signal.amount, signal.payment_intent_id, signal.milestone_key) == (4000, "pi_9", "k")


def test_dispute_naming_only_an_intent_id_is_an_orphan() -> None:
    dispute = {"id": "dp_1", "object": "dispute", "amount": 9000, "currency": "usd", "payment_intent": "pi_2"}
    deal_id, signal = deal_event(stripe_event("charge.dispute.created", dispute))
    assert deal_id is None
    assert (signal.payment_intent_id, signal.amount) == ("pi_2", 9000)


def test_event_without_object_is_malformed() -> None:
    with pytest.raises(MalformedEvent):
        deal_event({"id": "evt_1", "type": "checkout.session.completed", "created": 1, "data": {}})


def test_only_payment_families_concern_deals() -> None:
    assert concerns_deals("checkout.session.expired")
    assert concerns_deals("charge.dispute.closed")
    assert not concerns_deals("customer.created")
    assert not concerns_deals("charge.succeeded"), "its payment_intent.succeeded is relayed"
    assert not concerns_deals("payment_intent.created")


@pytest.mark.parametrize("held", [False, True])
def test_both_events_of_a_card_payment_report_the_funding_of_its_intent(held: bool) -> None:
    for event in card_payment("d-1", "m1", 5000, "pi_7", held=held).values():
        assert funding_intent(deal_event(event)[1]) == "pi_7"


def test_later_payment_outcomes_and_other_events_of_the_intent_report_no_funding() -> None:
    session = session_completed("d-1", "m1", 5000)["data"]["object"]
    intent = {"id": "pi_7", "object": "payment_intent", "amount": 5000, "metadata": {"deal_id": "d-1"}}
    charge = {"id": "ch_7", "object": "charge", "amount": 5000, "amount_refunded": 5000, "payment_intent": "pi_7"}
    for event_type, obj in [
        ("checkout.session.async_payment_succeeded", session),
        ("checkout.session.async_payment_failed", session),
        ("payment_intent.payment_failed", intent),
        ("payment_intent.canceled", intent),
        ("charge.refunded", charge),
    ]:
        assert funding_intent(deal_event(stripe_event(event_type, obj))[1]) is None, event_type
