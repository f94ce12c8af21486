"""The deal specification: what a client and a vendor agreed to, validated before any workflow starts.

Every rule lives here so that the starter, the CLI, the bridge and the workflow agree on what a
valid deal is. Money is always an integer number of minor units (cents, pence, yen).
"""

from __future__ import annotations

from datetime import date, timedelta
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import EmailStr, Field, HttpUrl, field_validator, model_validator

from dealflow.durations import Duration, Offset, StrictModel
from dealflow.money import format_money, platform_fee
from dealflow.signers import SigningOrder
from dealflow.terms import DepositRelease, LateFee, most_late_fees
from dealflow.text_rules import MultiLineText, SingleLineText

MAX_MILESTONE_AMOUNT = 99_999_999
MAX_MILESTONES = 20
MIN_CHECKOUT_TTL = timedelta(hours=1)
MAX_CHECKOUT_TTL = timedelta(hours=24)

#: Currencies dealflow accepts, lower-case as Stripe writes them. JPY has no minor unit.
Currency = Literal["usd", "eur", "gbp", "cad", "aud", "nzd", "chf", "sek", "nok", "dkk", "jpy"]


Slug = Annotated[
    str,
    Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$", description="lower-case letters, digits and '-'"),
]
MilestoneKey = Annotated[
    str,
    Field(
        pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$", description="lower-case letters, digits, '-', '_'"
    ),
]
Amount = Annotated[
    int,
    Field(strict=True, gt=0, le=MAX_MILESTONE_AMOUNT, description="integer minor units (cents)"),
]


class Client(StrictModel):
    """The party who pays."""

    name: SingleLineText = Field(min_length=1, max_length=200)
    email: EmailStr
    company: SingleLineText | None = Field(default=None, max_length=200)


class Vendor(StrictModel):
    """The party who does the work and is paid on approval."""

    name: SingleLineText = Field(min_length=1, max_length=200)
    email: EmailStr
    vendor_id: str | None = Field(
        default=None,
        pattern=r"^ven_[a-z0-9]{1,40}$",
        description="the vendor's record (`dealflow vendors add`): only their API key reaches the deal",
    )
    fulfillment_url: HttpUrl | None = Field(
        default=None, description="where work orders are POSTed, signed with HMAC-SHA256"
    )
    stripe_account: str | None = Field(
        default=None,
        pattern=r"^acct_[A-Za-z0-9]{1,64}$",
        description="Stripe Connect account that receives a transfer on each release",
    )


class PaymentMethod(StrEnum):
    """How a client may pay a milestone through Checkout, named as Stripe's
    `payment_method_types`. Bank debits are *processing* for days before Stripe says whether
    the money came."""

    CARD = "card"
    #: ACH Direct Debit: USD only, about 4 business days.
    US_BANK_ACCOUNT = "us_bank_account"
    #: SEPA Direct Debit: EUR only, about 5 to 6 business days.
    SEPA_DEBIT = "sepa_debit"


#: The one currency each bank debit can collect; cards take every currency dealflow accepts.
BANK_DEBIT_CURRENCY = {PaymentMethod.US_BANK_ACCOUNT: "usd", PaymentMethod.SEPA_DEBIT: "eur"}


def _payment_methods_problem(methods: list[PaymentMethod], currency: str, manual: bool) -> str | None:
    """Why a list of payment methods cannot collect a milestone, or None."""
    if len(set(methods)) != len(methods):
        return "lists a payment method twice"
    for method in methods:
        needs = BANK_DEBIT_CURRENCY.get(method)
        if needs is None:
            continue
        if needs != currency:
            return f"'{method.value}' collects only {needs.upper()}, the deal is in {currency.upper()}"
        if manual:
            return (
                f"'{method.value}' cannot hold money until approval "
                "(policy.capture 'on_approval' needs card payments only)"
            )
    return None


PaymentMethods = Annotated[list[PaymentMethod], Field(min_length=1, max_length=3)]


class Milestone(StrictModel):
    """One paid unit of work. Give either `due` (a date) or `due_in_days` (after signing)."""

    key: MilestoneKey
    title: SingleLineText = Field(min_length=1, max_length=200)
    amount: Amount
    #: Before the year 3000: a date the deal's clocks can still add its windows to.
    due: date | None = Field(default=None, lt=date(3000, 1, 1))
    due_in_days: int | None = Field(default=None, ge=1, le=3650)
    description: MultiLineText | None = Field(default=None, max_length=5000)
    #: Overrides the deal's `payment_methods` for this milestone (a large one paid by bank).
    payment_methods: PaymentMethods | None = None
    #: Money due at signature, for no deliverable: released as `policy.deposit_release` says.
    deposit: bool = False
    #: Overrides the deal's `policy.late_fee` for this milestone.
    late_fee: LateFee | None = None

    @model_validator(mode="after")
    def _one_due(self) -> Milestone:
        if self.deposit:
            if self.due is not None or self.due_in_days is not None:
                raise ValueError("a deposit is due at signature: give it no 'due' or 'due_in_days'")
            return self
        if self.due is None and self.due_in_days is None:
            raise ValueError("give either 'due' (a date) or 'due_in_days'")
        if self.due is not None and self.due_in_days is not None:
            raise ValueError("give only one of 'due' and 'due_in_days'")
        return self


