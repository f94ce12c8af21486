"""How the simulated people talk to servers: patiently, and saying what went wrong when a step fails."""

from __future__ import annotations

import asyncio

import httpx

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
