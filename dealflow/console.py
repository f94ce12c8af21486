"""What the Temporal UI shows of a deal, so its page and history read like the deal's story:
the summary and details a deal starts with, the details of where it stands now, and one line on
each activity it runs. Plain text and Markdown from the deal's own data; no Temporal calls.

E-mail addresses stay out of the lines on activities and of the current details (an operator
finds a deal by client through its search attributes); the starting details name the parties.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dealflow.messages import (
    ArtifactDeliveryInput,
    CertificateInput,
    CreateCheckoutInput,
    Deadline,
    DealSnapshot,
    DealStage,
    EmailInput,
    ExpireCheckoutInput,
    LedgerBatch,
    LedgerEvent,
    MoneyTotals,
    PaymentIntentAction,
    PaymentRecord,
    ReceiptInput,
    RefundInput,
    ReverseTransferInput,
    TransferInput,
    WorkOrderInput,
)
from dealflow.models import DealSpec
from dealflow.money import format_money
from dealflow.versions import due_text

#: What a deal in each stage waits for, to say on its page.
WAITING_FOR = {
    DealStage.AWAITING_FUNDING: "the client's payment",
    DealStage.IN_PROGRESS: "the vendor's delivery",
    DealStage.DELIVERED: "the client's review",
    DealStage.REVISION_REQUESTED: "the vendor's revised delivery",
    DealStage.DISPUTED: "the dispute's outcome",
}


def deal_summary(spec: DealSpec) -> str:
    """One line: what the deal is, between whom, for how much."""
    count = len(spec.milestones)
    return (
        f"{spec.title}: {spec.client.name} / {spec.vendor.name}, "
        f"{format_money(spec.total_amount, spec.currency)} in {count} milestone{'s' * (count != 1)}"
    )


def deal_details(spec: DealSpec) -> str:
    """The terms a deal starts with, as Markdown: parties, policy and the milestones."""
    lines = [
        f"**{spec.title}** (`{spec.deal_id}`)",
        "",
        f"- Client: {spec.client.name}"
        + (f", {spec.client.company}" if spec.client.company else ""),
        f"- Vendor: {spec.vendor.name}",
        f"- Total: {format_money(spec.total_amount, spec.currency)}",
        f"- Capture: {spec.policy.capture.value}; review window {spec.policy.review_window}",
        "",
        "| milestone | title | amount | due |",
        "|---|---|---|---|",
    ]
    for m in spec.milestones:
        due = due_text(m)
        lines.append(f"| `{m.key}` | {m.title} | {format_money(m.amount, spec.currency)} | {due} |")
    return "\n".join(lines)


def current_details(
    stage: DealStage,
    deadline: Deadline | None,
    money: MoneyTotals,
    currency: str,
    signer: str = "client",
) -> str:
    """Where the deal stands, as Markdown: its stage, what it waits for (the `signer` whose
    signature, while the SOW is out), the next deadline and what happens then, and its money."""
    lines = [f"**Stage:** {stage.value}"]
    if stage is DealStage.SOW_SENT:
        lines.append(f"**Waiting for:** the {signer}'s signature")
    elif stage in WAITING_FOR:
        lines.append(f"**Waiting for:** {WAITING_FOR[stage]}")
    if deadline is not None:
        lines.append(f"**Next:** {deadline.action} at {deadline.at.isoformat(timespec='minutes')}")
    shown = [
        ("contract", money.contract),
        ("held", money.funded),
        ("released", money.released),
        ("platform fees", money.platform_fees),
        ("late fees", money.late_fees),
        ("refunded", money.refunded),
        ("disputed", money.disputed),
    ]
    lines.append(
        "**Money:** "
        + ", ".join(
            f"{name} {format_money(amount, currency)}"
            for name, amount in shown
            if amount or name == "contract"
        )
    )
    return "\n\n".join(lines)


def activity_summary(activity: str, arg: Any) -> str:
    """One line on what an activity call does, from its input: "checkout for 'design' ...";
    a plain id says what is read ("retrieve payment intent pi_123")."""
    plain = activity.replace("_", " ")
    describe = _ACTIVITY_SUMMARIES.get(type(arg))
    if describe is None:
        return f"{plain} {arg}" if isinstance(arg, str) else plain
    try:
        return describe(arg)
    except Exception:  # noqa: BLE001 - a line for the UI must never fail the step asking for it
        return plain


def _money(amount: int, currency: str) -> str:
    return format_money(amount, currency.lower())


def _ledger(batch: LedgerBatch) -> str:
    parts = [f"{len(batch.events)} event{'s' * (len(batch.events) != 1)}"]
    if batch.payments:
        parts.append(f"{len(batch.payments)} payment{'s' * (len(batch.payments) != 1)}")
    if batch.snapshot is not None:
        parts.append(f"deal row ({batch.snapshot.stage})")
    return "ledger: " + ", ".join(parts)


_ACTIVITY_SUMMARIES: dict[type, Callable[[Any], str]] = {
    CreateCheckoutInput: lambda i: (
        f"checkout for {i.milestone_key!r} {i.title!r} {_money(i.amount, i.currency)} (link {i.generation})"
    ),
    ExpireCheckoutInput: lambda i: f"expire checkout {i.session_id} of {i.milestone_key!r}",
    PaymentIntentAction: lambda i: f"payment {i.payment_intent_id} of {i.milestone_key!r}",
    RefundInput: lambda i: (
        f"refund {'what is left' if i.amount is None else i.amount} of {i.payment_intent_id} "
        f"({i.purpose}, {i.milestone_key!r})"
    ),
    TransferInput: lambda i: (
        f"pay out {_money(i.amount, i.currency)} of {i.milestone_key!r} to {i.destination_account}"
    ),
    ReverseTransferInput: lambda i: (
        f"take back {i.amount} of transfer {i.transfer_id} ({i.purpose}, {i.milestone_key!r})"
    ),
    EmailInput: lambda i: (
        f"mail {i.kind}"
        + (f" for {i.context['milestone_title']!r}" if "milestone_title" in i.context else "")
    ),
    WorkOrderInput: lambda i: (
        f"work order for {i.milestone_key!r} {i.title!r}"
        + (f", revision {i.revision}" if i.revision else "")
    ),
    ArtifactDeliveryInput: lambda i: (
        f"deliver {len(i.artifacts)} file(s) of {i.milestone_key!r} to the client"
    ),
    ReceiptInput: lambda i: f"receipt for {i.milestone_key!r} {_money(i.amount, i.currency)}",
    CertificateInput: lambda i: (
        f"signing certificate of SOW version {i.sow_version} ({len(i.signatures)} signatures)"
    ),
    LedgerBatch: _ledger,
    LedgerEvent: lambda e: f"ledger: {e.kind}",
    PaymentRecord: lambda p: f"ledger: {p.kind} {p.stripe_id}",
    DealSnapshot: lambda s: f"ledger: deal row ({s.stage})",
}
