"""Admin API: the deals, one deal's live status and signing certificate, the operator's actions
on a deal (cancellation, dispute resolution, reversal settlement, a new access code for the
signer, a change order), and the health of the Stripe link. Each action names the operator
whose token the request presents."""

from __future__ import annotations

import base64
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import Response
from pydantic import AwareDatetime, BaseModel, EmailStr, TypeAdapter, create_model

from bridge import calls
from bridge.auth import Operator, require_admin
from bridge.errors import ApiError
from bridge.inbox import InboxStatus
from bridge.quarantine import QuarantinedLedgerRow, count_quarantined, list_quarantined
from bridge.state import Bridge
from dealflow.certificates import kept_certificate
from dealflow.contract import (
    CANCEL_DEAL,
    PROPOSE_AMENDMENT,
    RESEND_ACCESS_CODE,
    RESOLVE_DISPUTE,
    SETTLE_REVERSAL,
)
from dealflow.messages import (
    ActionResult,
    CancelDeal,
    DealSnapshot,
    DealStage,
    DealStatus,
    OperatorAction,
    ProposeAmendment,
    ResendAccessCode,
    ResolveDispute,
    SettleReversal,
)
from dealflow.models import Slug

router = APIRouter(prefix="/api", tags=["admin"], dependencies=[Depends(require_admin)])

MAX_PAGE = 100
#: A cursor of ours is about 140 characters; anything much longer is not one.
MAX_CURSOR_LENGTH = 256
_CURSOR = TypeAdapter(tuple[AwareDatetime, Slug])


class DealRow(DealSnapshot):
    """A row of the `deals` read model: the workflow's last snapshot, and when the deal began."""

    created_at: datetime


class DealPage(BaseModel):
    deals: list[DealRow]
    next_cursor: str | None


class StripeLast24h(BaseModel):
    events_received: int
    signature_failures: int
    orphans: int
    #: Payment events kept without a signal of their own: an earlier event of the same deal
    #: reported the same payment (see /api/stripe-events?status=folded).
    folded: int


class StripeStatus(BaseModel):
    mode: Literal["live", "test", "sandbox", "unconfigured"]
    webhook_secret_configured: bool
    last_24h: StripeLast24h
    inbox_backlog: int
    #: Pending events backing off after a failed attempt (their last_error says why).
    inbox_retrying: int
    #: Events the relay gave up on; they are kept and wait for an operator.
    inbox_undeliverable: int
    oldest_pending_at: datetime | None
    #: Ledger rows Postgres refused for good (see /api/ledger-quarantine).
    ledger_quarantined: int
    signature_failures_scope: Literal["this bridge process"] = "this bridge process"


class InboxEvent(BaseModel):
    event_id: str
    type: str
    livemode: bool
    deal_id: str | None
    status: InboxStatus
    received_at: datetime
    attempts: int
    #: The last failed attempt's reason; kept after a later attempt delivers the event.
    last_error: str | None
    #: A pending event's next attempt (while a bridge is on it, when its claim lapses).
    next_attempt_at: datetime | None
    delivered_at: datetime | None


