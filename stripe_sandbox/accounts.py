"""Connected accounts: the vendors a platform transfers to. A transfer or payout names one that
exists, as on Stripe, where an unknown `acct_` is `No such destination`. They are made with
`POST /v1/accounts` (Stripe picks the id) or, for a vendor onboarded before (a spec that names
its `acct_`), registered under that id through the sandbox's controls; either way they are
onboarded at once: charges, payouts and transfers enabled, nothing due.
"""

from __future__ import annotations

import re
from typing import Any

from stripe_sandbox.core import SandboxCore
from stripe_sandbox.errors import invalid_request, resource_missing
from stripe_sandbox.objects import Obj, list_object, nulls
from stripe_sandbox.store import new_id

ACCOUNT_ID = re.compile(r"^acct_[A-Za-z0-9]{1,64}$")


def _requirements() -> Obj:
    """Nothing due: the account is verified."""
    return {
        "alternatives": [],
        "current_deadline": None,
        "currently_due": [],
        "disabled_reason": None,
        "errors": [],
        "eventually_due": [],
        "past_due": [],
        "pending_verification": [],
    }


def account(*, id: str, created: int, params: dict[str, Any]) -> Obj:
    capabilities = {"transfers": "active"}
    if params.get("capabilities", {}).get("card_payments", {}).get("requested"):
        capabilities["card_payments"] = "active"
    country = params.get("country", "US")
    return {
        "id": id,
        "object": "account",
        **nulls("company groups individual settings"),
        "business_profile": nulls(
            "annual_revenue estimated_worker_count mcc minority_owned_business_designation "
            "monthly_estimated_revenue name product_description "
            "specified_commercial_transactions_act_url support_address support_email "
            "support_phone support_url url"
        ),
        "business_type": params.get("business_type"),
        "capabilities": capabilities,
        "charges_enabled": True,
        "controller": {"type": "application", "is_controller": True},
        "country": country,
        "created": created,
        "default_currency": params.get("default_currency", "eur" if country != "US" else "usd"),
        "details_submitted": True,
        "email": params.get("email"),
        "external_accounts": list_object(
            [], has_more=False, url=f"/v1/accounts/{id}/external_accounts"
        ),
        "future_requirements": _requirements(),
        "metadata": params.get("metadata", {}),
        "payouts_enabled": True,
        "requirements": _requirements(),
        "tos_acceptance": {
            "date": created,
            "ip": None,
            "service_agreement": "full",
            "user_agent": None,
        },
        "type": params["type"],
    }


class ConnectedAccounts(SandboxCore):
    def create_account(self, params: dict[str, Any]) -> Obj:
        return self._open_account(new_id("acct_1", 15), params)

    def register_account(self, account_id: str | None, email: str | None) -> Obj:
        """A vendor onboarded before this sandbox knew them (control API): under their own id."""
        account_id = account_id or new_id("acct_1", 15)
        if not ACCOUNT_ID.match(account_id):
            raise invalid_request(
                f"{account_id!r} is not an account id (acct_ and 1 to 64 letters or digits)",
                param="id",
            )
        existing = self.state.objects.get(account_id)
        if existing is not None:
            return existing
        return self._open_account(account_id, {"type": "express", "email": email})

    def _open_account(self, account_id: str, params: dict[str, Any]) -> Obj:
        opened = account(id=account_id, created=self.now(), params=params)
        self.store.put(opened)
        return opened

    def connected_account(self, account_id: str, param: str) -> Obj:
        """The account a transfer or payout names; an unknown one is `No such <param>`."""
        found = self.state.objects.get(account_id)
        if found is None or found["object"] != "account":
            raise resource_missing(param, account_id, param)
        return found
