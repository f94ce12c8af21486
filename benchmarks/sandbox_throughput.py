"""How fast the offline Stripe sandbox answers API requests as objects pile up, and how fast it
delivers webhooks.

    .venv/bin/python -m benchmarks.sandbox_throughput [--requests 300] [--objects 20000] \\
        [--events 500] [--receiver-ms 20]

Starts its own sandbox (state file and journal in a temporary directory, as `dealflow dev` keeps
them). It times creating and retrieving Checkout Sessions and PaymentIntents and listing events
over HTTP, one request at a time, with 10 objects in the sandbox; fills it to N objects; times
the same requests again. Then it makes E events at once in a fresh sandbox whose webhooks go to
a local receiver that takes R ms to answer, and measures how many it delivers per second with
the default number of deliveries in flight and with one at a time. Ratios compare figures of the
same run. It prints a line for people and one JSON line for comparing runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dealflow.serve import serve_app
from stripe_sandbox import SandboxConfig, create_app
from stripe_sandbox.engine import Sandbox

API_KEY = "sk_test_sandbox_benchmark"
SMALL = 10
SESSION = {
    "mode": "payment",
    "line_items": [
        {
            "quantity": 1,
            "price_data": {
                "currency": "usd",
                "unit_amount": 5000,
                "product_data": {"name": "Design"},
            },
        }
    ],
}
SESSION_FORM = {
    "mode": "payment",
    "line_items[0][quantity]": "1",
    "line_items[0][price_data][currency]": "usd",
    "line_items[0][price_data][unit_amount]": "5000",
    "line_items[0][price_data][product_data][name]": "Design",
}
INTENT = {"amount": 1000, "currency": "usd", "payment_method": "pm_card_visa", "confirm": True}
INTENT_FORM = {
    "amount": "1000",
    "currency": "usd",
    "payment_method": "pm_card_visa",
    "confirm": "true",
}
DEFAULT_CONCURRENCY = SandboxConfig.webhook_concurrency


def fill(app: Starlette, objects: int) -> None:
    """Add sessions and paid payment intents (each with its charge and event) through the
    engine until the sandbox holds `objects` objects, committing each as a request would."""
    sandbox: Sandbox = app.state.sandbox
    store = app.state.store
    while len(store.state.objects) < objects:
        with sandbox.request(None, None):
            if len(store.state.objects) % 2:
                sandbox.create_session(SESSION, public_url="http://sandbox.invalid")
            else:
                sandbox.create_payment_intent(dict(INTENT))
        store.commit()


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"p50": round(statistics.median(ordered) * 1000, 2), "p99": round(p99 * 1000, 2)}


async def timed(requests: int, call: Callable[[], Awaitable[httpx.Response]]) -> dict[str, float]:
    samples = []
    for _ in range(requests):
        started = time.perf_counter()
        response = await call()
        samples.append(time.perf_counter() - started)
        response.raise_for_status()
    return percentiles(samples)


async def latencies(http: httpx.AsyncClient, requests: int) -> dict[str, dict[str, float]]:
    """p50/p99 in ms of each kind of request, one request at a time."""
    sessions = [
        (await http.post("/v1/checkout/sessions", data=SESSION_FORM)).json()["id"]
        for _ in range(20)
    ]
    intents = [
        (await http.post("/v1/payment_intents", data=INTENT_FORM)).json()["id"] for _ in range(20)
    ]
    return {
        "retrieve_session": await timed(
            requests, lambda: http.get(f"/v1/checkout/sessions/{random.choice(sessions)}")
        ),
        "retrieve_intent": await timed(
            requests, lambda: http.get(f"/v1/payment_intents/{random.choice(intents)}")
        ),
        "list_events": await timed(requests, lambda: http.get("/v1/events", params={"limit": 10})),
        "create_session": await timed(
            requests, lambda: http.post("/v1/checkout/sessions", data=SESSION_FORM)
        ),
        "create_intent": await timed(
            requests, lambda: http.post("/v1/payment_intents", data=INTENT_FORM)
        ),
    }


async def api_figures(home: Path, requests: int, objects: int) -> dict[str, Any]:
    app = create_app(SandboxConfig(state_file=home / "api" / "sandbox.json", api_key=API_KEY))
    headers = {"Authorization": f"Bearer {API_KEY}"}
    figures = {}
    async with serve_app(app) as url:
        for held in (SMALL, objects):
            fill(app, held)
            # A connection per phase: the long fill may have let the last one time out.
            async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as http:
                figures[held] = await latencies(http, requests)
        at_end = len(app.state.store.state.objects)
    small, large = figures[SMALL], figures[objects]
    return {
        "objects": {"small": SMALL, "large": objects, "at_end": at_end},
        "latency_ms": {
            name: {
                "small": small[name],
                "large": large[name],
                "p50_ratio": round(large[name]["p50"] / small[name]["p50"], 2),
                "p99_ratio": round(large[name]["p99"] / small[name]["p99"], 2),
            }
            for name in small
        },
    }


class Receiver:
    """Acknowledges each delivery after `delay` seconds, counting distinct events."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.events: set[str] = set()
        self.finished = asyncio.Event()
        self.expected = 0

    async def handle(self, request: Request) -> Response:
        event_id = json.loads(await request.body())["id"]
        await asyncio.sleep(self.delay)
        self.events.add(event_id)
        if len(self.events) >= self.expected:
            self.finished.set()
        return Response(status_code=200)


