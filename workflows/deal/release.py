"""Release and payout: approved work is paid for. The hold is captured if need be, the money
transferred to the vendor's Stripe account (or released for a payout outside Connect), the
receipt issued and mailed, and the approved files delivered. Money that cannot move stops the
milestone as a dispute for an operator."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.payments import PaymentActivities
    from dealflow.contract import EventKind
    from dealflow.messages import (
        ArtifactDeliveryInput,
        EmailAttachment,
        EmailKind,
        MilestoneState,
        PaymentKind,
        ReceiptInput,
        ReceiptResult,
        TransferInput,
    )
    from dealflow.models import AfterReleaseRefund
    from dealflow.money import platform_fee
    from workflows import calls, rules
    from workflows.deal.capture import Capture
    from workflows.deal.context import DealContext
    from workflows.deal.disputes import Disputes
    from workflows.deal.reversals import Reversals
    from workflows.deal.timers import Timer
    from workflows.mail import artifact_context, fee_context
    from workflows.milestone import MilestoneRun

S = MilestoneState
#: The deadline a waiting payout shows.
RECHECK_PAYEE = "ask Stripe again whether the vendor's account can receive the payout"


class Release:
    def __init__(
        self, ctx: DealContext, capture: Capture, disputes: Disputes, reversals: Reversals
    ) -> None:
        self.ctx = ctx
        self.capture = capture
        self.disputes = disputes
        self.reversals = reversals

    async def release_phase(self, m: MilestoneRun) -> None:
        if self.ctx.deal_terms and not await self._payee_ready(m):
            return
        async with self.ctx.stripe_turn():
            problem = await self.pay_vendor(m)
        if problem is not None:
            self.disputes.open(m, f"payout stopped: {problem}", "system")

    async def _payee_ready(self, m: MilestoneRun) -> bool:
        """Before the transfer (DEAL_TERMS): the vendor's Stripe account can receive it, or the
        deal says why not and asks Stripe again every `payout_recheck` until it can, instead of a
        transfer that fails. False: the deal was stopped, or the milestone left `approved` (a
        chargeback, a refund) while it waited; its new state's phase takes over."""
        ctx = self.ctx
        account_id = ctx.spec.vendor.stripe_account
        if account_id is None:
            return True
        waited = False
        while ctx.stop is None and m.state is S.APPROVED:
            account = await ctx.attempt(
                "reading the vendor's Stripe account",
                calls.stripe(PaymentActivities.retrieve_payee_account, account_id),
                m,
            )
            if account is None or account.can_receive_transfers:
                if waited:
                    ctx.record(
                        "workflow",
                        EventKind.PAYOUT_ACCOUNT_READY,
                        f"{ctx.spec.vendor.name}'s Stripe account {account_id} can receive "
                        f"transfers now: the payout for '{m.title}' goes ahead",
                        m,
                    )
                return True
            if not waited:
                ctx.record(
                    "workflow",
                    EventKind.PAYOUT_WAITING,
                    f"The payout for '{m.title}' waits for {ctx.spec.vendor.name}: "
                    f"{account.why_not()}. Stripe is asked again every "
                    f"{rules.span(ctx.policy.payout_recheck)}",
                    m,
                )
                ctx.notify(
                    EmailKind.PAYOUT_WAITING,
                    "vendor",
                    f"payout_waiting:{m.key}",
                    m,
                    reason=account.why_not(),
                    recheck=rules.span(ctx.policy.payout_recheck),
                    vendor_id=ctx.spec.vendor.vendor_id,
                )
                waited = True
            await self._recheck_later(m)
        return False

    async def _recheck_later(self, m: MilestoneRun) -> None:
        """Sleep one `payout_recheck` (a durable timer the status shows), or until the deal stops
        or the milestone leaves `approved`."""
        due = workflow.now() + self.ctx.policy.payout_recheck
        fired: list[bool] = []

        async def fire() -> None:
            fired.append(True)

        await self.ctx.timers.run(
            lambda: not fired and m.state is S.APPROVED,
            lambda: [Timer(due, RECHECK_PAYEE, fire)],
        )

    async def pay_vendor(self, m: MilestoneRun) -> str | None:
        """Capture (if only authorized), then transfer or release; then the receipt and notices.
        Returns why the money could not move, or None when it did."""
        assert m.payment_intent_id
        ctx = self.ctx
        if not m.captured:
            intent = await self.capture.capture(m)
            if intent is None:
                return "the payment could not be captured"
        amount = m.held
        fee = platform_fee(amount, ctx.policy.platform_fee_bps, ctx.policy.platform_fee_fixed)
        share = amount - fee
        transfer_id = None
        if ctx.spec.vendor.stripe_account:
            transfer = await ctx.attempt(
                "transferring the payout",
                calls.stripe(
                    PaymentActivities.transfer_to_vendor,
                    TransferInput(
                        deal_id=ctx.spec.deal_id,
                        milestone_key=m.key,
                        destination_account=ctx.spec.vendor.stripe_account,
                        amount=share,
                        currency=ctx.spec.currency,
                        source_transaction=m.charge_id,
                    ),
                ),
                m,
            )
            if transfer is None:
                return "the transfer to the vendor's Stripe account failed"
            transfer_id = m.transfer_id = transfer.transfer_id
            ctx.ledger_payment(m, PaymentKind.TRANSFER, transfer_id, transfer.amount, "paid")
        else:
            ctx.ledger_payment(m, PaymentKind.RELEASE, m.payment_intent_id, share, "released")
        if fee:
            ctx.ledger_payment(m, PaymentKind.PLATFORM_FEE, m.payment_intent_id, fee, "kept")
        m.released += amount
        m.platform_fee += fee
        how = f"transfer {transfer_id}" if transfer_id else "payout outside Stripe Connect"
        kept = f"; the platform kept {ctx.money(fee)}, the vendor gets {ctx.money(share)}" if fee else ""
        ctx.set_state(
            m,
            S.RELEASED,
            "workflow",
            EventKind.RELEASED,
            f"{ctx.money(amount)} for '{m.title}' released to {ctx.spec.vendor.name} ({how}){kept}",
        )
        self._issue_receipt(m, amount, fee)
        ctx.notify(
            EmailKind.PAYOUT_SENT,
            "vendor",
            f"payout_sent:{m.key}",
            m,
            transfer_id=transfer_id,
            **fee_context(ctx.money, fee, share),
        )
        artifacts = m.deliverables[-1].artifacts if m.deliverables else []
        if artifacts:
            delivery = ArtifactDeliveryInput(
                deal_id=ctx.spec.deal_id,
                milestone_key=m.key,
                client_email=str(ctx.spec.client.email),
                title=m.title,
                artifacts=artifacts,
                demo=ctx.policy.demo,
            )
            ctx.beside("delivering the approved files", calls.DELIVER_ARTIFACTS, delivery, m)
        return None

    async def follow_money_back(self, m: MilestoneRun, returned: int, why: str) -> None:
        """`returned` of a released milestone went back to the client (a refund, a lost
        chargeback; `why` is its Stripe id): take the vendor's share of it back from their
        transfer, or record that the platform absorbs it, as the policy says. A reversal
        Stripe refuses (the vendor's account no longer holds the money) is an anomaly that
        names what the operator must do; nothing is lost silently."""
        ctx = self.ctx
        back = rules.vendor_share_back(returned, m.released, m.platform_fee, m.reversed)
        if back == 0:
            return
        if ctx.policy.after_release_refund is AfterReleaseRefund.ABSORB:
            ctx.record(
                "workflow",
                EventKind.LOSS_ABSORBED,
                f"The platform absorbs {ctx.money(back)} of the {ctx.money(returned)} given back "
                f"for '{m.title}' ({why}); {ctx.spec.vendor.name} keeps the payout",
                m,
            )
            return
        if m.transfer_id is None:
            ctx.anomaly(
                f"{ctx.money(back)} of {ctx.spec.vendor.name}'s payout for '{m.title}' went back "
                f"to the client ({why}); the payout was made outside Stripe Connect: collect it "
                "from the vendor",
                m,
            )
            return
        if await self.reversals.take_back(m, back, why, purpose=why):
            return
        if ctx.disputes_and_debits:
            self.reversals.refused(m, back, why)
            return
        ctx.anomaly(
            f"{ctx.money(back)} could not be taken back from {ctx.spec.vendor.name}'s "
            f"transfer {m.transfer_id} for '{m.title}' ({why}): reverse it in the Stripe "
            "dashboard once their account holds it, or collect it from the vendor",
            m,
        )

    def _issue_receipt(self, m: MilestoneRun, amount: int, fee: int) -> None:
        """The receipt of a release, then its mail to the client with the PDF."""
        spec = self.ctx.spec
        self.ctx.beside(
            "issuing the receipt",
            calls.ISSUE_RECEIPT,
            ReceiptInput(
                deal_id=spec.deal_id,
                milestone_key=m.key,
                milestone_title=m.title,
                deal_title=spec.title,
                client_name=spec.client.name,
                client_email=str(spec.client.email),
                vendor_name=spec.vendor.name,
                vendor_email=str(spec.vendor.email),
                amount=amount,
                platform_fee=fee,
                late_fee=m.late_fee,
                currency=spec.currency,
                livemode=m.livemode,
                sandbox=m.sandbox,
                payment_intent_id=m.payment_intent_id,
                charge_id=m.charge_id,
                transfer_id=m.transfer_id,
                released_at=workflow.now(),
            ),
            m,
            then=lambda receipt: self._mail_receipt(m, amount, receipt),
        )

    async def _mail_receipt(self, m: MilestoneRun, amount: int, receipt: ReceiptResult) -> None:
        m.receipt_number = receipt.receipt_number
        self.ctx.record(
            "workflow",
            EventKind.RECEIPT,
            f"Receipt {receipt.receipt_number} issued for '{m.title}'",
            m,
        )
        artifacts = m.deliverables[-1].artifacts if m.deliverables else []
        email = self.ctx.email(
            EmailKind.APPROVED_RECEIPT,
            "client",
            f"approved_receipt:{m.key}",
            m,
            attachments=[
                EmailAttachment(
                    filename=f"receipt-{receipt.receipt_number}.pdf",
                    content_type="application/pdf",
                    content_b64=receipt.pdf_b64,
                )
            ],
            receipt_number=receipt.receipt_number,
            released_display=self.ctx.money(amount),
            artifacts=[artifact_context(a) for a in artifacts],
        )
        await self.ctx.send_mail(email, m)
