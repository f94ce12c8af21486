"""The people of `dealflow demo`, each using only what a real one would use.

- A client reads their mail (the dev SMTP sink's `.eml` files), opens the portal link in it,
  and fills the portal's forms over HTTP, hidden CSRF token and nonce included; they pay on the
  sandbox's hosted checkout page by typing test card numbers.
- A vendor runs a small web server: it receives the signed work orders dealflow POSTs to its
  fulfilment URL and serves the files it hands in through the vendor API (the worker downloads
  them on approval and checks their SHA-256).
- An operator cancels deals and resolves disputes through the admin API.
- The client's bank does what only a bank does, through the sandbox's controls: it settles a
  bank debit whose days are over, and charges a card payment back and decides the chargeback.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dealflow.messages import ActionResult, DisputeResolution
from dealflow.serve import serve_app
from dealflow.signing import SIGNATURE_HEADER, InvalidSignature, verify_signature
from demo.browser import Browser, Page
from demo.http import DemoStepFailed, send_politely
from demo.mailbox import MailBox
from stripe_sandbox.control import SandboxControl

# --------------------------------------------------------------------------- the client


class DemoClient:
    """One deal's client: mail, portal, hosted checkout."""

    def __init__(self, browser: Browser, mailbox: MailBox, deal_id: str, name: str, *, timeout: float) -> None:
        self.browser = browser
        self.mailbox = mailbox
        self.deal_id = deal_id
        self.name = name
        self.timeout = timeout

    async def portal(self) -> Page:
        page = await self.browser.open(await self.mailbox.portal_link(self.deal_id, self.timeout))
        if page.status != 200:
            raise DemoStepFailed(f"portal of {self.deal_id}: HTTP {page.status}: {page.text[:200]}")
        return page

    async def _act(self, action: str, milestone_key: str | None, values: dict[str, str]) -> None:
        portal = await self.portal()
        answer = await self.browser.submit(portal, portal.form(action, milestone_key), values)
        if answer.status != 200:
            raise DemoStepFailed(f"{action} on {self.deal_id}: HTTP {answer.status}: {answer.text[:300]}")

    async def sign(self) -> None:
        await self._act("sign", None, {"full_name": self.name, "consent": "true"})

    async def approve(self, milestone_key: str) -> None:
        await self._act("approve", milestone_key, {})

    async def accept_amendment(self) -> None:
        """Sign the change order the portal shows (its version and SHA-256 come with the form)."""
        await self._act("accept-amendment", None, {"full_name": self.name, "consent": "true"})

    async def request_revision(self, milestone_key: str, notes: str) -> None:
        await self._act("revise", milestone_key, {"notes": notes})

    async def open_dispute(self, milestone_key: str, reason: str) -> None:
        await self._act("dispute", milestone_key, {"reason": reason})

    async def checkout(self, milestone_key: str) -> Page:
        """The hosted checkout page behind the portal's pay link."""
        return await self.browser.open((await self.portal()).link(f"pay-{milestone_key}"))

    async def pay(self, milestone_key: str, cards: Sequence[str]) -> list[str]:
        """Follow the portal's pay link and type each card in turn until one is accepted.
        Returns what happened to each card ('declined: ...' or 'paid')."""
        checkout = await self.checkout(milestone_key)
        outcomes = []
        for card in cards:
            values = {"cardNumber": card, "cardExpiry": "12 / 34", "cardCvc": "123", "billingName": self.name}
            answer = await self.browser.submit(checkout, checkout.form_by_id(CARD_FORM), values)
            if answer.status == 402:  # declined: the page says why and offers the form again
                outcomes.append(f"card …{card[-4:]} declined")
                checkout = answer
                continue
            self._paid(milestone_key, checkout, answer)
            outcomes.append(f"paid with card …{card[-4:]}")
            return outcomes
        raise DemoStepFailed(f"every card was declined for {self.deal_id}/{milestone_key}: {outcomes}")

    async def pay_by_bank(self, milestone_key: str, method: str, account: str) -> None:
        """Authorize a bank debit on the hosted checkout page (its bank form for `method`)."""
        checkout = await self.checkout(milestone_key)
        answer = await self.browser.submit(checkout, checkout.form_by_id(f"bank-form-{method}"), {"bankAccount": account})
        self._paid(milestone_key, checkout, answer)

    def _paid(self, milestone_key: str, checkout: Page, answer: Page) -> None:
        """A payment the page took leaves it (for the portal); anything else is a failed step."""
        if answer.status >= 400 or urlsplit(answer.url).path == urlsplit(checkout.url).path:
            raise DemoStepFailed(
                f"checkout for {self.deal_id}/{milestone_key}: HTTP {answer.status}: {answer.text[:200]}"
            )