async def delivery_rate(home: Path, events: int, receiver_ms: float, concurrency: int) -> float:
    """Events per second from making `events` events at once to the last acknowledgement."""
    receiver = Receiver(receiver_ms / 1000)
    receiver.expected = events
    receiver_app = Starlette(routes=[Route("/webhook", receiver.handle, methods=["POST"])])
    async with serve_app(receiver_app) as receiver_url:
        config = SandboxConfig(
            state_file=home / f"webhooks-{concurrency}" / "sandbox.json",
            webhook_url=f"{receiver_url}/webhook",
            webhook_concurrency=concurrency,
        )
        app = create_app(config)
        async with serve_app(app):
            sandbox: Sandbox = app.state.sandbox
            started = time.perf_counter()
            for _ in range(events):
                with sandbox.request(None, None):
                    session = sandbox.create_session(SESSION, public_url="http://sandbox.invalid")
                    sandbox.expire_session(session["id"])
                app.state.store.commit()
            await asyncio.wait_for(receiver.finished.wait(), timeout=600)
            seconds = time.perf_counter() - started
    return round(events / seconds, 1)


async def run(
    requests: int, objects: int, events: int, receiver_ms: float, home: Path
) -> dict[str, Any]:
    api = await api_figures(home, requests, objects)
    concurrent = await delivery_rate(home, events, receiver_ms, DEFAULT_CONCURRENCY)
    one_at_a_time = await delivery_rate(home, events, receiver_ms, 1)
    return {
        "benchmark": "sandbox_throughput",
        "requests": requests,
        **api,
        "webhooks": {
            "events": events,
            "receiver_ms": receiver_ms,
            "concurrency": DEFAULT_CONCURRENCY,
            "events_per_second": concurrent,
            "one_at_a_time_events_per_second": one_at_a_time,
            "speedup": round(concurrent / one_at_a_time, 2),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="timed requests of each kind")
    parser.add_argument("--objects", type=int, default=20_000, help="objects in the large run")
    parser.add_argument("--events", type=int, default=500, help="events for the webhook rate")
    parser.add_argument(
        "--receiver-ms", type=float, default=20.0, help="how long the receiver takes to answer"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sandbox-bench-") as home:
        result = asyncio.run(
            run(args.requests, args.objects, args.events, args.receiver_ms, Path(home))
        )
    latency = ", ".join(
        f"{name} {figures['small']['p50']}/{figures['small']['p99']} -> "
        f"{figures['large']['p50']}/{figures['large']['p99']} (p50 x{figures['p50_ratio']})"
        for name, figures in result["latency_ms"].items()
    )
    hooks = result["webhooks"]
    print(
        f"sandbox API p50/p99 ms with {SMALL} -> {result['objects']['large']} objects: {latency}; "
        f"webhooks ({hooks['events']} events, receiver {hooks['receiver_ms']} ms): "
        f"{hooks['events_per_second']}/s with {hooks['concurrency']} in flight, "
        f"{hooks['one_at_a_time_events_per_second']}/s one at a time (x{hooks['speedup']})"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
