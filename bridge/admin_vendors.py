"""Admin API of vendors: add one (their first key is shown once), list them, rotate or revoke
their keys, onboard them to Stripe Connect, and hand out their vendor page link."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import stripe
from fastapi import APIRouter, Depends
from pydantic import BaseModel

from bridge.auth import require_admin
from bridge.errors import ApiError
from bridge.state import Bridge, BridgeState
from dealflow.connect import Onboarding, onboard_vendor, stripe_client
from dealflow.vendors import (
    IssuedKey,
    NewVendor,
    VendorProblem,
    VendorRecord,
    add_vendor,
    get_vendor,
    list_vendors,
    revoke_keys,
    rotate_key,
)

router = APIRouter(prefix="/api/vendors", tags=["admin: vendors"], dependencies=[Depends(require_admin)])


class AddedVendor(BaseModel):
    vendor: VendorRecord
    #: Shown once: only its SHA-256 is kept. Give it to the vendor; rotate it if it is lost.
    key: IssuedKey
    page_url: str


class Revoked(BaseModel):
    vendor_id: str
    revoked_keys: int


class PageLink(BaseModel):
    vendor_id: str
    page_url: str


@asynccontextmanager
async def _answers() -> AsyncIterator[None]:
    """A VendorProblem as 404 (no such vendor) or 422 (naming the field)."""
    try:
        yield
    except VendorProblem as error:
        raise ApiError(404 if error.not_found else 422, str(error), field=error.field) from error


@router.post("", status_code=201, responses={422: {}})
async def add(body: NewVendor, bridge: Bridge) -> AddedVendor:
    """A new vendor with their first API key (returned once)."""
    async with _answers():
        vendor, key = await add_vendor(bridge.pool, body)
    return AddedVendor(vendor=vendor, key=key, page_url=bridge.settings.portal_links().vendor_page(vendor.vendor_id))


@router.get("")
async def list_all(bridge: Bridge) -> list[VendorRecord]:
    return await list_vendors(bridge.pool)


@router.get("/{vendor_id}", responses={404: {}})
async def get(vendor_id: str, bridge: Bridge) -> VendorRecord:
    async with _answers():
        return await get_vendor(bridge.pool, vendor_id)


@router.post("/{vendor_id}/keys", responses={404: {}})
async def rotate(vendor_id: str, bridge: Bridge) -> IssuedKey:
    """A new key (returned once); the vendor's earlier keys stop working at once."""
    async with _answers():
        return await rotate_key(bridge.pool, vendor_id)


@router.delete("/{vendor_id}/keys", responses={404: {}})
async def revoke(vendor_id: str, bridge: Bridge) -> Revoked:
    """Revoke every key of the vendor: each is a 401 from now on."""
    async with _answers():
        return Revoked(vendor_id=vendor_id, revoked_keys=await revoke_keys(bridge.pool, vendor_id))


@router.post("/{vendor_id}/page-link", responses={404: {}})
async def page_link(vendor_id: str, bridge: Bridge) -> PageLink:
    async with _answers():
        await get_vendor(bridge.pool, vendor_id)
    return PageLink(vendor_id=vendor_id, page_url=bridge.settings.portal_links().vendor_page(vendor_id))


async def onboarding(bridge: BridgeState, vendor_id: str) -> Onboarding:
    """The vendor's connected account and a fresh Stripe onboarding link; Stripe's refusal is a 502."""
    settings = bridge.settings
    if not settings.stripe_api_key:
        raise ApiError(503, "STRIPE_API_KEY is not set: no Connect account can be made", field="STRIPE_API_KEY")
    client = stripe_client(settings.stripe_api_key, settings.stripe_api_base)
    async with _answers():
        try:
            return await onboard_vendor(bridge.pool, client, settings.portal_links(), vendor_id)
        except stripe.StripeError as error:
            raise ApiError(502, f"Stripe refused: {error.user_message or error}", code="stripe_error") from error


@router.post("/{vendor_id}/onboard", responses={404: {}, 502: {}, 503: {}})
async def onboard(vendor_id: str, bridge: Bridge) -> Onboarding:
    """Make the vendor's Stripe Connect account (if they have none) and an onboarding link."""
    return await onboarding(bridge, vendor_id)
