"""Chargebacks answered (DISPUTES_AND_DEBITS): the evidence the deal holds goes to Stripe as
soon as a dispute opens, well before `evidence_details.due_by`, and the operator gets a mail
saying what was sent and by when it was due; a submission that fails for good is an anomaly and
the operator's mail says so. The money a chargeback takes from the balance
(`charge.dispute.funds_withdrawn`) and gives back when won (`funds_reinstated`) is followed on
the milestone, the timeline and the ledger.

The evidence is text (dealflow uploads no files): the signed statement of work and its SHA-256,
how the client signed, the deliverables with their hashes, the receipt and the timeline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.payments import PaymentActivities
    from dealflow.contract import EventKind
    from dealflow.messages import (
        DisputeEvidence,
        DisputeState,
        EmailKind,
        PaymentKind,
        Signature,
        SubmitEvidenceInput,
    )
    from dealflow.messages.disputes import EVIDENCE_FIELD_MAX
    from workflows import calls
    from workflows.deal.context import DealContext
    from workflows.journal import failure
    from workflows.milestone import MilestoneRun

#: Disputes the platform may still answer.
ANSWERABLE = frozenset({"needs_response", "warning_needs_response"})
#: Stripe is asked again on transient failures until this long before the answer is due.
DUE_MARGIN = timedelta(hours=1)
#: However late the dispute came, the submission gets at least this long.
LEAST_TIME = timedelta(minutes=5)
TEXT_ONLY = (
    "Evidence submitted as text by dealflow. Files (the signed statement of work, deliverables, "
    "receipts) are named by their SHA-256 and are available on request."
)


class Chargebacks:
    def __init__(self, ctx: DealContext, signature: Callable[[], Signature | None]) -> None:
        self.ctx = ctx
        self.signature = signature

    # ------------------------------------------------------------------ evidence

    def answer(self, m: MilestoneRun, dispute: DisputeState) -> None:
        """Submit the deal's evidence beside the deal (Stripe's other calls need not wait)."""
        ctx = self.ctx
        due_by = dispute.evidence_due_by
        if dispute.status not in ANSWERABLE or due_by is None or dispute.submission_count:
            ctx.record(
                "workflow",
                EventKind.CHARGEBACK,
                f"Stripe dispute {dispute.dispute_id} ({dispute.status}) takes no evidence now",
                m,
            )
            return
        evidence = self.evidence(m)
        submission = SubmitEvidenceInput(
            deal_id=ctx.spec.deal_id,
            milestone_key=m.key,
            dispute_id=dispute.dispute_id,
            evidence=evidence,
        )
        until_due = max(due_by - DUE_MARGIN - workflow.now(), LEAST_TIME)
        submitting = replace(calls.STRIPE, schedule_to_close=until_due).start(
            PaymentActivities.submit_dispute_evidence, submission
        )
        ctx.background.append(asyncio.create_task(self._answered(m, dispute, evidence, submitting)))

    async def _answered(
        self,
        m: MilestoneRun,
        dispute: DisputeState,
        evidence: DisputeEvidence,
        submitting: workflow.ActivityHandle[DisputeState],
    ) -> None:
        ctx = self.ctx
        due = _when(dispute.evidence_due_by)
        try:
            try:
                submitted = await submitting
            except ActivityError as error:
                problem = failure(error)
                ctx.anomaly(
                    f"The evidence for Stripe dispute {dispute.dispute_id} on '{m.title}' could "
                    f"not be submitted ({problem}); it is due {due}: the operator was told",
                    m,
                )
                self._tell_operator(m, dispute, evidence, problem)
                return
            late = " (after its due date)" if submitted.past_due else ""
            ctx.record(
                "workflow",
                EventKind.DISPUTE_EVIDENCE_SUBMITTED,
                f"Evidence for Stripe dispute {dispute.dispute_id} on '{m.title}' submitted"
                f"{late}, due {due}: {', '.join(evidence.fields())}; it is {submitted.status}",
                m,
            )
            self._tell_operator(m, dispute, evidence, problem="")
        finally:
            ctx.journal.flush()

    def _tell_operator(
        self, m: MilestoneRun, dispute: DisputeState, evidence: DisputeEvidence, problem: str
    ) -> None:
        ctx = self.ctx
        ctx.notify_operator(
            EmailKind.DISPUTE_EVIDENCE,
            f"dispute_evidence:{m.key}:{dispute.dispute_id}",
            m,
            dispute_id=dispute.dispute_id,
            dispute_amount_display=ctx.money(dispute.amount),
            due_by=_when(dispute.evidence_due_by),
            submitted=not problem,
            problem=problem,
            evidence=[{"field": name, "text": text} for name, text in evidence.fields().items()],
        )

    def evidence(self, m: MilestoneRun) -> DisputeEvidence:
        """What the deal holds about the disputed milestone, in Stripe's evidence fields."""
        ctx = self.ctx
        spec = ctx.spec
        signature = self.signature()
        signed = (
            f"Signed {_when(signature.signed_at)} by {signature.signer_name}"
            if signature
            else "Not signed"
        )
        return DisputeEvidence(
            product_description=_fit(
                f"{spec.title}, milestone '{m.title}' ({ctx.money(m.spec.amount)}), under the "
                f"statement of work below. {signed}; its text's SHA-256 is {ctx.sow_sha256}.\n\n"
                f"{spec.sow}"
            ),
            customer_name=spec.client.name,
            customer_email_address=str(spec.client.email),
            customer_purchase_ip=signature.ip if signature else None,
            service_date=(
                m.deliverables[-1].submitted_at.date().isoformat() if m.deliverables else None
            ),
            access_activity_log=_fit(self._signature_log(signature)),
            uncategorized_text=_fit(
                "\n\n".join((TEXT_ONLY, self._deliverables(m), self._receipt(m))),
                tail=self._timeline(),
            ),
        )

    def _signature_log(self, signature: Signature | None) -> str:
        if signature is None:
            return "The client has not signed the statement of work."
        return (
            f"The client signed the statement of work electronically in dealflow's portal: "
            f"typed name '{signature.signer_name}', explicit consent to sign electronically "
            f"(required to sign), at {_when(signature.signed_at)}, from IP "
            f"{signature.ip or 'unknown'}, user agent {signature.user_agent or 'unknown'}; the "
            f"text they signed has SHA-256 {signature.sow_sha256}."
        )

    def _deliverables(self, m: MilestoneRun) -> str:
        if not m.deliverables:
            return f"Deliverables of '{m.title}': none submitted yet."
        lines = [f"Deliverables of '{m.title}':"]
        for d in m.deliverables:
            lines.append(f"- revision {d.revision}, submitted {_when(d.submitted_at)}: {d.summary}")
            lines.extend(f"  {a.name} ({a.url}) SHA-256 {a.sha256}" for a in d.artifacts)
        return "\n".join(lines)

    def _receipt(self, m: MilestoneRun) -> str:
        if m.receipt_number is None:
            return f"Receipt: none issued yet for '{m.title}'."
        return f"Receipt {m.receipt_number} issued for '{m.title}' on its release."

    def _timeline(self) -> list[str]:
        return [
            f"{_when(e.at)} {e.source}: {e.message}"
            for e in self.ctx.journal.timeline
            if e.kind != EventKind.ANOMALY
        ]

    # ------------------------------------------------------------------ the money

    def funds_moved(self, event_type: str, m: MilestoneRun, dispute: DisputeState) -> None:
        """Stripe took the disputed amount from the balance, or gave it back (a won dispute);
        each once per dispute, whatever Stripe resends."""
        ctx = self.ctx
        amount, dispute_id = dispute.amount, dispute.dispute_id
        if event_type.endswith("funds_withdrawn"):
            if dispute_id in m.withdrawals:
                return
            m.withdrawals[dispute_id] = amount
            kind, payment, status = (
                EventKind.DISPUTE_FUNDS_WITHDRAWN,
                PaymentKind.DISPUTE_WITHDRAWAL,
                "withdrawn",
            )
            message = f"took {ctx.money(amount)} from the balance until the bank decides"
        else:
            if m.withdrawals.pop(dispute_id, None) is None:
                return
            kind, payment, status = (
                EventKind.DISPUTE_FUNDS_REINSTATED,
                PaymentKind.DISPUTE_REINSTATEMENT,
                "reinstated",
            )
            message = f"was won: {ctx.money(amount)} is back in the balance"
        ctx.ledger_payment(m, payment, dispute_id, amount, status)
        ctx.record("stripe", kind, f"Stripe dispute {dispute_id} on '{m.title}' {message}", m)

    def closed(self, m: MilestoneRun, dispute: DisputeState) -> None:
        """A lost dispute's withdrawn money went back to the client for good (it is counted as
        refunded); a won one's comes back with `funds_reinstated`."""
        if dispute.status == "lost":
            m.withdrawals.pop(dispute.dispute_id, None)


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC") if at else "unknown"


def _fit(text: str, tail: list[str] | None = None) -> str:
    """`text`, then as many `tail` lines as fit in one evidence field (the first ones: how the
    deal began), saying how many were left out; `text` itself is cut to fit if it must."""
    lines = tail or []
    if lines:
        text += "\n\nTimeline:"
    note = "\n… {} more entries"
    for count, line in enumerate(lines):
        if len(text) + len(line) + 1 + len(note.format(len(lines))) > EVIDENCE_FIELD_MAX:
            return text + note.format(len(lines) - count)
        text += "\n" + line
    cut = " … (cut to fit; the SHA-256 above is of the whole text)"
    return text if len(text) <= EVIDENCE_FIELD_MAX else text[: EVIDENCE_FIELD_MAX - len(cut)] + cut
