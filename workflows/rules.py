"""Decisions of a deal that need no Temporal: plain functions of their inputs, unit-tested fast.

Whether a human action may happen now (and, when not, the reason the person is told), how a
payment Stripe reports is classified, what the vendor keeps when a deal is cancelled, and how
durations and free-text actors read on the timeline.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import get_args

from pydantic import ValidationError
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from dealflow.contract import DISPUTABLE
    from dealflow.durations import span  # noqa: F401 (the phases write `rules.span`)
    from dealflow.messages import (
        ApproveMilestone,
        DealStage,
        MilestoneState,
        OpenDispute,
        PaymentIntentState,
        PaymentKind,
        ProposeAmendment,
        RequestRevision,
        ResolveDispute,
        SettleReversal,
        SignSow,
        SowVersion,
        SubmitDeliverable,
    )
    from dealflow.models import CancelRefund, DealSpec
    from dealflow.signers import Signer
    from workflows.journal import Source
    from workflows.milestone import MilestoneRun

S = MilestoneState
Milestones = Mapping[str, MilestoneRun]

#: The first look at Stripe after a payment link went out without a webhook; then twice as long
#: each time, up to the policy's `reconcile_after`.
FIRST_POLL = timedelta(minutes=1)

#: Stages after which a deal takes no more actions.
ENDED = (DealStage.COMPLETED, DealStage.CANCELLED, DealStage.EXPIRED)


@dataclass(frozen=True)
class StopRequest:
    """Why the deal is to stop (cancelled or expired), and who said so; decided once."""

    stage: DealStage
    reason: str
    source: Source
    #: The operator who asked (deals before DEAL_TERMS name none).
    operator: str | None = None


# ---------------------------------------------------------------------- may this happen now


def deal_refusal(stage: DealStage, stop: StopRequest | None) -> str | None:
    """Why a deal that ended or is stopping takes no action, or None."""
    if stage in ENDED:
        return f"the deal is {stage.value}"
    if stop is not None:
        return f"the deal is stopping ({stop.stage.value}): {stop.reason}"
    return None


def milestone_refusal(
    milestones: Milestones, key: str, allowed: frozenset[MilestoneState], doing: str
) -> str | None:
    """Why milestone `key` cannot take `doing` now (unknown, or in another state), or None."""
    m = milestones.get(key)
    if m is None:
        return f"milestone_key: unknown milestone '{key}' (this deal has {', '.join(milestones)})"
    if m.state not in allowed:
        wanted = " or ".join(sorted(s.value for s in allowed))
        return f"'{m.title}' is {m.state.value}; {doing} needs it {wanted}"
    return None


def sign_refusal(
    stage: DealStage,
    sow_sha256: str,
    sign: SignSow,
    order: Sequence[Signer] = ("client",),
    signed: Collection[Signer] = (),
) -> str | None:
    """A signature counts once per party of the signing `order`, in that order, with consent, on
    the statement of work on file; `signed` are the parties who signed already."""
    if stage is not DealStage.SOW_SENT:
        return f"the statement of work is already signed (the deal is {stage.value})"
    if sign.party not in order:
        signs = "signs" if len(order) == 1 else "sign"
        return f"party: only the {' and the '.join(order)} {signs} this deal's statement of work"
    if sign.party in signed:
        return f"the {sign.party} has already signed the statement of work"
    awaited = next_signer(order, signed)
    if sign.party != awaited:
        return f"the {awaited} signs the statement of work first; you will be asked once they have"
    if not sign.consent:
        return "consent: the signer must consent to sign electronically"
    if sign.sow_sha256 is not None and sign.sow_sha256 != sow_sha256:
        return (
            "sow_sha256: the statement of work you saw is not the one on file "
            f"(hash mismatch: expected {sow_sha256})"
        )
    return None


def next_signer(order: Sequence[Signer], signed: Collection[Signer]) -> Signer | None:
    """Whose signature the statement of work waits for, or None once every party signed."""
    return next((party for party in order if party not in signed), None)


def access_code_refusal(code: str | None, *, locked: bool, attempts: int) -> str | None:
    """Before a signature's access code is compared: signing locked after `attempts` wrong
    codes takes none, and a signature without one is refused (neither counts as a try)."""
    if locked:
        return (
            f"access_code: signing is locked after {attempts} wrong access codes; "
            "a new code must be sent (resend_access_code)"
        )
    if not code or not code.strip():
        return "access_code: enter the access code we sent you in a mail of its own"
    return None


def wrong_access_code(wrong: int, attempts: int) -> str:
    """What the signer is told after their `wrong`-th wrong code of `attempts`."""
    left = attempts - wrong
    if left <= 0:
        return (
            f"access_code: wrong access code; signing is now locked after {attempts} wrong "
            "codes, and we have been told: a new code will be sent to you"
        )
    return f"access_code: wrong access code; {left} {'try' if left == 1 else 'tries'} left"


def resend_refusal(stage: DealStage, required: bool) -> str | None:
    """A new access code is for a deal that asks for one, before it is signed."""
    if not required:
        return "this deal needs no access code (its total is not above policy.access_code_above)"
    if stage is not DealStage.SOW_SENT:
        return f"the statement of work is already signed (the deal is {stage.value})"
    return None


def submit_refusal(milestones: Milestones, submit: SubmitDeliverable) -> str | None:
    m = milestones.get(submit.milestone_key)
    if m is not None and m.spec.deposit:
        return f"milestone_key: '{m.key}' is a deposit; it needs no deliverable"
    return milestone_refusal(
        milestones,
        submit.milestone_key,
        frozenset({S.IN_PROGRESS, S.REVISION_REQUESTED}),
        "a deliverable",
    )


def approve_refusal(milestones: Milestones, approve: ApproveMilestone) -> str | None:
    return milestone_refusal(
        milestones, approve.milestone_key, frozenset({S.DELIVERED}), "approval"
    )


def revision_refusal(
    milestones: Milestones, revise: RequestRevision, max_revisions: int
) -> str | None:
    """Delivered work can be sent back, up to the policy's number of revisions."""
    refusal = milestone_refusal(
        milestones, revise.milestone_key, frozenset({S.DELIVERED}), "a revision request"
    )
    if refusal is not None:
        return refusal
    m = milestones[revise.milestone_key]
    if m.revisions >= max_revisions:
        return (
            f"revision limit reached: '{m.title}' had {m.revisions} of "
            f"{max_revisions} revisions (policy.max_revisions); approve or dispute"
        )
    return None


