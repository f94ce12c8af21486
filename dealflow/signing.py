"""The `X-Dealflow-Signature` header on work orders POSTed to vendors, and how a vendor checks it.

    X-Dealflow-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">

The key is the shared delivery secret (DEALFLOW_DELIVERY_SECRET). A vendor verifies by:
1. reading the RAW request body (bytes as received, never re-serialised JSON);
2. splitting the header on ',' into `t` and one or more `v1` values (several during a key rotation);
3. computing HMAC-SHA256(secret, f"{t}.".encode() + body) as lower-case hex and comparing it in
   constant time with each `v1`;
4. refusing timestamps more than a few minutes from its clock either way, so a captured request
   cannot be replayed later. The `Idempotency-Key` header then deduplicates honest retries.

`verify_signature` does exactly that; Python vendors can import it.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

SIGNATURE_HEADER = "X-Dealflow-Signature"
DEFAULT_TOLERANCE = timedelta(minutes=5)


class InvalidSignature(ValueError):
    """The header is missing parts, the timestamp is out of tolerance, or no signature matches."""


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, *, timestamp: int) -> str:
    """The header value for `body` signed at `timestamp` (unix seconds)."""
    return f"t={timestamp},v1={_digest(secret, timestamp, body)}"


def verify_signature(
    secret: str,
    header: str,
    body: bytes,
    tolerance: timedelta = DEFAULT_TOLERANCE,
    *,
    now: datetime | None = None,
) -> datetime:
    """Return the signing time if `header` signs `body` with `secret`; raise InvalidSignature."""
    timestamps: list[str] = []
    signatures: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t":
            timestamps.append(value)
        elif name == "v1":
            signatures.append(value)
    if len(timestamps) != 1 or not timestamps[0].isdigit() or not signatures:
        raise InvalidSignature("signature header must be 't=<unix seconds>,v1=<hex>'")
    timestamp = int(timestamps[0])
    signed_at = datetime.fromtimestamp(timestamp, UTC)
    if abs((now or datetime.now(UTC)) - signed_at) > tolerance:
        raise InvalidSignature(
            f"signature timestamp {timestamp} is outside the {tolerance} tolerance"
        )
    expected = _digest(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, candidate) for candidate in signatures):
        raise InvalidSignature("no signature matches the body")
    return signed_at
