"""CSRF protection of the portal's forms, stateless so any bridge behind a balancer can check it.

Scheme: each form carries `csrf = base64url(HMAC-SHA256(DEALFLOW_SECRET_KEY,
"dealflow-portal-form" NUL deal_id NUL link_token))`. The value is bound to one deal and one
signed link, so it dies with the link and cannot be carried to another deal; only the server
can mint it. On top of that a POST whose `Origin` header names another site is refused: a
browser always sends Origin on cross-site form posts, so a page elsewhere cannot post even
with a leaked link in hand. (Pages use `Referrer-Policy: same-origin`, so browsers send
their Origin to us but never the URL, which holds the token, to the pay page or artifacts.)

Each form also carries a random `nonce`, used as the Temporal update id: a double click (or a
resubmitted page) sends the same id, and Temporal runs that update once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from urllib.parse import urlsplit

_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def form_token(secret: str, deal_id: str, link_token: str) -> str:
    message = b"\0".join([b"dealflow-portal-form", deal_id.encode(), link_token.encode()])
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def form_token_valid(secret: str, deal_id: str, link_token: str, presented: str) -> bool:
    """Whether `presented` is this form's token; any string is an answer, never an error
    (compare_digest raises on non-ASCII str)."""
    return presented.isascii() and hmac.compare_digest(form_token(secret, deal_id, link_token), presented)


def new_nonce() -> str:
    return secrets.token_urlsafe(18)


def nonce_valid(nonce: str) -> bool:
    return bool(_NONCE.match(nonce))


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def origin_allowed(origin: str | None, allowed: set[str]) -> bool:
    """A foreign Origin is refused. A missing one (API clients) or `null` (browsers send it when
    a strict referrer policy hides the origin) tells nothing, and the CSRF token decides."""
    return origin is None or origin == "null" or origin.lower() in allowed