def dispute_refusal(milestones: Milestones, dispute: OpenDispute) -> str | None:
    """Money at stake can be disputed; a deposit held for the first milestone goes with that
    milestone, so a dispute is about that one."""
    m = milestones.get(dispute.milestone_key)
    if m is not None and m.spec.deposit and m.state is S.FUNDED:
        return (
            f"'{m.title}' is a deposit held until the first milestone is released; "
            "dispute that milestone instead"
        )
    return milestone_refusal(milestones, dispute.milestone_key, DISPUTABLE, "a dispute")


def resolve_refusal(milestones: Milestones, resolve: ResolveDispute) -> str | None:
    """One resolution per dispute: a second one while the first is carried out is refused."""
    refusal = milestone_refusal(
        milestones, resolve.milestone_key, frozenset({S.DISPUTED}), "a resolution"
    )
    if refusal is None and milestones[resolve.milestone_key].resolution is not None:
        return "a resolution of this dispute is already being carried out"
    return refusal


def settle_reversal_refusal(milestones: Milestones, settle: SettleReversal) -> str | None:
    """A settlement answers a refused reversal, once: none owed, or one being carried out, is refused."""
    m = milestones.get(settle.milestone_key)
    if m is None:
        return milestone_refusal(milestones, settle.milestone_key, frozenset(), "a settlement")
    if m.reversal_owed == 0:
        return f"milestone_key: '{m.key}' owes no refused transfer reversal"
    if m.settlement is not None:
        return "a settlement of this reversal is already being carried out"
    return None


# ---------------------------------------------------------------------- change orders

#: Milestone states an amendment may change or remove: none of the client's money is held yet.
AMENDABLE = frozenset({S.PENDING, S.AWAITING_FUNDING})


def amended_spec(spec: DealSpec, proposal: ProposeAmendment) -> DealSpec | str:
    """The deal's spec with the proposal's terms, validated as a spec is; or what is wrong."""
    terms = {"milestones": [m.model_dump() for m in proposal.milestones]}
    if proposal.sow is not None:
        terms["sow"] = proposal.sow
    try:
        return DealSpec.model_validate({**spec.model_dump(), **terms})
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return f"{where}: {first['msg']}" if where else str(first["msg"])


def amendment_refusal(
    stage: DealStage, milestones: Milestones, spec: DealSpec, proposal: ProposeAmendment
) -> str | None:
    """New terms change only milestones no money is held for (adding, removing, re-pricing,
    re-dating them) and the SOW text; every other milestone is given unchanged, a removed one
    never comes back, and the terms must change."""
    if stage is DealStage.SOW_SENT:
        return "the statement of work is not signed yet; an amendment changes a signed deal"
    amended = amended_spec(spec, proposal)
    if isinstance(amended, str):
        return amended
    proposed = {m.key: m for m in amended.milestones}
    current = {m.key for m in spec.milestones}
    for key, m in milestones.items():
        new = proposed.get(key)
        if key not in current:
            if new is not None:
                return f"milestones: '{key}' was removed by an earlier amendment; new work needs a new key"
        elif m.state not in AMENDABLE and new != m.spec:
            return (
                f"milestones: '{m.title}' is {m.state.value}; an amendment cannot change or "
                "remove it (give it unchanged)"
            )
    if amended.milestones == spec.milestones and amended.sow == spec.sow:
        return "the proposed terms are the terms in force; nothing would change"
    return None


