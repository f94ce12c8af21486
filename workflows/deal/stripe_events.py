"""Stripe events, taken as hints: deduplicated by event id, refused when they mix live and test
money with the deal, then checked against Stripe in the deal's Stripe turn. Payment events go to
`Payments` to confirm; disputes, refunds and refunded charges are re-read from Stripe, whose
copy decides which milestone (if any) they concern. Deals recorded before STRIPE_HINTS_VERIFIED
keep taking those on the webhook's word."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.payments import PaymentActivities
    from dealflow.contract import EventKind
    from dealflow.messages import ChargeState, DisputeState, MilestoneState, StripeEventSignal
    from workflows import calls
    from workflows.deal.chargebacks import Chargebacks
    from workflows.deal.context import DealContext
    from workflows.deal.disputes import Disputes
    from workflows.deal.payments import Payments
    from workflows.deal.refunds import Refunds
    from workflows.deal.release import Release
    from workflows.milestone import MilestoneRun

S = MilestoneState


class AboutAPayment(Protocol):
    """A Stripe object read back for an event: a dispute, a refund or a charge."""

    @property
    def payment_intent_id(self) -> str | None: ...

    @property
    def currency(self) -> str: ...


Paid = TypeVar("Paid", bound=AboutAPayment)


@dataclass(frozen=True)
class ReadBack(Generic[Paid]):
    """How an event's object is re-read from Stripe, named on the timeline, and acted on."""

    what: str
    read: Callable[[Any, str], Awaitable[Paid]]
    name: Callable[[Paid], str]
    act: Callable[[StripeEventSignal, Paid, MilestoneRun], None]


#: What a chargeback does to the balance; followed from DISPUTES_AND_DEBITS on.
DISPUTE_FUNDS_EVENTS = ("charge.dispute.funds_withdrawn", "charge.dispute.funds_reinstated")
#: Stripe event types that may mean a milestone got paid; each is confirmed by reading Stripe.
PAYMENT_EVENTS = frozenset(
    {
        "checkout.session.completed",
        "checkout.session.async_payment_succeeded",
        "payment_intent.succeeded",
        "payment_intent.amount_capturable_updated",
    }
)


