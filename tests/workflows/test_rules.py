"""The deal's pure decisions, without any server."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dealflow import messages as actions
from dealflow.messages import (
    DealStage,
    DisputeResolution,
    MilestoneState,
    PaymentIntentState,
    PaymentKind,
)
from dealflow.models import CancelRefund, DealSpec, Milestone
from workflows.milestone import MilestoneRun, PendingResolution
from workflows.rules import (
    AMENDABLE,
    FIRST_POLL,
    StopRequest,
    access_code_refusal,
    amendment_refusal,
    answer_refusal,
    approve_refusal,
    confirmed_money,
    deal_refusal,
    dispute_refusal,
    next_poll_interval,
    next_signer,
    payment_owner_problem,
    resend_refusal,
    resolve_refusal,
    revision_refusal,
    sign_refusal,
    source,
    span,
    submit_refusal,
    vendor_keeps,
    vendor_share_back,
    wrong_access_code,
)

S = MilestoneState
KEYS = ("m1", "m2")
SOW_SHA = "a" * 64


def runs(state: MilestoneState = S.PENDING, **fields: object) -> dict[str, MilestoneRun]:
    """Milestone m1 in `state` (with `fields` set), beside a pending m2."""
    m1 = MilestoneRun(spec=Milestone(key="m1", title="Design", amount=1000, due_in_days=7))
    m1.state = state
    for name, value in fields.items():
        setattr(m1, name, value)
    m2 = MilestoneRun(spec=Milestone(key="m2", title="Build", amount=2000, due_in_days=14))
    return {"m1": m1, "m2": m2}


def intent(status: str, *, capturable: int = 0, received: int = 0) -> PaymentIntentState:
    return PaymentIntentState(
        payment_intent_id="pi_1",
        status=status,
        amount=1000,
        amount_capturable=capturable,
        amount_received=received,
        currency="usd",
        livemode=False,
    )


# ---------------------------------------------------------------------- may this happen now


@pytest.mark.parametrize("stage", [DealStage.COMPLETED, DealStage.CANCELLED, DealStage.EXPIRED])
def test_an_ended_deal_takes_no_action(stage: DealStage) -> None:
    assert deal_refusal(stage, None) == f"the deal is {stage.value}"


def test_a_stopping_deal_says_why() -> None:
    stop = StopRequest(DealStage.CANCELLED, "client walked away", "operator")
    assert deal_refusal(DealStage.IN_PROGRESS, stop) == (
        "the deal is stopping (cancelled): client walked away"
    )
    assert deal_refusal(DealStage.IN_PROGRESS, None) is None


def test_a_signature_needs_consent_the_sow_on_file_and_happens_once() -> None:
    sign = actions.SignSow(signer_name="Ada Client", consent=True)
    assert sign_refusal(DealStage.SOW_SENT, SOW_SHA, sign) is None
    seen = actions.SignSow(signer_name="Ada Client", consent=True, sow_sha256=SOW_SHA)
    assert sign_refusal(DealStage.SOW_SENT, SOW_SHA, seen) is None
    no_consent = actions.SignSow(signer_name="Ada Client", consent=False)
    assert sign_refusal(DealStage.SOW_SENT, SOW_SHA, no_consent) == (
        "consent: the signer must consent to sign electronically"
    )
    other = actions.SignSow(signer_name="Ada Client", consent=True, sow_sha256="b" * 64)
    mismatch = sign_refusal(DealStage.SOW_SENT, SOW_SHA, other)
    assert mismatch is not None and mismatch.startswith("sow_sha256:")
    assert sign_refusal(DealStage.SIGNED, SOW_SHA, sign) == (
        "the statement of work is already signed (the deal is signed)"
    )


def test_each_party_of_the_signing_order_signs_once_in_turn() -> None:
    def by(party: str) -> actions.SignSow:
        return actions.SignSow(signer_name="Some Signer", consent=True, party=party)

    order = ("vendor", "client")
    assert next_signer(order, []) == "vendor"
    assert next_signer(order, ["vendor"]) == "client"
    assert next_signer(order, ["vendor", "client"]) is None
    assert sign_refusal(DealStage.SOW_SENT, SOW_SHA, by("vendor"), order, []) is None
    assert sign_refusal(DealStage.SOW_SENT, SOW_SHA, by("client"), order, []) == (
        "the vendor signs the statement of work first; you will be asked once they have"
    )
    assert sign_refusal(DealStage.SOW_SENT, SOW_SHA, by("client"), order, ["vendor"]) is None
    assert sign_refusal(DealStage.SOW_SENT, SOW_SHA, by("vendor"), order, ["vendor"]) == (
        "the vendor has already signed the statement of work"
    )
    assert sign_refusal(DealStage.SOW_SENT, SOW_SHA, by("vendor")) == (
        "party: only the client signs this deal's statement of work"
    )


def test_an_unknown_milestone_is_named_with_the_ones_the_deal_has() -> None:
    refusal = approve_refusal(runs(), actions.ApproveMilestone(milestone_key="m9"))
    assert refusal == "milestone_key: unknown milestone 'm9' (this deal has m1, m2)"


def test_each_action_needs_its_milestone_in_the_right_state() -> None:
    submit = actions.SubmitDeliverable(milestone_key="m1", summary="wireframes")
    assert submit_refusal(runs(S.IN_PROGRESS), submit) is None
    assert submit_refusal(runs(S.REVISION_REQUESTED), submit) is None
    assert submit_refusal(runs(S.AWAITING_FUNDING), submit) == (
        "'Design' is awaiting_funding; a deliverable needs it in_progress or revision_requested"
    )
    assert approve_refusal(runs(S.DELIVERED), actions.ApproveMilestone(milestone_key="m1")) is None
    assert approve_refusal(runs(S.IN_PROGRESS), actions.ApproveMilestone(milestone_key="m1"))
    dispute = actions.OpenDispute(milestone_key="m1", reason="late")
    assert dispute_refusal(runs(S.FUNDED), dispute) is None
    assert dispute_refusal(runs(S.RELEASED), dispute)


def test_revisions_stop_at_the_policy_limit() -> None:
    revise = actions.RequestRevision(milestone_key="m1", notes="bigger logo")
    assert revision_refusal(runs(S.DELIVERED, revisions=1), revise, max_revisions=2) is None
    assert revision_refusal(runs(S.DELIVERED, revisions=2), revise, max_revisions=2) == (
        "revision limit reached: 'Design' had 2 of 2 revisions (policy.max_revisions); "
        "approve or dispute"
    )
    assert revision_refusal(runs(S.IN_PROGRESS), revise, max_revisions=2)


def test_a_dispute_is_resolved_once() -> None:
    resolve = actions.ResolveDispute(milestone_key="m1", resolution=DisputeResolution.RESUME)
    assert resolve_refusal(runs(S.DISPUTED), resolve) is None
    pending = PendingResolution(DisputeResolution.RELEASE, "", by="operator")
    assert resolve_refusal(runs(S.DISPUTED, resolution=pending), resolve) == (
        "a resolution of this dispute is already being carried out"
    )
    assert resolve_refusal(runs(S.IN_PROGRESS), resolve)


# ---------------------------------------------------------------------- money


@pytest.mark.parametrize(
    ("metadata", "problem"),
    [
        ({"deal_id": "acme", "milestone_key": "m2"}, None),
        ({"deal_id": "other", "milestone_key": "m1"}, "belongs to deal 'other'"),
        ({"milestone_key": "m1"}, "names no deal"),
        ({"deal_id": "acme", "milestone_key": "m9"}, "names no milestone of this deal ('m9')"),
        ({"deal_id": "acme"}, "names no milestone"),
        ({}, "names no deal"),
    ],
)
def test_a_payment_counts_only_when_stripe_says_it_is_this_deals(
    metadata: dict[str, str], problem: str | None
) -> None:
    assert payment_owner_problem(metadata, "acme", KEYS) == problem


def test_a_payment_is_captured_authorized_or_nothing_yet() -> None:
    assert confirmed_money(intent("succeeded", received=1000)) == (PaymentKind.CHARGE, 1000)
    assert confirmed_money(intent("requires_capture", capturable=1000)) == (
        PaymentKind.AUTHORIZATION,
        1000,
    )
    assert confirmed_money(intent("requires_payment_method")) == (None, 0)
    assert confirmed_money(intent("processing", received=1000)) == (None, 0)


@pytest.mark.parametrize(
    ("state", "paused", "policy", "keeps"),
    [
        (S.APPROVED, None, CancelRefund.ALL_UNRELEASED, True),
        (S.DELIVERED, None, CancelRefund.UNDELIVERED, True),
        (S.DELIVERED, None, CancelRefund.ALL_UNRELEASED, False),
        (S.IN_PROGRESS, None, CancelRefund.UNDELIVERED, False),
        (S.FUNDED, None, CancelRefund.UNDELIVERED, False),
        # A dispute does not hide where the work was.
        (S.DISPUTED, S.DELIVERED, CancelRefund.UNDELIVERED, True),
        (S.DISPUTED, S.IN_PROGRESS, CancelRefund.UNDELIVERED, False),
    ],
)
def test_on_cancellation_the_vendor_keeps_what_was_approved_or_delivered(
    state: MilestoneState, paused: MilestoneState | None, policy: CancelRefund, keeps: bool
) -> None:
    m = runs(state, paused_state=paused)["m1"]
    assert vendor_keeps(m, policy) is keeps


def test_polls_back_off_from_a_minute_to_the_policy_limit() -> None:
    longest = timedelta(hours=1)
    intervals = [next_poll_interval(None, longest)]
    while len(intervals) < 9:
        intervals.append(next_poll_interval(intervals[-1], longest))

    assert intervals[0] == FIRST_POLL
    assert [i.total_seconds() / 60 for i in intervals] == [1, 2, 4, 8, 16, 32, 60, 60, 60]


def test_a_limit_below_a_minute_is_the_first_interval_too() -> None:
    assert next_poll_interval(None, timedelta(seconds=20)) == timedelta(seconds=20)


# ---------------------------------------------------------------------- for people


@pytest.mark.parametrize(
    ("duration", "text"),
    [
        (timedelta(days=14), "14 days"),
        (timedelta(days=1), "1 day"),
        (timedelta(hours=36), "36 hours"),
        (timedelta(minutes=30), "30 minutes"),
        (timedelta(seconds=90), "90 seconds"),
    ],
)
def test_durations_read_in_their_largest_whole_unit(duration: timedelta, text: str) -> None:
    assert span(duration) == text


def test_a_free_text_actor_is_a_known_source_or_an_operator() -> None:
    assert source("stripe") == "stripe"
    assert source("client") == "client"
    assert source("Ada from accounts") == "operator"


@pytest.mark.parametrize(
    ("returned", "released", "fee", "reversed", "back"),
    [
        (40_000, 100_000, 10_000, 0, 36_000),  # 90 % of the refund: the vendor was paid 90 %
        (100_000, 100_000, 0, 0, 100_000),
        (100_000, 100_000, 2_530, 60_000, 37_470),  # never more than is left of the payout
        (1, 3, 1, 0, 1),  # 2/3 of a cent rounds half up
        (5, 100_000, 0, 100_000, 0),  # all taken back already
        (5, 0, 0, 0, 0),  # nothing was released
    ],
)
def test_the_vendor_gives_back_their_share_of_a_refund_after_release(
    returned: int, released: int, fee: int, reversed: int, back: int
) -> None:
    assert vendor_share_back(returned, released, fee, reversed) == back


# ---------------------------------------------------------------------- change orders


def spec_of(milestones: dict[str, MilestoneRun]) -> DealSpec:
    return DealSpec.model_validate(
        {
            "deal_id": "rules-deal",
            "title": "Rules",
            "currency": "usd",
            "client": {"name": "Ada", "email": "ada@client.example"},
            "vendor": {"name": "Vera", "email": "vera@vendor.example"},
            "sow": "Design and build the site described in the brief.",
            "milestones": [m.spec.model_dump() for m in milestones.values()],
        }
    )


def amend(milestones: dict[str, MilestoneRun], *changed: dict[str, object], drop: str = "") -> actions.ProposeAmendment:
    terms = {m.key: m.spec.model_dump(exclude_none=True) for m in milestones.values() if m.key != drop}
    for change in changed:
        terms[str(change["key"])] = {**terms.get(str(change["key"]), {}), **change}
    return actions.ProposeAmendment.model_validate({"reason": "why", "milestones": list(terms.values())})


@pytest.mark.parametrize("state", sorted(AMENDABLE))
def test_milestones_no_money_is_held_for_may_be_re_priced_or_removed(state: MilestoneState) -> None:
    milestones = runs(state)
    spec = spec_of(milestones)
    assert amendment_refusal(DealStage.IN_PROGRESS, milestones, spec, amend(milestones, {"key": "m1", "amount": 5})) is None
    assert amendment_refusal(DealStage.IN_PROGRESS, milestones, spec, amend(milestones, drop="m1")) is None


@pytest.mark.parametrize(
    "state", sorted(set(MilestoneState) - AMENDABLE - {S.CANCELLED, S.REFUNDED})
)
def test_funded_released_or_disputed_milestones_never_change(state: MilestoneState) -> None:
    milestones = runs(state)
    spec = spec_of(milestones)
    locked = f"milestones: 'Design' is {state.value}; an amendment cannot change or remove it (give it unchanged)"
    assert amendment_refusal(DealStage.IN_PROGRESS, milestones, spec, amend(milestones, {"key": "m1", "amount": 5})) == locked
    assert amendment_refusal(DealStage.IN_PROGRESS, milestones, spec, amend(milestones, drop="m1")) == locked
    assert amendment_refusal(DealStage.IN_PROGRESS, milestones, spec, amend(milestones, {"key": "m2", "amount": 5})) is None


def test_an_amendment_needs_a_signed_deal_a_change_and_no_removed_key_back() -> None:
    milestones = runs(S.RELEASED)
    spec = spec_of(milestones)
    assert amendment_refusal(DealStage.SOW_SENT, milestones, spec, amend(milestones, {"key": "m2", "amount": 5})) == (
        "the statement of work is not signed yet; an amendment changes a signed deal"
    )
    assert amendment_refusal(DealStage.IN_PROGRESS, milestones, spec, amend(milestones)) == (
        "the proposed terms are the terms in force; nothing would change"
    )
    milestones["m2"].state = S.CANCELLED
    without_m2 = spec.model_copy(update={"milestones": spec.milestones[:1]})
    back = amend(milestones, {"key": "m2", "amount": 5})
    assert amendment_refusal(DealStage.IN_PROGRESS, milestones, without_m2, back) == (
        "milestones: 'm2' was removed by an earlier amendment; new work needs a new key"
    )
    added = amend(milestones, {"key": "m3", "title": "Extra", "amount": 5, "due_in_days": 3}, drop="m2")
    assert amendment_refusal(DealStage.IN_PROGRESS, milestones, without_m2, added) is None


def test_an_answer_is_to_the_proposal_awaiting_it() -> None:
    def version(number: int, state: str, superseded_by: int | None = None) -> actions.SowVersion:
        return actions.SowVersion(
            number=number, state=state, sow="text", sow_sha256=str(number) * 64, milestones=[],
            total_amount=0, superseded_by=superseded_by,
        )

    versions = [version(1, "current"), version(2, "superseded", 3), version(3, "proposed"), version(4, "declined")]
    assert answer_refusal(versions, 3, True, "3" * 64) is None
    assert answer_refusal(versions, 3, None, None) is None
    assert answer_refusal(versions, 2, True, None) == "version 2 is superseded by version 3"
    assert answer_refusal(versions, 4, True, None) == "version 4 is declined; no answer is awaited"
    assert answer_refusal(versions, 9, True, None) == "version: this deal has no version 9 (it has 1 to 4)"
    assert answer_refusal(versions, 3, False, None) == "consent: the signer must consent to sign electronically"
    assert answer_refusal(versions, 3, True, "0" * 64).startswith("sow_sha256: the terms you saw are not version 3's")


def test_an_access_code_is_asked_for_before_it_is_compared_and_locks_after_the_last_try() -> None:
    assert access_code_refusal("123456", locked=False, attempts=5) is None
    for missing in (None, "", "   "):
        assert "enter the access code" in (access_code_refusal(missing, locked=False, attempts=5) or "")
    locked = access_code_refusal("123456", locked=True, attempts=5) or ""
    assert locked.startswith("access_code: signing is locked after 5 wrong access codes")
    assert wrong_access_code(1, 5) == "access_code: wrong access code; 4 tries left"
    assert wrong_access_code(4, 5) == "access_code: wrong access code; 1 try left"
    assert "signing is now locked after 5 wrong codes" in wrong_access_code(5, 5)


def test_a_new_access_code_is_for_a_deal_that_asks_for_one_before_it_is_signed() -> None:
    assert resend_refusal(DealStage.SOW_SENT, True) is None
    assert "needs no access code" in (resend_refusal(DealStage.SOW_SENT, False) or "")
    assert "already signed" in (resend_refusal(DealStage.SIGNED, True) or "")
