"""The hosted checkout page at `session.url`: a card form whose test card decides the outcome,
and a bank form for each bank debit the session offers (its test account decides how it settles).

It runs the same `Sandbox.pay_session` (`pay_session_by_bank`) as `/_sandbox/.../pay`
(`pay_by_bank`), so a browser test and a code test see one behaviour. A declined card leaves the
session open and shows Stripe's decline message; a bank debit completes it unpaid, processing.
"""

from __future__ import annotations

import re
from pathlib import Path

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from stripe_sandbox.banks import DEBIT_CURRENCY, InvalidBankAccount, bank_account_for
from stripe_sandbox.cards import InvalidCardNumber, card_for_number
from stripe_sandbox.currencies import display_amount
from stripe_sandbox.engine import Sandbox
from stripe_sandbox.errors import StripeError
from stripe_sandbox.store import Store

_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)
_EXPIRY = re.compile(r"^\s*(\d{1,2})\s*/\s*(\d{2}|\d{4})\s*$")
_CVC = re.compile(r"^\d{3,4}$")


def _render(
    session: dict,
    email: str | None,
    *,
    action: str,
    error: str | None = None,
    card_number: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    item = session["_line_items"][0]
    bank_methods = [m for m in session["payment_method_types"] if m in DEBIT_CURRENCY]
    html = _TEMPLATES.get_template("checkout.html").render(
        session=session,
        product=item["price_data"]["product_data"]["name"],
        amount=display_amount(session["amount_total"], session["currency"]),
        email=email,
        action=action,
        error=error,
        card_number=card_number,
        bank_methods=bank_methods,
    )
    return HTMLResponse(html, status_code=status)


def _form_problem(form: dict[str, str]) -> str | None:
    """Stripe Checkout's messages for an incomplete card form, before anything is charged."""
    expiry = _EXPIRY.match(form.get("cardExpiry", ""))
    if not expiry or not 1 <= int(expiry.group(1)) <= 12:
        return "Your card's expiration date is incomplete."
    if not _CVC.match(form.get("cardCvc", "").strip()):
        return "Your card's security code is incomplete."
    return None


def checkout_routes(sandbox: Sandbox, store: Store) -> list[Route]:
    def session_or_404(session_id: str) -> dict | None:
        obj = store.state.objects.get(session_id)
        return obj if obj is not None and obj["object"] == "checkout.session" else None

    async def page(request: Request) -> Response:
        session_id = request.path_params["session_id"]
        sandbox.sweep()
        store.commit()
        session = session_or_404(session_id)
        if session is None:
            return HTMLResponse("<h1>This checkout link is not valid.</h1>", status_code=404)
        return _render(session, sandbox.checkout_email(session), action=request.url.path)

    async def pay(request: Request) -> Response:
        session_id = request.path_params["session_id"]
        session = session_or_404(session_id)
        if session is None:
            return HTMLResponse("<h1>This checkout link is not valid.</h1>", status_code=404)
        form = {key: str(value) for key, value in (await request.form()).items()}
        number = form.get("cardNumber", "")
        method = form.get("paymentMethod", "card")
        problem = None if method in DEBIT_CURRENCY else _form_problem(form)
        if problem is None:
            try:
                if method in DEBIT_CURRENCY:
                    account = bank_account_for(method, form.get("bankAccount", ""))
                    outcome = sandbox.pay_session_by_bank(session_id, account)
                else:
                    outcome = sandbox.pay_session(session_id, card_for_number(number))
            except (InvalidCardNumber, InvalidBankAccount) as error:
                problem = str(error)
            except StripeError:
                store.commit()
                return _render(
                    session, sandbox.checkout_email(session), action=request.url.path, status=409
                )
            else:
                store.commit()
                if outcome["outcome"] == "declined":
                    problem = outcome["error"]["message"]
        if problem is not None:
            return _render(
                session,
                sandbox.checkout_email(session),
                action=request.url.path,
                error=problem,
                card_number=number,
                status=402,
            )
        success_url = session["success_url"]
        if not success_url:
            return _render(session, sandbox.checkout_email(session), action=request.url.path)
        return RedirectResponse(
            success_url.replace("{CHECKOUT_SESSION_ID}", session_id), status_code=303
        )

    return [
        Route("/c/pay/{session_id}", page, methods=["GET"]),
        Route("/c/pay/{session_id}", pay, methods=["POST"]),
    ]
