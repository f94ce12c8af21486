"""The people of `dealflow demo`, each using only what a real one would use.

- A client reads their mail (the dev SMTP sink's `.eml` files), opens the portal link in it,
  and fills the portal's forms over HTTP, hidden CSRF token and nonce included; they pay on the
  sandbox's hosted checkout page by typing test card numbers.
- A vendor runs a small web server: it receives the signed work orders dealflow POSTs to its
  fulfilment URL and serves the files it hands in through the vendor API (the worker downloads
  them on approval and checks their SHA-256).
- An operator cancels deals and resolves disputes through the admin API.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import hashlib
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dealflow.messages import ActionResult, DisputeResolution
from dealflow.serve import serve_app
from dealflow.signing import SIGNATURE_HEADER, InvalidSignature, verify_signature

#: How long one person keeps retrying a step the server asked them to repeat (429, 503).
PATIENCE = 60.0
_MAX_BACKOFF = 5.0


class DemoStepFailed(RuntimeError):
    """A simulated person could not do their step; the message quotes what they were told."""


async def send_politely(http: httpx.AsyncClient, method: str, url: str, **kwargs: object) -> httpx.Response:
    """One request, repeated when the server says "slow down" (429) or "try again" (503), or
    does not answer at all (a restarting server), as a person reloads a page. Sending again is
    safe: every form and API call the people make is deduplicated (form nonce, Idempotency-Key)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PATIENCE
    while True:
        try:
            response = await http.request(method, url, **kwargs)  # type: ignore[arg-type]
        except httpx.TransportError:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(1.0)
            continue
        if response.status_code not in (429, 503) or loop.time() > deadline:
            return response
        retry_after = response.headers.get("retry-after", "")
        await asyncio.sleep(min(float(retry_after) if retry_after.isdigit() else 1.0, _MAX_BACKOFF))


# --------------------------------------------------------------------------- pages and forms


@dataclass
class Form:
    action: str
    fields: dict[str, str]
    id: str | None = None


@dataclass
class Page:
    url: str
    status: int
    forms: list[Form]
    links: dict[str, str]
    text: str

    def form(self, action_suffix: str, milestone_key: str | None = None) -> Form:
        """The form posting to `.../<action_suffix>` (for `milestone_key`, when given)."""
        for form in self.forms:
            if form.action.rstrip("/").endswith("/" + action_suffix) and (
                milestone_key is None or form.fields.get("milestone_key") == milestone_key
            ):
                return form
        what = f"'{action_suffix}' form" + (f" for milestone {milestone_key}" if milestone_key else "")
        raise DemoStepFailed(f"no {what} on {urlsplit(self.url).path}: {self.text[:200]}")

    def single_form(self) -> Form:
        if len(self.forms) != 1:
            raise DemoStepFailed(f"expected one form on {urlsplit(self.url).path}: {self.text[:200]}")
        return self.forms[0]

    def link(self, element_id: str) -> str:
        if element_id not in self.links:
            raise DemoStepFailed(f"no link #{element_id} on {urlsplit(self.url).path}: {self.text[:200]}")
        return urljoin(self.url, self.links[element_id])


class _PageParser(HTMLParser):
    """Forms with their fields (hidden values included), links by id, and the visible text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self.links: dict[str, str] = {}
        self.text: list[str] = []
        self._form: Form | None = None
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {name: value or "" for name, value in attrs}
        if tag == "form":
            self._form = Form(action=a.get("action", ""), fields={}, id=a.get("id"))
            self.forms.append(self._form)
        elif tag in ("input", "textarea") and self._form is not None and a.get("name"):
            if a.get("type") != "checkbox" or "checked" in a:
                self._form.fields[a["name"]] = a.get("value", "")
        elif tag == "a" and a.get("id") and a.get("href"):
            self.links[a["id"]] = a["href"]
        elif tag in ("style", "script", "title"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag in ("style", "script", "title"):
            self._skip = max(0, self._skip - 1)

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.text.append(data.strip())


def parse_page(response: httpx.Response) -> Page:
    parser = _PageParser()
    parser.feed(response.text)
    return Page(str(response.url), response.status_code, parser.forms, parser.links, " ".join(parser.text))


class Browser:
    """What a person's browser does: open pages, submit forms with their hidden fields, follow
    redirects, and send the page's own origin (the portal refuses foreign form posts)."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def open(self, url: str) -> Page:
        return parse_page(await send_politely(self.http, "GET", url, follow_redirects=True))

    async def submit(self, page: Page, form: Form, values: dict[str, str]) -> Page:
        """POST the form; a redirect is followed with a GET of its own, so being told to slow
        down on the page after it never sends the form (a payment, a signature) twice."""
        parts = urlsplit(page.url)
        response = await send_politely(
            self.http,
            "POST",
            urljoin(page.url, form.action),
            data={**form.fields, **values},
            headers={"Origin": f"{parts.scheme}://{parts.netloc}"},
        )
        if response.is_redirect:
            return await self.open(urljoin(str(response.url), response.headers["location"]))
        return parse_page(response)


# --------------------------------------------------------------------------- mail


#: A portal link as the mails carry it: `<public url>/portal/<deal id>?token=<signed token>`.
_PORTAL_LINK = re.compile(r"https?://[^\s\"'<>]+/portal/([a-z0-9][a-z0-9-]*)\?token=[A-Za-z0-9_.%-]+")