def answer_refusal(
    versions: Sequence[SowVersion], version: int, consent: bool | None, sow_sha256: str | None
) -> str | None:
    """An answer is to the proposal that awaits it, by number: a superseded, declined or
    unknown version says so; an acceptance needs consent and the hash of what was shown."""
    asked = next((v for v in versions if v.number == version), None)
    if asked is None:
        return f"version: this deal has no version {version} (it has 1 to {len(versions)})"
    if asked.superseded_by is not None:
        return f"version {version} is superseded by version {asked.superseded_by}"
    if asked.state != "proposed":
        return f"version {version} is {asked.state}; no answer is awaited"
    if consent is False:
        return "consent: the signer must consent to sign electronically"
    if sow_sha256 is not None and sow_sha256 != asked.sow_sha256:
        return (
            f"sow_sha256: the terms you saw are not version {version}'s "
            f"(hash mismatch: expected {asked.sow_sha256})"
        )
    return None


# ---------------------------------------------------------------------- money


def payment_owner_problem(
    metadata: Mapping[str, str], deal_id: str, milestone_keys: Collection[str]
) -> str | None:
    """Why a payment read back from Stripe is not this deal's to count, or None.

    dealflow puts `deal_id` and `milestone_key` on every session and payment intent it creates;
    a webhook can name anything, so only what Stripe says the object carries decides."""
    owner = metadata.get("deal_id")
    if owner != deal_id:
        return f"belongs to deal '{owner}'" if owner else "names no deal"
    key = metadata.get("milestone_key")
    if key not in milestone_keys:
        return f"names no milestone of this deal ('{key}')" if key else "names no milestone"
    return None


def confirmed_money(intent: PaymentIntentState) -> tuple[PaymentKind | None, int]:
    """What Stripe says the client's payment is: captured, authorized (manual capture), or
    nothing yet."""
    if intent.status == "succeeded":
        return PaymentKind.CHARGE, intent.amount_received
    if intent.status == "requires_capture":
        return PaymentKind.AUTHORIZATION, intent.amount_capturable
    return None, 0


#: Stripe's payment method types that debit a bank account: processing for days, then
#: succeeded or failed.
BANK_DEBITS = frozenset({"us_bank_account", "sepa_debit"})


def debit_failed(intent: PaymentIntentState) -> bool:
    """Whether Stripe reports a bank debit that failed after processing (the intent is back to
    needing a payment method, or cancelled), as opposed to one still processing or a card."""
    return intent.payment_method_type in BANK_DEBITS and intent.status in (
        "requires_payment_method",
        "canceled",
    )


def business_days_after(start: datetime, days: int) -> datetime:
    """`days` working days (Monday to Friday) after `start`, at the same time of day: banks
    settle debits on working days only."""
    moment = start
    while days > 0:
        moment += timedelta(days=1)
        if moment.weekday() < 5:
            days -= 1
    return moment


def vendor_keeps(m: MilestoneRun, cancel_refund: CancelRefund) -> bool:
    """Approved work is paid for on cancellation; delivered work too, unless the policy
    refunds all unreleased money."""
    if m.work_state is S.APPROVED:
        return True
    return m.work_state is S.DELIVERED and cancel_refund is CancelRefund.UNDELIVERED


def vendor_share_back(returned: int, released: int, fee: int, reversed: int) -> int:
    """Of `returned` (client money of a released milestone given back), the vendor's share to
    take back: in proportion to what they were paid of `released` (the platform bears its fee's
    part), rounded half up, never more than is left of their payout."""
    if released <= 0:
        return 0
    share = released - fee
    due = (returned * share + released // 2) // released
    return max(0, min(due, share - reversed))


def next_poll_interval(previous: timedelta | None, longest: timedelta) -> timedelta:
    """How long until the next look at an open, unpaid Checkout Session: lost webhooks cost
    minutes, and a session left open for a day costs a few dozen reads, not thousands."""
    if previous is None:
        return min(FIRST_POLL, longest)
    return min(previous * 2, longest)


# ---------------------------------------------------------------------- for people


def source(who: str) -> Source:
    """A timeline source for a free-text actor ("operator" unless it names a known source)."""
    return next((known for known in get_args(Source) if known == who), "operator")

