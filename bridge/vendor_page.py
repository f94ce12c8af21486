"""The vendor page: reached by a signed link of its own (`dealflow vendors page`), it lists the
vendor's deals, what is due on each (their deliveries, the client's reviews) and their payouts,
and sends a vendor whose Stripe account cannot receive transfers yet to Stripe's onboarding."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel

from bridge.admin_vendors import onboarding
from bridge.deals import DealNotFound, DealUnavailable
from bridge.errors import ApiError
from bridge.pages import Pages
from bridge.state import Bridge, BridgeState, portal_rate_limit
from bridge.vendor_deals import VendorDeal, vendor_deals, vendor_payouts
from dealflow.links import InvalidLink, verify_vendor_page_token
from dealflow.messages import DealStage, MilestoneState
from dealflow.vendors import VendorProblem, VendorRecord, get_vendor

router = APIRouter(prefix="/vendor", tags=["vendor page"], dependencies=[Depends(portal_rate_limit)])

#: Deals whose milestones the page reads live (the read model has only their totals).
_LIVE_DEALS = 20
_ENDED = {DealStage.COMPLETED, DealStage.CANCELLED, DealStage.EXPIRED}
_DUE = {
    MilestoneState.IN_PROGRESS: "deliver",
    MilestoneState.REVISION_REQUESTED: "deliver the revision",
    MilestoneState.DELIVERED: "the client reviews",
    MilestoneState.APPROVED: "payout",
    MilestoneState.DISPUTED: "dispute to settle",
}


class DueItem(BaseModel):
    deal_id: str
    deal_title: str
    milestone_title: str
    what: str
    amount: int
    currency: str
    due: str | None


def _pages(request: Request) -> Pages:
    return request.app.state.pages


async def _vendor(request: Request, bridge: BridgeState, vendor_id: str, token: str) -> VendorRecord | HTMLResponse:
    """The vendor the link names, or the page that says why it opens nothing."""
    try:
        verify_vendor_page_token(bridge.settings.require("DEALFLOW_SECRET_KEY"), vendor_id, token)
        return await get_vendor(bridge.pool, vendor_id)
    except (InvalidLink, VendorProblem) as error:
        return _pages(request).message(
            status_code=403, heading="This link does not open anything", message=str(error)
        )


async def _due(bridge: BridgeState, deal: VendorDeal) -> list[DueItem]:
    try:
        status = await bridge.deals.status(deal.deal_id)
    except (DealNotFound, DealUnavailable):
        return []
    return [
        DueItem(
            deal_id=deal.deal_id,
            deal_title=deal.title,
            milestone_title=m.title,
            what=_DUE[m.state],
            amount=m.amount,
            currency=deal.currency,
            due=m.due,
        )
        for m in status.milestones
        if m.state in _DUE
    ]


@router.get("/{vendor_id}", response_class=HTMLResponse)
async def vendor_page(request: Request, vendor_id: str, bridge: Bridge, token: Annotated[str, Query()] = "") -> Response:
    vendor = await _vendor(request, bridge, vendor_id, token)
    if isinstance(vendor, HTMLResponse):
        return vendor
    deals = await vendor_deals(bridge.pool, vendor_id, limit=100)
    open_deals = [d for d in deals if d.stage not in _ENDED][:_LIVE_DEALS]
    due = [item for items in await asyncio.gather(*(_due(bridge, d) for d in open_deals)) for item in items]
    return _pages(request).render(
        "vendor.html",
        vendor=vendor,
        deals=deals,
        due=due,
        payouts=await vendor_payouts(bridge.pool, vendor_id, limit=100),
        onboarding_url=f"/vendor/{vendor_id}/onboarding?token={token}",
    )


@router.get("/{vendor_id}/onboarding")
async def vendor_onboarding(
    request: Request, vendor_id: str, bridge: Bridge, token: Annotated[str, Query()] = ""
) -> Response:
    """A fresh Stripe onboarding link for the vendor (Stripe's links lapse within minutes)."""
    vendor = await _vendor(request, bridge, vendor_id, token)
    if isinstance(vendor, HTMLResponse):
        return vendor
    try:
        started = await onboarding(bridge, vendor_id)
    except ApiError as error:
        return _pages(request).message(status_code=error.status, heading="Stripe onboarding", message=error.message)
    return RedirectResponse(started.onboarding_url, status_code=303)
