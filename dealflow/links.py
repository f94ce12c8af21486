"""Signed, expiring, per-deal portal links: the client's only key to their deal.

A token is `base64url(json{deal, exp}).base64url(hmac_sha256)`; it names one deal and an expiry,
and verification compares in constant time. It reveals nothing a holder could not see anyway.
A vendor's link (to countersign the SOW) also names its party, `{deal, exp, party: "vendor"}`;
a token without a party is the client's, as every link made before vendors had one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import get_args
from urllib.parse import quote

from dealflow.signers import Signer


class InvalidLink(ValueError):
    """The token was tampered with, is for another deal, or has expired."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, payload: str) -> str:
    return _b64(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest())


def make_token(secret: str, deal_id: str, expires_at: datetime, *, party: Signer = "client") -> str:
    claims: dict[str, object] = {"deal": deal_id, "exp": int(expires_at.timestamp())}
    if party != "client":
        claims["party"] = party
    payload = _b64(json.dumps(claims).encode())
    return f"{payload}.{_mac(secret, payload)}"


@dataclass(frozen=True)
class PortalLink:
    """What a valid token says: until when it opens the deal, and for which party."""

    expires_at: datetime
    party: Signer


def verify_token(secret: str, deal_id: str, token: str, *, now: datetime | None = None) -> datetime:
    """Return the token's expiry if it is valid for `deal_id`; raise InvalidLink otherwise.

    Any string may arrive here (a query parameter, a cookie): none raises anything else."""
    return verify_link(secret, deal_id, token, now=now).expires_at


def verify_link(secret: str, deal_id: str, token: str, *, now: datetime | None = None) -> PortalLink:
    """The expiry and party of a token valid for `deal_id`; raise InvalidLink otherwise."""
    payload, _, mac = token.partition(".")
    # compare_digest refuses non-ASCII str with a TypeError; a token of ours is ASCII.
    if not token.isascii() or not payload or not mac or not hmac.compare_digest(mac, _mac(secret, payload)):
        raise InvalidLink("this link is not valid: it was altered or cut short")
    try:
        claims = json.loads(_unb64(payload))
        expires_at = datetime.fromtimestamp(int(claims["exp"]), UTC)
        token_deal = str(claims["deal"])
        party = claims.get("party", "client")
    # OverflowError and OSError: an expiry no datetime can hold.
    except (ValueError, KeyError, TypeError, AttributeError, OverflowError, OSError) as error:
        raise InvalidLink("this link is not valid") from error
    if token_deal != deal_id:  # deal ids are not secrets: no need for a constant-time compare
        raise InvalidLink("this link is for another deal")
    if party not in get_args(Signer):
        raise InvalidLink("this link is not valid")
    if (now or datetime.now(UTC)) >= expires_at:
        raise InvalidLink("this link has expired; use the link in your latest email")
    return PortalLink(expires_at=expires_at, party=party)


def portal_url(
    public_url: str,
    secret: str,
    deal_id: str,
    *,
    days: int,
    now: datetime | None = None,
    party: Signer = "client",
) -> str:
    """A party's portal link for a deal (the client's unless said), valid for `days`."""
    expires_at = (now or datetime.now(UTC)) + timedelta(days=days)
    token = make_token(secret, deal_id, expires_at, party=party)
    return f"{public_url.rstrip('/')}/portal/{quote(deal_id)}?token={token}"


@dataclass(frozen=True)
class PortalLinks:
    """How the client's portal links are made: where the portal is, the key that signs them, and
    how long one lives. Mails and Stripe's return URLs both carry one."""

    public_url: str
    secret_key: str
    days: int

    def url(self, deal_id: str, *, now: datetime | None = None, party: Signer = "client") -> str:
        return portal_url(
            self.public_url, self.secret_key, deal_id, days=self.days, now=now, party=party
        )

    def vendor_page(self, vendor_id: str, *, page: str = "", now: datetime | None = None) -> str:
        return vendor_page_url(self.public_url, self.secret_key, vendor_id, days=self.days, page=page, now=now)


def _vendor_page_key(secret: str) -> str:
    """A key of its own for vendor pages: a vendor page token is never a deal's portal token."""
    return hmac.new(secret.encode(), b"dealflow vendor page", hashlib.sha256).hexdigest()


def vendor_page_url(
    public_url: str, secret: str, vendor_id: str, *, days: int, page: str = "", now: datetime | None = None
) -> str:
    """The vendor's page (their deals, what is due, their payouts), or one of its `page`s
    (`/onboarding`), valid for `days`."""
    expires_at = (now or datetime.now(UTC)) + timedelta(days=days)
    token = make_token(_vendor_page_key(secret), vendor_id, expires_at)
    return f"{public_url.rstrip('/')}/vendor/{quote(vendor_id)}{page}?token={token}"


def verify_vendor_page_token(secret: str, vendor_id: str, token: str, *, now: datetime | None = None) -> datetime:
    """As `verify_token`, for a vendor page link."""
    return verify_token(_vendor_page_key(secret), vendor_id, token, now=now)