class MailBox:
    """The clients' inbox: the sink's directory, read as files arrive (only mails newer than the
    demo). Knows the latest portal link of each deal and how many mails each deal sent."""

    def __init__(self, directory: Path, *, interval: float = 0.25) -> None:
        self.directory = directory
        self.interval = interval
        self._seen: set[str] = set()
        self._links: dict[str, str] = {}
        self.counts: dict[str, int] = {}
        self._changed = asyncio.Condition()

    @asynccontextmanager
    async def watching(self) -> AsyncIterator[MailBox]:
        self._seen = {path.name for path in self.directory.glob("*.eml")}
        task = asyncio.create_task(self._scan_forever())
        try:
            yield self
        finally:
            task.cancel()
            await asyncio.wait([task])

    async def _scan_forever(self) -> None:
        """Read each new file once its size held still for one interval: the sink writes a mail
        with a plain write, so a file seen mid-write would lose its end."""
        sizes: dict[str, int] = {}
        while True:
            complete = []
            for path in self.directory.glob("*.eml"):
                if path.name in self._seen:
                    continue
                size = path.stat().st_size
                if sizes.get(path.name) == size:
                    complete.append(path)
                sizes[path.name] = size
            for path in sorted(complete):
                self._seen.add(path.name)
                del sizes[path.name]
                self._read(path)
            if complete:
                async with self._changed:
                    self._changed.notify_all()
            await asyncio.sleep(self.interval)

    def _read(self, path: Path) -> None:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        body = message.get_body(preferencelist=("plain", "html"))
        text = body.get_content() if body is not None else ""  # type: ignore[union-attr]
        deals = set()
        for match in _PORTAL_LINK.finditer(text):
            self._links[match.group(1)] = match.group(0)
            deals.add(match.group(1))
        for deal_id in deals:
            self.counts[deal_id] = self.counts.get(deal_id, 0) + 1

    def latest_link(self, deal_id: str) -> str | None:
        return self._links.get(deal_id)

    async def portal_link(self, deal_id: str, timeout: float) -> str:
        """The newest portal link mailed for `deal_id` (waiting for the first one to arrive)."""
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: deal_id in self._links), timeout)
            except TimeoutError as error:
                raise DemoStepFailed(f"no mail with a portal link for {deal_id} within {timeout:.0f}s") from error
        return self._links[deal_id]


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

    async def request_revision(self, milestone_key: str, notes: str) -> None:
        await self._act("revise", milestone_key, {"notes": notes})

    async def open_dispute(self, milestone_key: str, reason: str) -> None:
        await self._act("dispute", milestone_key, {"reason": reason})

    async def pay(self, milestone_key: str, cards: Sequence[str]) -> list[str]:
        """Follow the portal's pay link and type each card in turn until one is accepted.
        Returns what happened to each card ('declined: ...' or 'paid')."""
        checkout = await self.browser.open((await self.portal()).link(f"pay-{milestone_key}"))
        outcomes = []
        for card in cards:
            values = {"cardNumber": card, "cardExpiry": "12 / 34", "cardCvc": "123", "billingName": self.name}
            answer = await self.browser.submit(checkout, checkout.single_form(), values)
            if answer.status == 402:  # declined: the page says why and offers the form again
                outcomes.append(f"card …{card[-4:]} declined")
                checkout = answer
                continue
            if answer.status >= 400 or urlsplit(answer.url).path == urlsplit(checkout.url).path:
                raise DemoStepFailed(
                    f"checkout for {self.deal_id}/{milestone_key}: HTTP {answer.status}: {answer.text[:200]}"
                )
            outcomes.append(f"paid with card …{card[-4:]}")
            return outcomes
        raise DemoStepFailed(f"every card was declined for {self.deal_id}/{milestone_key}: {outcomes}")


# --------------------------------------------------------------------------- the vendor


@dataclass
class _Inbox:
    work_orders: dict[tuple[str, str, int], dict] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)


class DemoVendor:
    """The vendors' side: a web server taking signed work orders and serving handed-in files,
    and a client of the vendor API."""

    def __init__(self, http: httpx.AsyncClient, *, bridge_url: str, vendor_token: str, delivery_secret: str) -> None:
        self.http = http
        self.bridge_url = bridge_url.rstrip("/")
        self.vendor_token = vendor_token
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
            headers={"Authorization": f"Bearer {self.vendor_token}", "Idempotency-Key": f"demo-{deal_id}-{milestone_key}-r{revision}"},
        )
        return _action_result(response, f"deliverable for {deal_id}/{milestone_key}")


# --------------------------------------------------------------------------- the operator


class DemoOperator:
    """Cancels deals and resolves disputes through the admin API."""

    def __init__(self, http: httpx.AsyncClient, *, bridge_url: str, admin_token: str) -> None:
        self.http = http
        self.bridge_url = bridge_url.rstrip("/")
        self.admin_token = admin_token

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


def _action_result(response: httpx.Response, what: str) -> ActionResult:
    if response.status_code != 200:
        raise DemoStepFailed(f"{what}: HTTP {response.status_code}: {response.text[:300]}")
    return ActionResult.model_validate(response.json())