class CapturePolicy(StrEnum):
    """When the client's card is charged: when they pay, or only when they approve the work."""

    ON_FUNDING = "on_funding"
    ON_APPROVAL = "on_approval"


class CancelRefund(StrEnum):
    """What cancellation refunds: held money for work not yet delivered, or all unreleased money."""

    UNDELIVERED = "undelivered"
    ALL_UNRELEASED = "all_unreleased"


class AfterReleaseRefund(StrEnum):
    """Money of a released milestone that goes back to the client (a refund, a lost chargeback):
    the vendor's share of it is reversed from their transfer, or the platform absorbs it."""

    REVERSE = "reverse"
    ABSORB = "absorb"


class Policy(StrictModel):
    """The clocks and limits of a deal. Defaults follow marketplace practice (14-day review)."""

    capture: CapturePolicy = CapturePolicy.ON_FUNDING
    sign_window: Duration = timedelta(days=14)
    fund_window: Duration = timedelta(days=14)
    review_window: Duration = timedelta(days=14)
    reminder_interval: Duration = timedelta(days=3)
    max_revisions: int = Field(default=2, ge=0, le=10)
    #: Card authorizations lapse after about 7 days; capture before then on on_approval deals.
    capture_before_lapse: Duration = timedelta(days=6)
    #: How long to wait for a payment webhook before asking Stripe directly.
    reconcile_after: Duration = timedelta(hours=1)
    #: How often a payout waiting for the vendor's Stripe onboarding asks Stripe again.
    payout_recheck: Duration = timedelta(hours=1)
    #: Where Temporal suggests a long deal continue as new, how long it waits for the work beside
    #: it (mail, hand-offs, a dispute's evidence) to end; past it the deal goes on and continues
    #: at a later seam, so a call that keeps failing (retried for hours) holds nothing up.
    continue_as_new_wait: Duration = timedelta(minutes=5)
    #: Lifetime of each Checkout Session. Stripe allows 30 minutes to 24 hours from when it
    #: receives the request; the 1-hour floor leaves the activity time to get there.
    checkout_session_ttl: Duration = timedelta(hours=24)
    cancel_refund: CancelRefund = CancelRefund.UNDELIVERED
    #: The platform's fee, kept back from each milestone's payout: basis points of the
    #: milestone (250 = 2.5 %, rounded half up to the cent) plus a fixed amount in minor units.
    platform_fee_bps: int = Field(default=0, ge=0, le=5_000)
    platform_fee_fixed: int = Field(default=0, ge=0)
    after_release_refund: AfterReleaseRefund = AfterReleaseRefund.REVERSE
    #: Business days a bank debit stays processing before Stripe says whether it succeeded
    #: (Stripe: ACH about 4, SEPA 5 to 6); until then plus `debit_margin`, no funding expiry or
    #: reminder runs against it, and then Stripe is asked directly.
    us_bank_account_days: int = Field(default=4, ge=1, le=15)
    sepa_debit_days: int = Field(default=6, ge=1, le=15)
    debit_margin: Duration = timedelta(days=1)
    #: Above this total (minor units) the signer needs an access code, mailed apart from the SOW;
    #: None: never. `access_code_attempts` wrong codes lock signing until a new code is sent.
    access_code_above: int | None = Field(default=None, ge=0)
    access_code_attempts: int = Field(default=5, ge=1, le=10)
    deposit_release: DepositRelease = DepositRelease.ON_FUNDING
    #: A fee added to a milestone still unpaid after its due date (`dealflow.terms`).
    late_fee: LateFee | None = None
    #: Payment reminders as offsets from the payment's due date (`[-7d, 0, 2d]`); unset, a
    #: reminder goes out every `reminder_interval` after the payment link.
    reminders: list[Offset] | None = Field(default=None, min_length=1, max_length=10)
    demo: bool = Field(default=False, description="short demo windows; shown on every page and mail")

    @model_validator(mode="after")
    def _ranges(self) -> Policy:
        if self.capture_before_lapse > timedelta(days=7):
            raise ValueError("capture_before_lapse must be at most 7 days: card holds lapse then")
        if not MIN_CHECKOUT_TTL <= self.checkout_session_ttl <= MAX_CHECKOUT_TTL:
            raise ValueError("checkout_session_ttl must be between 1 hour and 24 hours")
        return self


