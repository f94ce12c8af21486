"""Every object the sandbox answers, checked against the `stripe` library's typed classes.

A realistic run (sessions paid by card and bank, a manual capture, refunds, transfers and a
reversal, a dispute, customers, a connected account, the clock) leaves every kind of object in
the sandbox; each is then read back through its retrieve and list endpoints, expanded where
Stripe allows, and every event is checked with the object it carries. A field the library does
not declare, a declared one that is missing, or a value of the wrong type fails, naming it.
No network: the sandbox runs here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from stripe_sandbox.control import TEST_CARD_DECLINED, TEST_IBAN_PAYS
from tests.stripe_contract.harness import RunningSandbox, running_sandbox, session_params
from tests.stripe_sandbox.schema import NOT_IMPLEMENTED, declared_fields, object_class, problems

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

#: Each list endpoint, the object it lists, and what its items may expand.
LISTS: dict[str, tuple[str, list[str]]] = {
    "/v1/checkout/sessions": ("checkout.session", ["payment_intent", "customer", "line_items"]),
    "/v1/payment_intents": ("payment_intent", ["latest_charge", "customer"]),
    "/v1/charges": ("charge", ["balance_transaction", "customer", "payment_intent"]),
    "/v1/refunds": ("refund", ["balance_transaction", "charge"]),
    "/v1/transfers": ("transfer", ["balance_transaction", "destination"]),
    "/v1/disputes": ("dispute", ["charge", "payment_intent"]),
    "/v1/customers": ("customer", []),
    "/v1/balance_transactions": ("balance_transaction", ["source"]),
    "/v1/accounts": ("account", []),
    "/v1/events": ("event", []),
}


class Api:
    """Raw JSON from the sandbox's `/v1/`, as Stripe sends it (no library in between)."""

    def __init__(self, sandbox: RunningSandbox) -> None:
        self.sandbox = sandbox
        self._http = httpx.AsyncClient(
            base_url=sandbox.url, headers={"Authorization": f"Bearer {sandbox.api_key}"}
        )
        #: Every object answered, with the request that answered it.
        self.answers: list[tuple[str, dict[str, Any]]] = []

    async def __call__(self, method: str, path: str, **params: Any) -> dict[str, Any]:
        form = _form(params)
        if method in ("GET", "DELETE"):
            response = await self._http.request(method, path, params=form)
        else:
            response = await self._http.post(
                path,
                content=urlencode(form),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
        body = response.json()
        assert response.status_code == 200, body
        self.answers.append((f"{method} {path}", body))
        return body

    async def aclose(self) -> None:
        await self._http.aclose()


def _form(params: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Stripe's form encoding: `a[b][0][c]=...`."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        name = f"{prefix}[{key}]" if prefix else key
        if isinstance(value, dict):
            pairs += _form(value, name)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, dict):
                    pairs += _form(item, f"{name}[{index}]")
                else:
                    pairs.append((f"{name}[]", str(item)))
        else:
            pairs.append((name, str(value).lower() if isinstance(value, bool) else str(value)))
    return pairs


@pytest.fixture(scope="module")
async def walked() -> AsyncIterator[list[tuple[str, dict[str, Any]]]]:
    """Every answer of a run that makes each kind of object, then reads each back."""
    async with running_sandbox() as sandbox:
        api = Api(sandbox)
        try:
            await _make_one_of_everything(api)
            await _read_everything_back(api)
            yield api.answers
        finally:
            await api.aclose()


async def _make_one_of_everything(api: Api) -> None:
    control = api.sandbox.control
    customer = await api("POST", "/v1/customers", email="client@example.com", name="Client")
    account = await api("POST", "/v1/accounts", type="express", country="US", email="v@example.com")
    await api(
        "POST",
        "/v1/account_links",
        account=account["id"],
        type="account_onboarding",
        refresh_url="https://example.com/refresh",
        return_url="https://example.com/return",
    )
    await control.onboard_account(account["id"])
    by_card = await api(
        "POST",
        "/v1/checkout/sessions",
        **session_params(50_000, customer=customer["id"], metadata={"deal_id": "d1"}),
    )
    await control.pay(by_card["id"], TEST_CARD_DECLINED)
    paid = await control.pay(by_card["id"])
    held = await api(
        "POST",
        "/v1/checkout/sessions",
        **session_params(7_000, payment_intent_data={"capture_method": "manual"}),
    )
    authorized = await control.pay(held["id"])
    await api("POST", f"/v1/payment_intents/{authorized['payment_intent']['id']}/capture")
    lapsing = await api(
        "POST",
        "/v1/checkout/sessions",
        **session_params(8_000, payment_intent_data={"capture_method": "manual"}),
    )
    await control.pay(lapsing["id"])
    by_bank = await api(
        "POST",
        "/v1/checkout/sessions",
        **{
            **session_params(90_000, payment_method_types=["sepa_debit"]),
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": "eur",
                        "unit_amount": 90_000,
                        "product_data": {"name": "Audit"},
                    },
                }
            ],
        },
    )
    await control.pay_by_bank(by_bank["id"], "sepa_debit", TEST_IBAN_PAYS)
    await api("POST", "/v1/checkout/sessions/" + (await _open_session(api))["id"] + "/expire")
    charge = paid["charge"]["id"]
    transfer = await api(
        "POST",
        "/v1/transfers",
        amount=30_000,
        currency="usd",
        destination=account["id"],
        source_transaction=charge,
        transfer_group="d1:m1",
    )
    await control.advance_clock(10 * 86_400)
    await api("POST", f"/v1/transfers/{transfer['id']}/reversals", amount=5_000)
    await api("POST", "/v1/refunds", charge=charge, amount=1_000, reason="requested_by_customer")
    disputed = await api(
        "POST",
        "/v1/payment_intents",
        amount=3_000,
        currency="usd",
        payment_method="pm_card_visa",
        confirm=True,
    )
    dispute = await control.open_dispute(payment_intent=disputed["id"])
    await control.close_dispute(dispute["id"], "lost")
    await api("POST", "/v1/payment_intents", amount=1_500, currency="usd")
    doomed = await api("POST", "/v1/customers", email="gone@example.com")
    await api("DELETE", f"/v1/customers/{doomed['id']}")