def _encode_cursor(row: DealRow) -> str:
    raw = json.dumps([row.created_at.isoformat(), row.deal_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (created_at, deal_id) a cursor names. Clients can send anything here, so each value is
    checked before it reaches the query (asyncpg would fail on a time it cannot convert to UTC)."""
    try:
        created_at, deal_id = _CURSOR.validate_json(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return created_at.astimezone(UTC), deal_id
    except (ValueError, OverflowError) as error:  # ValidationError and binascii.Error are ValueErrors
        raise ApiError(422, "cursor is not one this API handed out", field="cursor") from error


@router.get("/deals")
async def list_deals(
    bridge: Bridge,
    stage: DealStage | None = None,
    client: Annotated[EmailStr | None, Query(description="client email")] = None,
    vendor_id: Annotated[str | None, Query(max_length=44, description="the vendor's record")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[
        str | None, Query(max_length=MAX_CURSOR_LENGTH, description="next_cursor of the previous page")
    ] = None,
) -> DealPage:
    """Newest deals first; follow `next_cursor` for the next page (null on the last one)."""
    after = _decode_cursor(cursor) if cursor else None
    rows = await bridge.pool.fetch(
        """SELECT deal_id, workflow_id, title, client_email, vendor_email, vendor_id, currency,
                  stage, amount_total, funded, released, refunded, livemode, demo, created_at,
                  updated_at
           FROM deals
           WHERE ($1::text IS NULL OR stage = $1)
             AND ($2::text IS NULL OR lower(client_email) = lower($2))
             AND ($3::timestamptz IS NULL OR (created_at, deal_id) < ($3, $4))
             AND ($6::text IS NULL OR vendor_id = $6)
           ORDER BY created_at DESC, deal_id DESC
           LIMIT $5""",
        stage.value if stage else None,
        client,
        after[0] if after else None,
        after[1] if after else None,
        limit + 1,
        vendor_id,
    )
    deals = [DealRow(**dict(row)) for row in rows[:limit]]
    return DealPage(deals=deals, next_cursor=_encode_cursor(deals[-1]) if len(rows) > limit else None)


@router.get("/deals/{deal_id}", responses={404: {}, 503: {}})
async def get_deal(deal_id: str, bridge: Bridge) -> DealStatus:
    """The workflow's live status (its `status` query), not the read model."""
    return await calls.status(bridge, deal_id)


@router.get(
    "/deals/{deal_id}/certificate",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}, 404: {}},
)
async def signing_certificate(
    deal_id: str,
    bridge: Bridge,
    version: Annotated[int | None, Query(ge=1, description="SOW version; the latest if omitted")] = None,
) -> Response:
    """The signing certificate (PDF) of a countersigned deal, as kept in the ledger; its
    SHA-256 is in `X-Certificate-SHA256`."""
    kept = await kept_certificate(bridge.pool, deal_id, version)
    if kept is None:
        which = f"version {version}" if version else "any version"
        raise ApiError(404, f"deal '{deal_id}' has no signing certificate of {which}", field="deal_id")
    return Response(
        kept.pdf,
        media_type="application/pdf",
        headers={
            "X-Certificate-SHA256": kept.sha256,
            "Content-Disposition": f'attachment; filename="{deal_id}-{kept.filename}"',
        },
    )


@dataclass(frozen=True)
class _OperatorAction:
    """One operator action as a POST route: its path under the deal, the update it runs, its
    body model, and the update-id prefix an `Idempotency-Key` is kept under."""

    path: str
    update: str
    body: type[OperatorAction]
    id_source: str
    description: str
    #: Fields the route sets itself, never the request (who proposes a change order).
    fixed: Mapping[str, Any] = field(default_factory=dict)


_OPERATOR_ACTIONS = (
    _OperatorAction(
        "cancel", CANCEL_DEAL, CancelDeal, "admin-cancel",
        "Cancel the deal; the workflow voids holds and refunds per its policy, then tells both parties.",
    ),
    _OperatorAction(
        "disputes/resolve", RESOLVE_DISPUTE, ResolveDispute, "admin-resolve",
        "Settle a milestone's dispute: resume the work, release to the vendor, or refund the client.",
    ),
    _OperatorAction(
        "reversals/settle", SETTLE_REVERSAL, SettleReversal, "admin-settle-reversal",
        "Answer a transfer reversal Stripe refused: retry it now, or absorb it as the platform.",
    ),
    _OperatorAction(
        "access-code/resend", RESEND_ACCESS_CODE, ResendAccessCode, "admin-resend-access-code",
        "Mail the signer a fresh access code (the last one stops working); it unlocks a signing "
        "locked by wrong codes. Check with the client first that it is them. No body needed.",
    ),
    _OperatorAction(
        "amendments", PROPOSE_AMENDMENT, ProposeAmendment, "admin-amend",
        "Propose a change order as the operator: the whole milestone list as it is to be (and the "
        "SOW text if it changes); the client accepts or declines it on the portal.",
        fixed={"proposed_by": "operator"},
    ),
)