#: The hosted checkout page's card form (its bank forms are `bank-form-<method>`).
CARD_FORM = "payment-form"


# --------------------------------------------------------------------------- the vendor


@dataclass
class _Inbox:
    work_orders: dict[tuple[str, str, int], dict] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)


class DemoVendor:
    """The vendors' side: a web server taking signed work orders and serving handed-in files,
    and a client of the vendor API, with each deal's vendor's own key (`sign_in`). Only the
    benchmarks, whose deals name no vendor, use the legacy dev-only `vendor_token` instead."""

    def __init__(
        self, http: httpx.AsyncClient, *, bridge_url: str, delivery_secret: str, vendor_token: str | None = None
    ) -> None:
        self.http = http
        self.bridge_url = bridge_url.rstrip("/")
        self.vendor_token = vendor_token
        self._keys: dict[str, str] = {}
        self.delivery_secret = delivery_secret
        self.base_url = ""
        self._inbox = _Inbox()
        self._arrived = asyncio.Condition()

    @property
    def fulfillment_url(self) -> str:
        return f"{self.base_url}/work-orders"

    @asynccontextmanager
    async def serving(self, host: str = "127.0.0.1") -> AsyncIterator[DemoVendor]:
        app = Starlette(
            routes=[
                Route("/work-orders", self._take_work_order, methods=["POST"]),
                Route("/files/{name:path}", self._serve_file, methods=["GET"]),
            ]
        )
        async with serve_app(app, host=host) as url:
            self.base_url = url
            yield self

    async def _take_work_order(self, request: Request) -> Response:
        body = await request.body()
        try:
            verify_signature(self.delivery_secret, request.headers.get(SIGNATURE_HEADER, ""), body)
        except InvalidSignature as error:
            return JSONResponse({"error": str(error)}, status_code=401)
        order = await request.json()
        key = (order["deal_id"], order["milestone_key"], int(order["revision"]))
        async with self._arrived:
            self._inbox.work_orders[key] = order
            self._arrived.notify_all()
        return JSONResponse({"delivery_id": "wo-" + "-".join(map(str, key))}, status_code=202)

    async def _serve_file(self, request: Request) -> Response:
        data = self._inbox.files.get(request.path_params["name"])
        if data is None:
            return Response(status_code=404)
        return Response(data, media_type="text/plain; charset=utf-8")

    def sign_in(self, deal_id: str, api_key: str) -> None:
        """The key of the deal's vendor: the only key that reaches the deal."""
        self._keys[deal_id] = api_key

    def _key(self, deal_id: str) -> str:
        key = self._keys.get(deal_id, self.vendor_token)
        if key is None:
            raise DemoStepFailed(f"no vendor key for {deal_id}: its vendor was not enrolled")
        return key

    def work_orders(self, deal_id: str) -> int:
        return sum(1 for key in self._inbox.work_orders if key[0] == deal_id)

    async def wait_for_work_order(self, deal_id: str, milestone_key: str, revision: int, timeout: float) -> dict:
        key = (deal_id, milestone_key, revision)
        async with self._arrived:
            try:
                await asyncio.wait_for(self._arrived.wait_for(lambda: key in self._inbox.work_orders), timeout)
            except TimeoutError as error:
                raise DemoStepFailed(f"no work order for {deal_id}/{milestone_key} r{revision} in {timeout:.0f}s") from error
            return self._inbox.work_orders[key]

    async def deliver(self, deal_id: str, milestone_key: str, revision: int, summary: str) -> ActionResult:
        """Hand in one file for the milestone; the same call twice hands it in once."""
        name = f"{deal_id}/{milestone_key}-r{revision}.txt"
        data = f"{summary}\n\ndeal {deal_id}, milestone {milestone_key}, revision {revision}\n".encode()
        self._inbox.files[name] = data
        artifact = {"name": name.rsplit("/", 1)[-1], "url": f"{self.base_url}/files/{name}", "sha256": hashlib.sha256(data).hexdigest()}
        response = await send_politely(
            self.http,
            "POST",
            f"{self.bridge_url}/api/vendor/deals/{deal_id}/milestones/{milestone_key}/deliverables",
            json={"summary": summary, "artifacts": [artifact]},
            headers={"Authorization": f"Bearer {self._key(deal_id)}", "Idempotency-Key": f"demo-{deal_id}-{milestone_key}-r{revision}"},
        )
        return _action_result(response, f"deliverable for {deal_id}/{milestone_key}")


    async def countersign(self, deal_id: str, signer_name: str) -> ActionResult:
        """Sign the deal's SOW for the vendor, in its turn (the vendor API)."""
        response = await send_politely(
            self.http,
            "POST",
            f"{self.bridge_url}/api/vendor/deals/{deal_id}/signature",
            json={"signer_name": signer_name, "consent": True},
            headers={"Authorization": f"Bearer {self._key(deal_id)}", "Idempotency-Key": f"demo-{deal_id}-countersign"},
        )
        return _action_result(response, f"countersignature of {deal_id}")

    async def propose_amendment(self, deal_id: str, terms: dict[str, Any]) -> ActionResult:
        """Propose a change order: the whole milestone list as it is to be, and why."""
        response = await send_politely(
            self.http,
            "POST",
            f"{self.bridge_url}/api/vendor/deals/{deal_id}/amendments",
            json=terms,
            headers={"Authorization": f"Bearer {self._key(deal_id)}", "Idempotency-Key": f"demo-{deal_id}-amend"},
        )
        return _action_result(response, f"change order of {deal_id}")


