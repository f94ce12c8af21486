"""`/_sandbox/`: the controls a test or a demo needs and Stripe's API does not have.

Pay a session with a test card or bank account from code, settle a bank debit now, open and
close disputes, register a vendor's connected account under its id, advance the clock, set
faults, point webhooks somewhere else, and read what the sandbox recorded (the money log and the
webhook delivery attempts). JSON in, JSON out; errors in Stripe's envelope.

Each control but `GET /_sandbox` (what the sandbox is and which controls it has) needs
`Authorization: Bearer <control token>`: a page on any web site could otherwise POST to the
sandbox on localhost and pay, dispute or reroute webhooks.
"""

from __future__ import annotations

import hmac
import json
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from stripe_sandbox.banks import InvalidBankAccount, bank_account_for
from stripe_sandbox.cards import InvalidCardNumber, card_for_number
from stripe_sandbox.engine import Sandbox
from stripe_sandbox.errors import StripeError, authentication, invalid_request
from stripe_sandbox.faults import FaultConfig, FaultInjector
from stripe_sandbox.store import Store
from stripe_sandbox.webhooks import WebhookDispatcher

CONTROL_PREFIX = "/_sandbox"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PayBody(_Body):
    card: str = "4242424242424242"


class PayByBankBody(_Body):
    method: Literal["us_bank_account", "sepa_debit"] = "us_bank_account"
    #: The test account number (ACH) or IBAN (SEPA); the default ACH account succeeds.
    account: str = "000123456789"


class SettleDebitBody(_Body):
    #: None: as the test account decides.
    outcome: Literal["succeeded", "failed"] | None = None


class OpenDisputeBody(_Body):
    payment_intent: str | None = None
    charge: str | None = None
    reason: Literal[
        "fraudulent",
        "duplicate",
        "product_not_received",
        "product_unacceptable",
        "subscription_canceled",
        "credit_not_processed",
        "general",
    ] = "fraudulent"
    amount: int | None = Field(default=None, gt=0)


class CloseDisputeBody(_Body):
    status: Literal["won", "lost"]


class AdvanceClockBody(_Body):
    seconds: int = Field(ge=0, le=400 * 86400)


class AccountBody(_Body):
    #: The vendor's own `acct_` id; None: a new one.
    id: str | None = None
    email: str | None = None


class AccountPayoutBody(_Body):
    amount: int = Field(gt=0)
    currency: str = Field(pattern=r"^[a-z]{3}$")


class WebhookBody(_Body):
    url: str | None
    secret: str | None = None

    @field_validator("secret")
    @classmethod
    def _whsec(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("whsec_"):
            raise ValueError("must start with whsec_")
        return value


def _error_response(error: StripeError) -> JSONResponse:
    return JSONResponse(error.envelope(), status_code=error.status)


async def _body(request: Request, model: type[_Body]) -> Any:
    raw = await request.body()
    try:
        data = json.loads(raw) if raw.strip() else {}
        return model.model_validate(data)
    except json.JSONDecodeError as error:
        raise invalid_request(f"The body is not JSON: {error}") from error
    except ValidationError as error:
        first = error.errors()[0]
        param = ".".join(str(part) for part in first["loc"]) or None
        raise invalid_request(
            f"{param}: {first['msg']}" if param else first["msg"], param=param
        ) from error


def _authorized(request: Request, token: str) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.encode(), token.encode())


