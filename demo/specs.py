"""The demo's deals: the specs (shaped like `examples/`, on the demo policy) that every
scenario copies for each deal it plays."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from importlib import resources
from typing import Any

from dealflow.models import DealSpec, Policy
from dealflow.specs import parse_spec

#: Windows in seconds: long enough for the simulated people, short enough to watch timers fire.
DEMO_POLICY = Policy(
    sign_window=timedelta(seconds=600),
    fund_window=timedelta(seconds=600),
    review_window=timedelta(seconds=300),
    reminder_interval=timedelta(seconds=120),
    reconcile_after=timedelta(seconds=30),
    payout_recheck=timedelta(seconds=5),
    max_revisions=2,
    demo=True,
)
#: The silent client's review window: the workflow approves on its own when it lapses.
SILENT_REVIEW_WINDOW = timedelta(seconds=20)


@dataclass(frozen=True)
class DemoDeal:
    """A deal the demo plays again and again: demo/deals/<name>.json, whose `policy` is what the
    deal changes in the demo policy. Each copy adds what sets it apart: its id and number, the
    demo vendor's work-order URL, and a plus address of its own for the client."""

    deal: Mapping[str, Any]

    @classmethod
    def named(cls, name: str) -> DemoDeal:
        return cls(json.loads((resources.files("demo") / "deals" / f"{name}.json").read_text()))

    def spec(self, deal_id: str, number: int, fulfillment_url: str, policy: Policy) -> DealSpec:
        client = self.deal["client"]
        mailbox, domain = client["email"].split("@")
        return parse_spec(
            {
                **self.deal,
                "deal_id": deal_id,
                "title": f"{self.deal['title']} #{number}",
                "client": {**client, "email": f"{mailbox}+{deal_id}@{domain}"},
                "vendor": {**self.deal["vendor"], "fulfillment_url": fulfillment_url},
                "policy": {**policy.model_dump(), **self.deal["policy"]},
            },
            f"demo/deals {self.deal['title']}",
        )


#: Like examples/website-redesign.yaml: capture when funded, no Connect account.
WEBSITE = DemoDeal.named("website-redesign")
#: Like examples/data-audit.json: the card is held, charged on approval, paid out by transfer.
AUDIT = DemoDeal.named("data-audit")
#: A marketplace deal: its large milestone may be paid by ACH, each payout keeps a platform fee.
WAREHOUSE = DemoDeal.named("warehouse-integration")
#: Like examples/brand-refresh-schedule.yaml: a total and a schedule with a deposit released on
#: funding, signed by the client and then the vendor; a change order comes mid-deal.
BRAND = DemoDeal.named("brand-refresh")