class DealSpec(StrictModel):
    """Everything needed to run one deal. The workflow id is `deal-<deal_id>`."""

    deal_id: Slug
    title: SingleLineText = Field(min_length=1, max_length=200)
    currency: Currency
    client: Client
    vendor: Vendor
    sow: MultiLineText = Field(
        min_length=20, max_length=100_000, description="statement of work text"
    )
    milestones: list[Milestone] = Field(min_length=1, max_length=MAX_MILESTONES)
    #: How the client may pay each milestone (a milestone's own list overrides this one).
    payment_methods: PaymentMethods = Field(default_factory=lambda: [PaymentMethod.CARD])
    #: Who signs the SOW, first signer first (`dealflow.signers`); the client alone by default.
    signing_order: SigningOrder = Field(default_factory=lambda: ["client"])
    policy: Policy = Policy()

    @field_validator("milestones")
    @classmethod
    def _unique_keys(cls, milestones: list[Milestone]) -> list[Milestone]:
        seen: set[str] = set()
        for milestone in milestones:
            if milestone.key in seen:
                raise ValueError(
                    f"milestone key '{milestone.key}' is used twice; keys must be unique"
                )
            seen.add(milestone.key)
        return milestones

    @model_validator(mode="after")
    def _vendor_is_paid(self) -> DealSpec:
        for milestone in self.milestones:
            fee = platform_fee(
                milestone.amount, self.policy.platform_fee_bps, self.policy.platform_fee_fixed
            )
            if fee >= milestone.amount:
                raise ValueError(
                    f"policy.platform_fee_bps/platform_fee_fixed: the platform fee of "
                    f"{format_money(fee, self.currency)} leaves nothing of milestone "
                    f"'{milestone.key}' ({format_money(milestone.amount, self.currency)}) for the vendor"
                )
        return self

    @model_validator(mode="after")
    def _late_fees_fit_one_payment(self) -> DealSpec:
        """A late fee's link asks Stripe for the amount with the fees: past what one payment can
        be, Stripe would refuse it, and the client could not pay at all."""
        for index, milestone in enumerate(self.milestones):
            late_fee = self.late_fee_of(milestone)
            if late_fee is None:
                continue
            most = milestone.amount + most_late_fees(late_fee, milestone.amount)
            if most > MAX_MILESTONE_AMOUNT:
                field = f"milestones[{index}].late_fee" if milestone.late_fee else "policy.late_fee"
                raise ValueError(
                    f"{field}: with its late fees, milestone '{milestone.key}' could come to "
                    f"{format_money(most, self.currency)}, more than one payment can be "
                    f"({format_money(MAX_MILESTONE_AMOUNT, self.currency)})"
                )
        return self

    @model_validator(mode="after")
    def _deposit_first(self) -> DealSpec:
        for index, milestone in enumerate(self.milestones):
            if milestone.deposit and index > 0:
                raise ValueError(
                    f"milestones[{index}].deposit: only the first milestone can be a deposit "
                    "(it is due at signature)"
                )
        if not self.milestones[0].deposit or self.policy.deposit_release is DepositRelease.ON_FUNDING:
            return self
        if len(self.milestones) == 1:
            raise ValueError(
                "policy.deposit_release: 'with_first_milestone' needs a milestone after the deposit"
            )
        if self.policy.capture is CapturePolicy.ON_APPROVAL:
            raise ValueError(
                "policy.deposit_release: a deposit held for the first milestone must be captured "
                "when paid (policy.capture 'on_funding'): a card hold lapses after 7 days"
            )
        return self

    @model_validator(mode="after")
    def _payment_methods_fit(self) -> DealSpec:
        manual = self.policy.capture is CapturePolicy.ON_APPROVAL
        lists = [("payment_methods", self.payment_methods)] + [
            (f"milestones[{index}].payment_methods", m.payment_methods)
            for index, m in enumerate(self.milestones)
            if m.payment_methods is not None
        ]
        for field, methods in lists:
            if problem := _payment_methods_problem(methods, self.currency, manual):
                raise ValueError(f"{field}: {problem}")
        return self

    def payment_methods_of(self, milestone: Milestone) -> list[PaymentMethod]:
        return milestone.payment_methods or self.payment_methods

    def late_fee_of(self, milestone: Milestone) -> LateFee | None:
        return milestone.late_fee or self.policy.late_fee

    @property
    def workflow_id(self) -> str:
        return workflow_id_for(self.deal_id)

    @property
    def total_amount(self) -> int:
        return sum(m.amount for m in self.milestones)

    def milestone(self, key: str) -> Milestone:
        for milestone in self.milestones:
            if milestone.key == key:
                return milestone
        raise KeyError(key)


_WORKFLOW_ID_PREFIX = "deal-"


def workflow_id_for(deal_id: str) -> str:
    return f"{_WORKFLOW_ID_PREFIX}{deal_id}"


def deal_id_of(workflow_id: str) -> str | None:
    """The deal a workflow id belongs to, or None for a workflow that is not a deal."""
    return workflow_id.removeprefix(_WORKFLOW_ID_PREFIX) if workflow_id.startswith(_WORKFLOW_ID_PREFIX) else None