def control_routes(
    sandbox: Sandbox,
    store: Store,
    faults: FaultInjector,
    webhooks: WebhookDispatcher,
    *,
    token: str,
) -> list[Route]:
    def endpoint(
        handler: Callable[[Request], Awaitable[Any]], *, public: bool = False
    ) -> Callable[[Request], Awaitable[Response]]:
        async def wrapped(request: Request) -> Response:
            if not public and not _authorized(request, token):
                return _error_response(
                    authentication(
                        "the sandbox's controls need Authorization: Bearer <control token>"
                    )
                )
            try:
                result = await handler(request)
            except StripeError as error:
                store.commit()
                return _error_response(error)
            store.commit()
            return JSONResponse(result)

        return wrapped

    async def info(request: Request) -> dict[str, Any]:
        base = str(request.base_url).rstrip("/")
        return {
            "name": "dealflow Stripe sandbox (not Stripe: an offline stand-in; its money is sandbox money)",
            "api_base": base,
            "livemode": False,
            "api_key": store.state.api_key,
            "webhook_url": store.state.webhook_url,
            "now": sandbox.now(),
            "controls": [route.path for route in routes],
            "controls_need": "Authorization: Bearer <control token>",
        }

    async def pay(request: Request) -> dict[str, Any]:
        body = await _body(request, PayBody)
        try:
            card = card_for_number(body.card)
        except InvalidCardNumber as error:
            raise invalid_request(str(error), param="card", code="invalid_number") from error
        return sandbox.pay_session(request.path_params["session_id"], card)

    async def pay_by_bank(request: Request) -> dict[str, Any]:
        body = await _body(request, PayByBankBody)
        try:
            account = bank_account_for(body.method, body.account)
        except InvalidBankAccount as error:
            raise invalid_request(str(error), param="account", code="invalid_bank_account") from error
        return sandbox.pay_session_by_bank(request.path_params["session_id"], account)

    async def settle_debit(request: Request) -> dict[str, Any]:
        body = await _body(request, SettleDebitBody)
        return sandbox.render(
            sandbox.settle_debit(request.path_params["intent_id"], body.outcome)
        )

    async def open_dispute(request: Request) -> dict[str, Any]:
        body = await _body(request, OpenDisputeBody)
        dispute = sandbox.open_dispute(
            payment_intent=body.payment_intent,
            charge_id=body.charge,
            reason=body.reason,
            amount=body.amount,
        )
        return sandbox.render(dispute)

    async def close_dispute(request: Request) -> dict[str, Any]:
        body = await _body(request, CloseDisputeBody)
        return sandbox.render(sandbox.close_dispute(request.path_params["dispute_id"], body.status))

    async def register_account(request: Request) -> dict[str, Any]:
        body = await _body(request, AccountBody)
        return sandbox.render(sandbox.register_account(body.id, body.email))

    async def onboard_account(request: Request) -> dict[str, Any]:
        return sandbox.render(sandbox.complete_onboarding(request.path_params["account"]))

    async def account_payout(request: Request) -> dict[str, Any]:
        body = await _body(request, AccountPayoutBody)
        account = request.path_params["account"]
        left = sandbox.pay_out_account(account, body.currency, body.amount)
        return {"account": account, "currency": body.currency, "left": left}

    async def clock(request: Request) -> dict[str, Any]:
        return {"now": sandbox.now(), "offset_seconds": store.state.clock_offset}

    async def advance_clock(request: Request) -> dict[str, Any]:
        body = await _body(request, AdvanceClockBody)
        return sandbox.advance_clock(body.seconds)

    async def get_faults(request: Request) -> dict[str, Any]:
        return faults.snapshot()

    async def put_faults(request: Request) -> dict[str, Any]:
        faults.configure(await _body(request, FaultConfig))
        return faults.snapshot()

    async def reset_faults(request: Request) -> dict[str, Any]:
        faults.configure(FaultConfig())
        return faults.snapshot()

    async def get_webhook(request: Request) -> dict[str, Any]:
        return {
            "url": store.state.webhook_url,
            "secret": store.state.webhook_secret,
            "pending": webhooks.pending,
        }

    async def put_webhook(request: Request) -> dict[str, Any]:
        body = await _body(request, WebhookBody)
        store.set_webhook(body.url, body.secret)
        return await get_webhook(request)

    async def deliveries(request: Request) -> dict[str, Any]:
        return {"pending": webhooks.pending, "attempts": list(webhooks.log)}

    async def retry_now(request: Request) -> dict[str, Any]:
        return {"rescheduled": webhooks.retry_pending_now()}

    async def money(request: Request) -> dict[str, Any]:
        totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for entry in store.state.money:
            totals[entry["currency"]][entry["kind"]] += entry["amount"]
        return {
            "movements": store.state.money,
            "totals": totals,
            "available": {currency: sandbox.available_balance(currency) for currency in totals},
            "pending": {currency: sandbox.pending_balance(currency) for currency in totals},
            "accounts": {
                f"{account}:{currency}": amount
                for (account, currency), amount in store.indexes.account_balances.items()
            },
        }

    routes = [
        Route(CONTROL_PREFIX, endpoint(info, public=True), methods=["GET"]),
        Route(
            f"{CONTROL_PREFIX}/checkout/sessions/{{session_id}}/pay",
            endpoint(pay),
            methods=["POST"],
        ),
        *(
            Route(f"{CONTROL_PREFIX}{path}", endpoint(handler), methods=["POST"])
            for path, handler in (
                ("/checkout/sessions/{session_id}/pay_by_bank", pay_by_bank),
                ("/payment_intents/{intent_id}/settle", settle_debit),
            )
        ),
        Route(f"{CONTROL_PREFIX}/disputes", endpoint(open_dispute), methods=["POST"]),
        Route(
            f"{CONTROL_PREFIX}/disputes/{{dispute_id}}/close",
            endpoint(close_dispute),
            methods=["POST"],
        ),
        Route(f"{CONTROL_PREFIX}/accounts", endpoint(register_account), methods=["POST"]),
        Route(
            f"{CONTROL_PREFIX}/accounts/{{account}}/payout",
            endpoint(account_payout),
            methods=["POST"],
        ),
        Route(
            f"{CONTROL_PREFIX}/accounts/{{account}}/onboard",
            endpoint(onboard_account),
            methods=["POST"],
        ),
        Route(f"{CONTROL_PREFIX}/clock", endpoint(clock), methods=["GET"]),
        Route(f"{CONTROL_PREFIX}/clock/advance", endpoint(advance_clock), methods=["POST"]),
        Route(f"{CONTROL_PREFIX}/faults", endpoint(get_faults), methods=["GET"]),
        Route(f"{CONTROL_PREFIX}/faults", endpoint(put_faults), methods=["PUT"]),
        Route(f"{CONTROL_PREFIX}/faults", endpoint(reset_faults), methods=["DELETE"]),
        Route(f"{CONTROL_PREFIX}/webhook", endpoint(get_webhook), methods=["GET"]),
        Route(f"{CONTROL_PREFIX}/webhook", endpoint(put_webhook), methods=["PUT"]),
        Route(f"{CONTROL_PREFIX}/webhook/deliveries", endpoint(deliveries), methods=["GET"]),
        Route(f"{CONTROL_PREFIX}/webhook/retry-now", endpoint(retry_now), methods=["POST"]),
        Route(f"{CONTROL_PREFIX}/money", endpoint(money), methods=["GET"]),
    ]
    return routes
