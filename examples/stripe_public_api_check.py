"""Check a Stripe endpoint using nothing but Stripe's public API and the hosted checkout page.

It creates a Checkout Session, pays it with 4242 4242 4242 4242 on the page at `session.url`,
receives the signed `checkout.session.completed` webhook on a local endpoint and verifies it with
`stripe.Webhook.construct_event`, replays the same Idempotency-Key (same session back) and misuses
it with other parameters (an idempotency error). It knows nothing of dealflow or its sandbox, so
it shows the sandbox speaks Stripe:

    dealflow sandbox --webhook-url http://127.0.0.1:4343/webhook --webhook-secret whsec_...
    python examples/stripe_public_api_check.py --api-base http://127.0.0.1:12111 \
        --api-key sk_test_... --webhook-secret whsec_... --listen-port 4343   (the key it printed)

Arguments default to STRIPE_API_BASE, STRIPE_API_KEY and STRIPE_WEBHOOK_SECRET. Exit code 0 when
every check passed. (Against real Stripe the card step needs a browser, and Stripe must be able to
reach the webhook endpoint, so the check stops there.)
"""

from __future__ import annotations

import argparse
import html
import os
import queue
import re
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import stripe

_FORM_ACTION = re.compile(r"<form[^>]*\baction=\"([^\"]+)\"", re.IGNORECASE)


class CheckFailed(RuntimeError):
    pass


def check(condition: bool, what: str) -> None:
    if not condition:
        raise CheckFailed(what)
    print(f"ok    {what}", flush=True)


def start_webhook_endpoint(port: int, secret: str) -> tuple[ThreadingHTTPServer, queue.Queue]:
    """A local endpoint that keeps only events whose Stripe-Signature verifies."""
    verified: queue.Queue = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            payload = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            try:
                event = stripe.Webhook.construct_event(
                    payload, self.headers.get("Stripe-Signature"), secret
                )
            except (ValueError, stripe.SignatureVerificationError) as error:
                print(f"warn  rejected a webhook: {error}", flush=True)
                self.send_response(400)
                self.end_headers()
                return
            verified.put(event)
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, verified


def session_params(amount: int) -> dict:
    return {
        "mode": "payment",
        "line_items": [
            {
                "quantity": 1,
                "price_data": {
                    "currency": "usd",
                    "unit_amount": amount,
                    "product_data": {"name": "Check"},
                },
            }
        ],
        "success_url": "https://example.com/success?session_id={CHECKOUT_SESSION_ID}",
        "cancel_url": "https://example.com/cancel",
        "metadata": {"check": "stripe_public_api_check"},
    }


def pay_on_hosted_page(url: str, card: str) -> int:
    """Fill and submit the card form of the hosted checkout page, as a customer's browser would."""
    with urllib.request.urlopen(url, timeout=10) as response:
        page = response.read().decode()
    match = _FORM_ACTION.search(page)
    if match is None:
        raise CheckFailed(f"no card form on {url} (real Stripe's page needs a browser)")
    action = urllib.parse.urljoin(url, html.unescape(match.group(1)))
    form = {
        "cardNumber": card,
        "cardExpiry": "12 / 34",
        "cardCvc": "123",
        "billingName": "Check Script",
    }
    request = urllib.request.Request(
        action, data=urllib.parse.urlencode(form).encode(), method="POST"
    )

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    try:
        with urllib.request.build_opener(NoRedirect).open(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def wait_for_event(
    events: queue.Queue, session_id: str, event_type: str, timeout: float
) -> stripe.Event:
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            event = events.get(timeout=left)
        except queue.Empty:
            break
        if event.type == event_type and event.data.object.id == session_id:
            return event
    raise CheckFailed(f"no verified {event_type} webhook for {session_id} within {timeout:.0f}s")


def run(args: argparse.Namespace) -> None:
    base = {"api": args.api_base} if args.api_base else None
    client = stripe.StripeClient(args.api_key, base_addresses=base, max_network_retries=2)
    server, events = start_webhook_endpoint(args.listen_port, args.webhook_secret)
    try:
        key = f"public-api-check-{uuid.uuid4()}"
        session = client.v1.checkout.sessions.create(session_params(4200), {"idempotency_key": key})
        check(
            session.id.startswith("cs_test_") and session.status == "open", f"created {session.id}"
        )
        check(session.livemode is False, "livemode is false")

        replay = client.v1.checkout.sessions.create(session_params(4200), {"idempotency_key": key})
        check(
            replay.id == session.id, "same Idempotency-Key and parameters: the same session again"
        )
        try:
            client.v1.checkout.sessions.create(session_params(4300), {"idempotency_key": key})
        except stripe.IdempotencyError as error:
            check(
                error.http_status == 400,
                "same Idempotency-Key, other parameters: idempotency_error",
            )
        else:
            raise CheckFailed("reusing an Idempotency-Key with other parameters was accepted")

        status = pay_on_hosted_page(session.url, "4242 4242 4242 4242")
        check(
            status == 303,
            f"paid with 4242 4242 4242 4242 on {session.url} (redirected to success_url)",
        )

        event = wait_for_event(events, session.id, "checkout.session.completed", args.timeout)
        check(
            event.data.object.payment_status == "paid",
            f"verified webhook {event.id} ({event.type})",
        )

        paid = client.v1.checkout.sessions.retrieve(session.id)
        check(
            (paid.status, paid.payment_status) == ("complete", "paid"),
            "the session reads complete and paid",
        )
    finally:
        server.shutdown()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--api-base", default=os.environ.get("STRIPE_API_BASE"), help="Stripe's base URL"
    )
    parser.add_argument(
        "--api-key", default=os.environ.get("STRIPE_API_KEY"), help="a test secret key"
    )
    parser.add_argument("--webhook-secret", default=os.environ.get("STRIPE_WEBHOOK_SECRET"))
    parser.add_argument(
        "--listen-port", type=int, default=4343, help="port of the local webhook endpoint"
    )
    parser.add_argument(
        "--timeout", type=float, default=15.0, help="seconds to wait for the webhook"
    )
    args = parser.parse_args()
    missing = [name for name in ("api_key", "webhook_secret") if not getattr(args, name)]
    if missing:
        parser.error("missing " + ", ".join("--" + name.replace("_", "-") for name in missing))
    try:
        run(args)
    except (CheckFailed, stripe.StripeError) as error:
        print(f"FAIL  {error}", flush=True)
        return 1
    print("all checks passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