def request_body(action: type[OperatorAction], fixed: Collection[str] = ()) -> type[BaseModel]:
    """The action's model without `operator` (and the `fixed` fields), as a request sends it:
    who acts is the token's operator, never what a body claims (a body naming one is refused as
    an unknown field)."""
    fields: dict[str, Any] = {
        name: (info.annotation, info)
        for name, info in action.model_fields.items()
        if name != "operator" and name not in fixed
    }
    return create_model(
        f"{action.__name__}Request", __config__=action.model_config, __doc__=action.__doc__, **fields
    )


def _add_operator_route(action: _OperatorAction) -> None:
    async def endpoint(
        deal_id: str,
        *,
        body: BaseModel | None,
        bridge: Bridge,
        operator: Operator,
        idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
    ) -> ActionResult:
        update_id = calls.update_id(action.id_source, idempotency_key)
        given = body.model_dump() if body is not None else {}
        message = action.body(**given, **action.fixed, operator=operator)
        return await calls.act(bridge, deal_id, action.update, message, update_id=update_id)

    # The annotations are strings FastAPI resolves in this module; the body's model is the
    # action's, less the operator, and a body with nothing required may be left out.
    body = request_body(action.body, action.fixed)
    endpoint.__annotations__["body"] = body
    if not any(field.is_required() for field in body.model_fields.values()):
        endpoint.__kwdefaults__ = {**(endpoint.__kwdefaults__ or {}), "body": None}
    router.add_api_route(
        f"/deals/{{deal_id}}/{action.path}",
        endpoint,
        methods=["POST"],
        response_model=ActionResult,
        responses={404: {}, 409: {}, 503: {}},
        name=action.update,
        description=action.description,
    )


for _operator_action in _OPERATOR_ACTIONS:
    _add_operator_route(_operator_action)


@router.get("/stripe-status")
async def stripe_status(bridge: Bridge) -> StripeStatus:
    """Which Stripe money this bridge sees, and whether webhooks arrive and get delivered."""
    stats = await bridge.inbox.stats()
    return StripeStatus(
        mode=bridge.settings.stripe_mode,
        webhook_secret_configured=bool(bridge.settings.stripe_webhook_secret),
        last_24h=StripeLast24h(
            events_received=stats.received_last_day,
            signature_failures=bridge.metrics.signature_failures_last_day(),
            orphans=stats.orphans_last_day,
            folded=stats.folded_last_day,
        ),
        inbox_backlog=stats.backlog,
        inbox_retrying=stats.retrying,
        inbox_undeliverable=stats.undeliverable,
        oldest_pending_at=stats.oldest_pending_at,
        ledger_quarantined=await count_quarantined(bridge.pool),
    )


@router.get("/stripe-events")
async def stripe_events(
    bridge: Bridge,
    status: InboxStatus | None = None,
    deal_id: Slug | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> list[InboxEvent]:
    """The webhook inbox, newest first, with each event's attempts and last error;
    `status=undeliverable` and `status=orphan` list the events no deal took, `status=folded`
    the payment events whose payment another event reported to the deal."""
    rows = await bridge.inbox.list(status=status, deal_id=deal_id, limit=limit)
    return [InboxEvent(**row) for row in rows]


@router.get("/ledger-quarantine")
async def ledger_quarantine(
    bridge: Bridge,
    deal_id: Slug | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> list[QuarantinedLedgerRow]:
    """Ledger rows Postgres refused for good, newest first: kept (escaped) instead of retried in
    front of the rows after them; each is also an anomaly in its deal's status."""
    return await list_quarantined(bridge.pool, deal_id=deal_id, limit=limit)