class StripeEvents:
    def __init__(
        self,
        ctx: DealContext,
        payments: Payments,
        disputes: Disputes,
        refunds: Refunds,
        release: Release,
        chargebacks: Chargebacks,
    ) -> None:
        self.ctx = ctx
        self.payments = payments
        self.disputes = disputes
        self.refunds = refunds
        self.release = release
        self.chargebacks = chargebacks
        #: The ids of the events taken already (a redelivery is a duplicate), carried on when the
        #: deal continues as new.
        self.seen: set[str] = set()
        #: Stripe events about a milestone, besides the payment events that may fund one, as
        #: deals recorded before STRIPE_HINTS_VERIFIED took them: on the webhook's word.
        self._on_the_webhooks_word: dict[str, Callable[[MilestoneRun, StripeEventSignal], None]] = {
            "payment_intent.payment_failed": lambda m, _: self._payment_failed(m),
            "charge.dispute.created": lambda m, e: self.disputes.chargeback_opened(m, e.object_id),
            "charge.dispute.closed": lambda m, e: self.disputes.chargeback_closed(
                m, e.object_id, e.status
            ),
            "refund.created": lambda m, e: self.refunds.refund_seen(m, e.object_id),
            "charge.refunded": lambda m, e: self.refunds.charge_refunded(
                m, e.object_id, e.payment_intent_id, e.amount
            ),
        }
        #: The same events re-read from Stripe first: the object's own payment decides which
        #: milestone (if any) it concerns, and its amounts are Stripe's, not the webhook's.
        dispute = ReadBack(
            "reading the Stripe dispute",
            PaymentActivities.retrieve_dispute,
            lambda dispute: f"Stripe dispute {dispute.dispute_id}",
            self._dispute,
        )
        self._verified: dict[str, ReadBack[Any]] = {
            "charge.dispute.created": dispute,
            "charge.dispute.closed": dispute,
            "refund.created": ReadBack(
                "reading the refund",
                PaymentActivities.retrieve_refund,
                lambda refund: f"Refund {refund.refund_id}",
                lambda _, refund, m: self.refunds.refund_seen(m, refund.refund_id),
            ),
            "charge.refunded": ReadBack(
                "reading the refunded charge",
                PaymentActivities.retrieve_charge,
                lambda charge: f"Charge {charge.charge_id}",
                self._charge_refunded,
            ),
        }
        if ctx.disputes_and_debits:
            self._verified.update(dict.fromkeys(DISPUTE_FUNDS_EVENTS, dispute))

    async def receive(self, event: StripeEventSignal) -> None:
        """A verified webhook, as a hint: deduplicated by event id, then checked against Stripe."""
        try:
            await self._take(event)
        finally:
            self.ctx.journal.flush()

    async def _take(self, event: StripeEventSignal) -> None:
        ctx = self.ctx
        if event.event_id in self.seen:
            ctx.record(
                "stripe",
                EventKind.DUPLICATE_EVENT,
                f"Duplicate Stripe event {event.event_id} ignored",
            )
            return
        self.seen.add(event.event_id)
        ctx.record(
            "stripe",
            EventKind.STRIPE_EVENT,
            f"Stripe event {event.type} ({event.event_id})",
            ctx.find(event.milestone_key),
        )
        if ctx.livemode is not None and event.livemode != ctx.livemode:
            ctx.anomaly(
                f"Stripe event {event.event_id} is {'live' if event.livemode else 'test'} "
                "money, unlike this deal: ignored"
            )
            return
        async with ctx.stripe_turn():
            await self._check(event)

    async def _check(self, event: StripeEventSignal) -> None:
        ctx = self.ctx
        m = ctx.find(
            event.milestone_key,
            session_id=event.checkout_session_id,
            intent_id=event.payment_intent_id,
        )
        if ctx.disputes_and_debits and self.payments.debits.concerns_a_debit(event):
            await self._confirm_payment(event, m)
            return
        if event.type in PAYMENT_EVENTS:
            if ctx.lean:
                await self._confirm_payment(event, m)
            elif event.type.startswith("checkout.session."):
                session_id = event.checkout_session_id or event.object_id
                state = await ctx.attempt(
                    "reading the Checkout Session",
                    calls.stripe(PaymentActivities.retrieve_checkout_session, session_id),
                    m,
                )
                if state is not None:
                    await self.payments.confirm_session(state, "stripe", "Stripe webhook", m)
            else:
                await self.payments.confirm_intent(
                    event.payment_intent_id or event.object_id, "stripe", "Stripe webhook", m
                )
            return
        verified = self._verified.get(event.type)
        if verified is not None and ctx.stripe_hints_verified():
            await self._read_back(verified, event)
            return
        handler = self._on_the_webhooks_word.get(event.type)
        if m is None or handler is None:
            about = "nothing to do" if m else "it concerns no milestone of this deal"
            ctx.record(
                "stripe", EventKind.STRIPE_EVENT_IGNORED, f"Stripe event {event.type}: {about}", m
            )
        else:
            handler(m, event)

    async def _confirm_payment(self, event: StripeEventSignal, m: MilestoneRun | None) -> None:
        """One read of Stripe per payment: the PaymentIntent the hint names (its metadata says
        whose it is), or the Checkout Session when the hint names no intent. A hint about a
        payment counted already costs no read."""
        ctx = self.ctx
        session_event = event.type.startswith("checkout.session.")
        intent_id = event.payment_intent_id or (None if session_event else event.object_id)
        if intent_id is None:
            state = await ctx.attempt(
                "reading the Checkout Session",
                calls.stripe(
                    PaymentActivities.retrieve_checkout_session,
                    event.checkout_session_id or event.object_id,
                ),
                m,
            )
            if state is not None:
                await self.payments.confirm_session(state, "stripe", "Stripe webhook", m)
        elif ctx.counted(intent_id):
            ctx.record(
                "stripe",
                EventKind.STRIPE_EVENT_IGNORED,
                f"Stripe event {event.type}: payment {intent_id} is counted already",
                m,
            )
        else:
            await self.payments.confirm_intent(intent_id, "stripe", "Stripe webhook", m)

    async def _read_back(self, how: ReadBack[Any], event: StripeEventSignal) -> None:
        """Act on Stripe's copy of the event's object, for the milestone whose payment it
        concerns (an anomaly when it concerns none of this deal's)."""
        found = await self.ctx.attempt(how.what, calls.stripe(how.read, event.object_id))
        if found is None:
            return
        m = self._milestone_of_payment(how.name(found), found.payment_intent_id, found.currency)
        if m is None:
            return
        refunded_before = m.refunded
        how.act(event, found, m)
        if self.ctx.lean and m.state is S.RELEASED and m.refunded > refunded_before:
            # Money of a paid-out milestone went back to the client: the vendor's share follows.
            await self.release.follow_money_back(m, m.refunded - refunded_before, event.object_id)

    def _dispute(self, event: StripeEventSignal, dispute: DisputeState, m: MilestoneRun) -> None:
        if event.type in DISPUTE_FUNDS_EVENTS:
            self.chargebacks.funds_moved(event.type, m, dispute)
            return
        if event.type == "charge.dispute.created":
            self.disputes.chargeback_opened(m, dispute.dispute_id)
            if self.ctx.disputes_and_debits:
                self.chargebacks.answer(m, dispute)
            return
        self.disputes.chargeback_closed(m, dispute.dispute_id, dispute.status)
        if self.ctx.disputes_and_debits:
            self.chargebacks.closed(m, dispute)
        if self.ctx.lean and m.state is S.RELEASED and dispute.status == "lost":
            # The bank took the money back from the platform after the vendor was paid.
            m.count_returned(dispute.amount, extra=True)

    def _charge_refunded(self, _: StripeEventSignal, charge: ChargeState, m: MilestoneRun) -> None:
        ctx = self.ctx
        collected = m.funded if charge.payment_intent_id == m.payment_intent_id else charge.amount
        if charge.amount_refunded > collected:
            ctx.anomaly(
                f"Stripe reports {ctx.money(charge.amount_refunded)} refunded on charge "
                f"{charge.charge_id}, more than the {ctx.money(collected)} collected",
                m,
            )
        self.refunds.charge_refunded(
            m, charge.charge_id, charge.payment_intent_id, charge.amount_refunded
        )

    def _milestone_of_payment(
        self, what: str, intent_id: str | None, currency: str
    ) -> MilestoneRun | None:
        """The milestone whose payment a re-read Stripe object concerns; an anomaly if none."""
        ctx = self.ctx
        m = ctx.find(None, intent_id=intent_id) if intent_id else None
        if m is None:
            ctx.anomaly(f"{what} concerns payment {intent_id}, which is not this deal's: ignored")
        elif currency.lower() != ctx.spec.currency:
            ctx.anomaly(f"{what} is in {currency.upper()}, unlike this deal: ignored", m)
            return None
        return m

    def _payment_failed(self, m: MilestoneRun) -> None:
        self.ctx.record(
            "stripe",
            EventKind.PAYMENT_FAILED,
            f"A payment attempt for '{m.title}' failed; the payment link stays open",
            m,
        )
