"""The mails a deal sends: subject lines and template context, built in one place.

The context follows the key contract in `EmailInput`'s docstring. `email_context` refuses to
build a context that lacks a key its kind needs (or carries one it does not), so a slip shows up
as a failing workflow test instead of a mail the template cannot render.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from dealflow.messages import Artifact, EmailAttachment, EmailInput, EmailKind
    from dealflow.models import DealSpec, Milestone
    from dealflow.money import format_money

K = EmailKind

SUBJECTS: dict[EmailKind, str] = {
    K.SOW_SENT: "Statement of work to sign: {deal_title}",
    K.SIGN_REMINDER: "Reminder: the statement of work for {deal_title} awaits your signature",
    K.VENDOR_SIGN_REQUEST: "Statement of work to countersign: {deal_title}",
    K.SOW_SIGNED: "Signed by every party: {deal_title} (signing certificate attached)",
    K.AMENDMENT_PROPOSED: "Change order to review: {deal_title}, version {version}",
    K.AMENDMENT_ANSWERED: "Change order {version} answered: {deal_title}",
    K.PAYMENT_LINK: "Payment link for {milestone_title} ({amount_display})",
    K.FUND_REMINDER: "Reminder: {milestone_title} awaits payment ({amount_display})",
    K.PAYMENT_RECEIVED: "Payment received for {milestone_title}",
    K.DEBIT_FAILED: "Your bank payment for {milestone_title} failed",
    K.WORK_ORDER: "Work order: {milestone_title} ({deal_title})",
    K.DELIVERY_OVERDUE: "Overdue: {milestone_title} ({deal_title})",
    K.DELIVERABLE_READY: "Ready for your review: {milestone_title}",
    K.REVIEW_REMINDER: "Reminder: {milestone_title} awaits your review",
    K.REVISION_REQUESTED: "Revision requested: {milestone_title}",
    K.APPROVED_RECEIPT: "Receipt {receipt_number}: {milestone_title} approved",
    K.PAYOUT_SENT: "Payout for {milestone_title} ({amount_display})",
    K.PAYOUT_WAITING: "Your payout for {milestone_title} waits for your Stripe onboarding",
    K.DISPUTE_OPENED: "Dispute opened: {milestone_title}",
    K.DISPUTE_RESOLVED: "Dispute resolved: {milestone_title}",
    K.DISPUTE_EVIDENCE: "Chargeback {dispute_id} on {milestone_title}: answer due {due_by}",
    K.DEAL_CANCELLED: "Deal cancelled: {deal_title}",
    K.DEAL_EXPIRED: "Deal expired: {deal_title}",
    K.DEAL_COMPLETED: "Deal completed: {deal_title}",
    K.ACCESS_CODE: "Your access code to sign {deal_title}",
    K.SIGNING_LOCKED: "Signing locked: {deal_title}",
}

#: Keys each kind needs beyond the common and per-milestone ones (EmailInput's contract).
KIND_KEYS: dict[EmailKind, frozenset[str]] = {
    K.SOW_SENT: frozenset({"sow", "sow_sha256", "milestones", "total_display"}),
    K.VENDOR_SIGN_REQUEST: frozenset(
        {"sow", "sow_sha256", "milestones", "total_display", "reminder"}
    ),
    K.SOW_SIGNED: frozenset({"sow_sha256", "sow_version", "certificate_sha256"}),
    K.AMENDMENT_PROPOSED: frozenset(
        {"version", "sow_sha256", "reason", "proposed_by", "changes", "total_before", "total_after"}
    ),
    K.AMENDMENT_ANSWERED: frozenset(
        {"version", "accepted", "sow_sha256", "reason", "certificate_sha256"}
    ),
    K.PAYMENT_LINK: frozenset({"checkout_url", "checkout_expires_at", "late_fee_notice"}),
    K.FUND_REMINDER: frozenset({"checkout_url", "checkout_expires_at", "late_fee_notice"}),
    K.DELIVERABLE_READY: frozenset({"summary", "artifacts", "review_deadline"}),
    K.REVISION_REQUESTED: frozenset({"notes"}),
    K.DEBIT_FAILED: frozenset({"reason"}),
    K.DISPUTE_OPENED: frozenset({"reason"}),
    K.DISPUTE_RESOLVED: frozenset({"resolution", "notes"}),
    K.DISPUTE_EVIDENCE: frozenset(
        {"dispute_id", "dispute_amount_display", "due_by", "submitted", "problem", "evidence"}
    ),
    K.APPROVED_RECEIPT: frozenset({"receipt_number", "released_display", "artifacts"}),
    K.PAYOUT_SENT: frozenset({"transfer_id", "platform_fee_display", "vendor_share_display"}),
    K.PAYOUT_WAITING: frozenset({"reason", "recheck", "vendor_id"}),
    K.DEAL_CANCELLED: frozenset({"reason", "refunds"}),
    K.DEAL_EXPIRED: frozenset({"reason"}),
    K.ACCESS_CODE: frozenset({"access_code"}),
    K.SIGNING_LOCKED: frozenset({"attempts", "for_operator"}),
}

#: Kinds about the whole deal; every other kind is about one milestone.
DEAL_KINDS = frozenset(
    {
        K.SOW_SENT,
        K.SIGN_REMINDER,
        K.VENDOR_SIGN_REQUEST,
        K.SOW_SIGNED,
        K.AMENDMENT_PROPOSED,
        K.AMENDMENT_ANSWERED,
        K.DEAL_CANCELLED,
        K.DEAL_EXPIRED,
        K.DEAL_COMPLETED,
        K.ACCESS_CODE,
        K.SIGNING_LOCKED,
    }
)


def email_context(
    spec: DealSpec,
    kind: EmailKind,
    milestone: Milestone | None,
    amount: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The template context of one mail: common keys, milestone keys (`amount`, the amount due
    with any late fee, instead of the milestone's own), then the kind's own."""
    if kind not in SUBJECTS:
        raise ValueError(f"DealWorkflow does not send {kind.value} mails")
    if (milestone is None) != (kind in DEAL_KINDS):
        raise ValueError(
            f"a {kind.value} mail {'is' if milestone is None else 'is not'} about a milestone"
        )
    expected = KIND_KEYS.get(kind, frozenset())
    if set(extra) != expected:
        raise ValueError(
            f"{kind.value} mail context: missing {sorted(expected - set(extra))}, "
            f"unexpected {sorted(set(extra) - expected)}"
        )
    context: dict[str, Any] = {
        "deal_id": spec.deal_id,
        "deal_title": spec.title,
        "client_name": spec.client.name,
        "vendor_name": spec.vendor.name,
        "demo": spec.policy.demo,
    }
    if milestone is not None:
        context.update(
            milestone_key=milestone.key,
            milestone_title=milestone.title,
            amount_display=format_money(
                milestone.amount if amount is None else amount, spec.currency
            ),
        )
    context.update(extra)
    return context


def build_email(
    spec: DealSpec,
    kind: EmailKind,
    *,
    to: str,
    message_key: str,
    milestone: Milestone | None = None,
    amount: int | None = None,
    attachments: Sequence[EmailAttachment] = (),
    **extra: Any,
) -> EmailInput:
    context = email_context(spec, kind, milestone, amount, **extra)
    return EmailInput(
        deal_id=spec.deal_id,
        kind=kind,
        to=to,
        subject=SUBJECTS[kind].format(**context),
        message_key=message_key,
        context=context,
        attachments=list(attachments),
    )


def artifact_context(artifact: Artifact) -> dict[str, str]:
    """One delivered file as the mail templates list it."""
    return {"name": artifact.name, "url": str(artifact.url), "sha256": artifact.sha256}


def fee_context(money: Callable[[int], str], fee: int, share: int) -> dict[str, str]:
    """A payout as the vendor's mail shows it: their share, and the platform's fee if any."""
    return {"platform_fee_display": money(fee) if fee else "", "vendor_share_display": money(share)}