async def _open_session(api: Api) -> dict[str, Any]:
    return await api("POST", "/v1/checkout/sessions", **session_params(1_234))


async def _read_everything_back(api: Api) -> None:
    await api("GET", "/v1/balance")
    for path, (kind, expandable) in LISTS.items():
        listed = await api("GET", path, limit=100)
        assert listed["data"], f"the run made no {kind}"
        for item in listed["data"]:
            await api("GET", f"{path}/{item['id']}", expand=expandable)
        await api("GET", path, limit=3, expand=[f"data.{field}" for field in expandable])


def _objects(value: dict[str, Any]) -> list[dict[str, Any]]:
    """The Stripe objects of an answer: a list's items, or the one object."""
    return value["data"] if value.get("object") == "list" else [value]


async def test_every_answer_is_an_object_the_stripe_library_declares(
    walked: list[tuple[str, dict[str, Any]]],
) -> None:
    found = [
        f"{request}: {problem}"
        for request, body in walked
        for obj in _objects(body)
        for problem in problems(obj)
    ]
    assert not found, "\n".join(found[:60])


async def test_every_event_carries_an_object_the_stripe_library_declares(
    walked: list[tuple[str, dict[str, Any]]],
) -> None:
    events = [
        event for request, body in walked if request == "GET /v1/events" for event in body["data"]
    ]
    types = {event["type"] for event in events}
    assert {
        "checkout.session.completed",
        "checkout.session.async_payment_succeeded",
        "payment_intent.created",
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
        "charge.succeeded",
        "charge.failed",
        "charge.captured",
        "charge.refunded",
        "charge.dispute.created",
        "transfer.created",
        "transfer.reversed",
        "customer.created",
        "charge.pending",
        "charge.expired",
    } <= types
    found = [
        f"{event['type']}: {problem}"
        for event in events
        for problem in problems(event["data"]["object"])
    ]
    assert not found, "\n".join(found[:60])


def test_the_schema_check_catches_a_wrong_type_a_missing_and_an_unknown_field() -> None:
    refund = {name: None for name in declared_fields(object_class("refund"))}
    found = problems({**refund, "object": "refund", "amount": "12", "surprise": 1})
    assert any(line.startswith("refund.amount: expected an integer") for line in found)
    assert "refund.surprise: not a field of Refund" in found
    del refund["currency"]
    assert any(
        "refund.currency: missing" in line for line in problems({**refund, "object": "refund"})
    )


def test_the_allow_list_names_fields_the_library_still_declares() -> None:
    classes = {
        cls.__name__: cls
        for cls in map(object_class, [*(kind for kind, _ in LISTS.values()), "item", "price"])
    }
    for (owner, field), reason in NOT_IMPLEMENTED.items():
        assert reason and owner in classes, f"{owner} is not a class the sandbox answers with"
        assert field in declared_fields(classes[owner]), (
            f"{owner}.{field} is no longer declared: drop it from NOT_IMPLEMENTED"
        )