# --------------------------------------------------------------------------- the operator


class DemoOperator:
    """Cancels deals and resolves disputes through the admin API."""

    def __init__(self, http: httpx.AsyncClient, *, bridge_url: str, admin_token: str) -> None:
        self.http = http
        self.bridge_url = bridge_url.rstrip("/")
        self.admin_token = admin_token

    async def enrol_vendor(self, name: str, email: str, stripe_account: str | None) -> tuple[str, str]:
        """(vendor id, API key) of the vendor with this email: added, or, when an earlier run on
        this stack added them, given a new key (keys are shown once)."""
        headers = {"Authorization": f"Bearer {self.admin_token}"}
        vendors = f"{self.bridge_url}/api/vendors"
        body = {"name": name, "email": email, "stripe_account": stripe_account}
        added = await send_politely(self.http, "POST", vendors, json=body, headers=headers)
        if added.status_code == 201:
            return added.json()["vendor"]["vendor_id"], added.json()["key"]["api_key"]
        if added.status_code != 422 or added.json()["error"]["field"] != "email":
            raise DemoStepFailed(f"add vendor {email}: HTTP {added.status_code}: {added.text[:300]}")
        listed = await send_politely(self.http, "GET", vendors, headers=headers)
        vendor_id = next(v["vendor_id"] for v in listed.json() if v["email"].lower() == email.lower())
        rotated = await send_politely(self.http, "POST", f"{vendors}/{vendor_id}/keys", headers=headers)
        if rotated.status_code != 200:
            raise DemoStepFailed(f"new key for {email}: HTTP {rotated.status_code}: {rotated.text[:300]}")
        return vendor_id, rotated.json()["api_key"]

    async def cancel(self, deal_id: str, reason: str) -> ActionResult:
        response = await send_politely(
            self.http,
            "POST",
            f"{self.bridge_url}/api/deals/{deal_id}/cancel",
            json={"reason": reason, "requested_by": "operator (demo)"},
            headers={"Authorization": f"Bearer {self.admin_token}", "Idempotency-Key": f"demo-cancel-{deal_id}"},
        )
        return _action_result(response, f"cancel {deal_id}")

    async def resolve_dispute(
        self, deal_id: str, milestone_key: str, resolution: DisputeResolution, notes: str
    ) -> ActionResult:
        response = await send_politely(
            self.http,
            "POST",
            f"{self.bridge_url}/api/deals/{deal_id}/disputes/resolve",
            json={"milestone_key": milestone_key, "resolution": resolution.value, "notes": notes},
            headers={
                "Authorization": f"Bearer {self.admin_token}",
                "Idempotency-Key": f"demo-resolve-{deal_id}-{milestone_key}",
            },
        )
        return _action_result(response, f"resolve the dispute on {deal_id}/{milestone_key}")


# --------------------------------------------------------------------------- the client's bank


class DemoBank:
    """The client's bank and card network, played through the sandbox's controls: what they
    decide reaches dealflow only as Stripe's webhooks."""

    def __init__(self, control: SandboxControl) -> None:
        self.control = control

    async def settle_debit(self, payment_intent_id: str) -> None:
        """The debit's business days are over and the money came."""
        await self.control.settle_debit(payment_intent_id, "succeeded")

    async def charge_back(self, payment_intent_id: str, reason: str) -> dict[str, Any]:
        """The cardholder disputed the payment: Stripe's dispute, with its evidence due date."""
        return await self.control.open_dispute(payment_intent=payment_intent_id, reason=reason)

    async def decide(self, dispute_id: str, status: str) -> None:
        """The bank's decision on the chargeback (`won` gives the money back)."""
        await self.control.close_dispute(dispute_id, status)


def _action_result(response: httpx.Response, what: str) -> ActionResult:
    if response.status_code != 200:
        raise DemoStepFailed(f"{what}: HTTP {response.status_code}: {response.text[:300]}")
    return ActionResult.model_validate(response.json())
