"""What happens in each demo deal: the specs (shaped like `examples/`, on the demo policy) and
the story each one's client, vendor and operator play out, with the end it must reach.

The first eight deals of a demo cover every path once: a declined card and a revision, a
cancellation that refunds, a dispute resolved by an operator, a chargeback the client's bank
opens and the deal's evidence wins, a marketplace deal whose large milestone is paid by ACH and
whose payouts keep a platform fee, a deal priced as a schedule with a deposit, signed by both
parties (the signing certificate to both) and changed mid-deal by a change order the client
signs, a card held until approval, and a silent client whose review window lapses
(auto-approval). Each deal's vendor has an account and a key of their own. Further deals repeat the happy paths.

A scenario joins a spec (`demo.specs`) to a play (`demo.plays`), whose people act on what they
see through `demo.watch`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from dealflow.messages import DealStage
from dealflow.models import DealSpec, Policy
from dealflow.money import platform_fee
from demo.plays import (
    Play,
    cancel_after_funding,
    chargeback_won,
    countersigned_change_order,
    declined_then_revision,
    dispute_resolved,
    marketplace,
    silent_client,
    straight,
)
from demo.specs import AUDIT, BRAND, DEMO_POLICY, SILENT_REVIEW_WINDOW, WAREHOUSE, WEBSITE

SpecMaker = Callable[[str, int, str, Policy], DealSpec]


@dataclass(frozen=True)
class Scenario:
    key: str
    story: str
    make_spec: SpecMaker
    play: Callable[[Play], Awaitable[None]]
    end: DealStage
    policy: Policy = DEMO_POLICY

    def expected_money(self, spec: DealSpec) -> tuple[int, int, int]:
        """(released, refunded, platform fees) at the end, in minor units."""
        if self.end == DealStage.CANCELLED:
            return 0, spec.milestones[0].amount, 0
        fees = sum(
            platform_fee(m.amount, spec.policy.platform_fee_bps, spec.policy.platform_fee_fixed)
            for m in spec.milestones
        )
        return spec.total_amount, 0, fees


REVISION = Scenario("revision", "card declined, then paid; one revision", WEBSITE.spec, declined_then_revision, DealStage.COMPLETED)
CANCEL = Scenario("cancel", "funded, then cancelled: refund", WEBSITE.spec, cancel_after_funding, DealStage.CANCELLED)
DISPUTE = Scenario("dispute", "dispute opened, operator releases", WEBSITE.spec, dispute_resolved, DealStage.COMPLETED)
CHARGEBACK = Scenario(
    "chargeback", "bank chargeback, evidence submitted, won", WEBSITE.spec, chargeback_won, DealStage.COMPLETED
)
MARKETPLACE = Scenario(
    "marketplace", "paid by ACH, platform fee on each payout", WAREHOUSE.spec, marketplace, DealStage.COMPLETED
)
TERMS = Scenario(
    "terms", "deposit, countersigned with certificate, change order", BRAND.spec, countersigned_change_order,
    DealStage.COMPLETED,
)
HOLD = Scenario("hold", "card held, charged on approval, transfer", AUDIT.spec, straight, DealStage.COMPLETED)
SILENT = Scenario(
    "silent", "client silent: auto-approval", WEBSITE.spec, silent_client, DealStage.COMPLETED,
    policy=DEMO_POLICY.model_copy(update={"review_window": SILENT_REVIEW_WINDOW}),
)
STRAIGHT = Scenario("straight", "signed, paid, delivered, approved", WEBSITE.spec, straight, DealStage.COMPLETED)

#: Every path once, then the happy paths again.
_FIRST = (REVISION, CANCEL, DISPUTE, CHARGEBACK, MARKETPLACE, TERMS, HOLD, SILENT)
_REPEAT = (STRAIGHT, HOLD, REVISION)


def scenarios_for(count: int) -> list[Scenario]:
    return [_FIRST[i] if i < len(_FIRST) else _REPEAT[(i - len(_FIRST)) % len(_REPEAT)] for i in range(count)]
