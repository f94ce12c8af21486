"""Deal calls for the JSON APIs: the workflow's answer, or an ApiError with the right status."""

from __future__ import annotations

import re
from collections.abc import Awaitable
from typing import TypeVar

from pydantic import BaseModel

from bridge.deals import ActionRejected, DealNotFound, DealUnavailable, InvalidText
from bridge.errors import ApiError
from bridge.state import BridgeState
from dealflow.messages import ActionResult, DealStatus
from dealflow.models import DealSpec

T = TypeVar("T")

_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")


def update_id(source: str, idempotency_key: str | None) -> str | None:
    """The update id for an `Idempotency-Key` header (same key → one effect); None lets Temporal pick."""
    if idempotency_key is None:
        return None
    if not _IDEMPOTENCY_KEY.match(idempotency_key):
        raise ApiError(
            422, "Idempotency-Key must be 1 to 200 visible ASCII characters", field="Idempotency-Key"
        )
    return f"{source}-{idempotency_key}"


async def act(
    bridge: BridgeState, deal_id: str, update: str, message: BaseModel, *, update_id: str | None
) -> ActionResult:
    try:
        result = await bridge.deals.act(deal_id, update, message, update_id=update_id)
    except ActionRejected as error:
        bridge.metrics.actions.labels(update, "rejected").inc()
        raise ApiError(409, str(error), code="rejected") from error
    except DealNotFound as error:
        raise not_found(deal_id) from error
    except DealUnavailable as error:
        raise ApiError(503, str(error)) from error
    except InvalidText as error:
        raise ApiError(422, str(error), field=error.problem.field) from error
    bridge.metrics.actions.labels(update, "done").inc()
    return result


def not_found(deal_id: str) -> ApiError:
    """The one answer for a deal that does not exist, or that the caller may not know exists."""
    return ApiError(404, f"no deal '{deal_id}'", field="deal_id")


async def _read(deal_id: str, read: Awaitable[T]) -> T:
    """A read of one deal, its failures as the API answers them."""
    try:
        return await read
    except DealNotFound as error:
        raise not_found(deal_id) from error
    except DealUnavailable as error:
        raise ApiError(503, str(error)) from error


async def status(bridge: BridgeState, deal_id: str) -> DealStatus:
    return await _read(deal_id, bridge.deals.status(deal_id))


async def spec(bridge: BridgeState, deal_id: str) -> DealSpec:
    return await _read(deal_id, bridge.deals.spec(deal_id))
