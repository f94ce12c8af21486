"""Connected accounts: the vendors a platform transfers to. A transfer or payout names one that
exists, as on Stripe, where an unknown `acct_` is `No such destination`.

`POST /v1/accounts` (Stripe picks the id) makes an account that is not onboarded yet, as on
Stripe: nothing enabled, its requested capabilities `inactive`, its `requirements` due, and a
transfer to it refused (`insufficient_capabilities_for_transfer`). `POST /v1/account_links`
gives the URL of the hosted onboarding page (`connect_page`); completing it (or the control
`/_sandbox/accounts/{id}/onboard`) enables the account and sends `account.updated`. A vendor
onboarded before (a spec that names its `acct_`) is registered under that id through the
controls, onboarded at once.
"""

from __future__ import annotations

import re
from typing import Any

from stripe_sandbox.core import SandboxCore
from stripe_sandbox.errors import invalid_request, resource_missing
from stripe_sandbox.objects import Obj, list_object, nulls
from stripe_sandbox.store import new_id

ACCOUNT_ID = re.compile(r"^acct_[A-Za-z0-9]{1,64}$")


#: What Stripe asks of an individual's Express account before it may receive transfers.
ONBOARDING_DUE = [
    "business_profile.url",
    "external_account",
    "individual.dob.day",
    "individual.first_name",
    "individual.last_name",
    "tos_acceptance.date",
    "tos_acceptance.ip",
]
#: How long an account link works (Stripe: a few minutes; then the vendor goes to refresh_url).
ACCOUNT_LINK_SECONDS = 300


def _requirements(due: list[str]) -> Obj:
    """`due` is what the account still needs (nothing: it is verified)."""
    return {
        "alternatives": [],
        "current_deadline": None,
        "currently_due": list(due),
        "disabled_reason": "requirements.past_due" if due else None,
        "errors": [],
        "eventually_due": list(due),
        "past_due": list(due),
        "pending_verification": [],
    }


def _capabilities(params: dict[str, Any], status: str) -> Obj:
    """Every requested capability in `status`; transfers always (dealflow's accounts receive them)."""
    requested = {"transfers"} | {
        name for name, ask in (params.get("capabilities") or {}).items() if ask.get("requested")
    }
    return dict.fromkeys(sorted(requested), status)


def _onboarding_state(params: dict[str, Any], created: int, onboarded: bool) -> Obj:
    """The fields onboarding changes: before it nothing is enabled, after it all is."""
    return {
        "capabilities": _capabilities(params, "active" if onboarded else "inactive"),
        "charges_enabled": onboarded,
        "details_submitted": onboarded,
        "payouts_enabled": onboarded,
        "requirements": _requirements([] if onboarded else ONBOARDING_DUE),
        "tos_acceptance": {
            "date": created if onboarded else None,
            "ip": None,
            "service_agreement": "full",
            "user_agent": None,
        },
    }


def account(*, id: str, created: int, params: dict[str, Any], onboarded: bool) -> Obj:
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
        "controller": {"type": "application", "is_controller": True},
        "country": country,
        "created": created,
        "default_currency": params.get("default_currency", "eur" if country != "US" else "usd"),
        "email": params.get("email"),
        "external_accounts": list_object(
            [], has_more=False, url=f"/v1/accounts/{id}/external_accounts"
        ),
        "future_requirements": _requirements([]),
        "metadata": params.get("metadata", {}),
        **_onboarding_state(params, created, onboarded),
        "type": params["type"],
        "_params": params,
    }


class ConnectedAccounts(SandboxCore):
    def create_account(self, params: dict[str, Any]) -> Obj:
        return self._open_account(new_id("acct_1", 15), params, onboarded=False)

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
        return self._open_account(account_id, {"type": "express", "email": email}, onboarded=True)

    def _open_account(self, account_id: str, params: dict[str, Any], *, onboarded: bool) -> Obj:
        opened = account(id=account_id, created=self.now(), params=params, onboarded=onboarded)
        self.store.put(opened)
        return opened

    def create_account_link(self, params: dict[str, Any], *, public_url: str) -> Obj:
        """A short-lived URL of the hosted onboarding page for the account."""
        account_id = self.get(params["account"], "account", "account")["id"]
        link_id = new_id("acctlink_")
        created = self.now()
        link = {
            "id": link_id,
            "object": "account_link",
            "created": created,
            "expires_at": created + ACCOUNT_LINK_SECONDS,
            "url": f"{public_url.rstrip('/')}/connect/onboarding/{link_id}",
            "_account": account_id,
            "_type": params["type"],
            "_refresh_url": params.get("refresh_url"),
            "_return_url": params.get("return_url"),
        }
        self.store.put(link)
        return link

    def complete_onboarding(self, account_id: str) -> Obj:
        """The vendor gave Stripe everything: the account is enabled and `account.updated` says so."""
        found = self.get(account_id, "account", "account")
        done = _onboarding_state(found.get("_params", {}), self.now(), onboarded=True)
        previous = {key: found[key] for key, value in done.items() if found[key] != value}
        if not previous:
            return found
        found.update(done)
        self._emit("account.updated", found, previous)
        return found

    def connected_account(self, account_id: str, param: str) -> Obj:
        """The account a transfer or payout names; an unknown one is `No such <param>`."""
        found = self.state.objects.get(account_id)
        if found is None or found["object"] != "account":
            raise resource_missing(param, account_id, param)
        return found

    def transfer_destination(self, account_id: str) -> Obj:
        """The account a transfer goes to: it must exist and have its transfers capability active."""
        found = self.connected_account(account_id, "destination")
        if found["capabilities"].get("transfers") != "active":
            raise invalid_request(
                "Your destination account needs to have at least one of the following "
                "capabilities enabled: transfers, crypto_transfers, legacy_payments",
                param="destination",
                code="insufficient_capabilities_for_transfer",
            )
        return found
