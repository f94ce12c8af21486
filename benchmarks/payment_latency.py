"""How soon a payment shows: sandbox pay to funded, signed webhooks to funded, and the bridge's
answer to a webhook, at a given rate and as fast as it takes them.

    .venv/bin/python -m benchmarks.payment_latency [--deals 100] [--open-deals 200] [--rates 20 50]
        [--ingest-events 1000] [--concurrency 16] [--sources 8] [--quick] [--jsonl PATH]

Starts its own stack (`benchmarks.stack`); "funded" is the `deals` read model showing the
milestone's money collected (`benchmarks.readmodel`, one query for all watched deals every 50 ms).

(a) One deal alone, then N deals at once from start to completed (`benchmarks.driver`): the time
    from the sandbox answering the payment to the deal showing funded, with the sandbox's own
    webhook delivery to the bridge.
(b) For each rate: M deals signed and waiting for funding. Once each has made its own first
    check of Stripe (a minute after its payment link), every session is paid while the sandbox's
    webhooks go to a catcher (`benchmarks.webhooks`) instead of the bridge; then the events, as
    the sandbox made them and freshly signed, are POSTed to the bridge's webhook endpoint at that
    many events per second. The time from the first POST of a payment's events to the deal
    showing funded; the workflow confirms each payment by reading the sandbox, where it is real.
    A deal that showed funded before its first POST (its next check of Stripe got there first)
    is counted apart.
(c) The bridge's answer time to those POSTs; then copies of those events under new ids, POSTed
    as fast as the bridge takes them, C at a time from S source addresses (Stripe sends from
    several): the events per second accepted.

Goals (issue 11): pay to funded p99 <= 1 s with 100 deals in flight; webhook to funded p99 <= 1 s
at 50 events/s with 200 open deals; the bridge's answer p99 <= 50 ms.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from benchmarks.cpu import report_cpu_per
from benchmarks.driver import (
    STEP_TIMEOUT,
    Cast,
    DealRun,
    DealTimes,
    completed,
    deal_cast,
    deal_spec,
    drive_deals,
)
from benchmarks.figures import Report, benchmark_parser, count, run_in_home, size
from benchmarks.stack import STACK_PROCESSES, bench_stack
from benchmarks.webhooks import Delivery, WebhookCatcher, WebhookSender
from workflows.rules import FIRST_POLL

#: The events that report a Checkout Session paid by card (either funds the deal).
CARD_PAYMENT_FUNDED = frozenset({"checkout.session.completed", "payment_intent.succeeded"})
#: Sessions paid at once while the webhooks are held back.
PAYING_AT_ONCE = 8
#: The addresses the ingest test POSTs from, one per sender (Stripe sends from several).
SOURCE_ADDRESS = "127.0.2.{}"
#: Issue 11's goals: seconds to funded, and the bridge's answer, at the p99.
FUNDED_GOAL = 1.0
ANSWER_GOAL_MS = 50.0


def _pay_to_funded(times: list[DealTimes]) -> list[float]:
    return [m.at["funded"] - m.at["paid"] for t in times for m in t.milestones if "funded" in m.at]


async def pay_to_funded(cast: Cast, deals: int, report: Report) -> None:
    """(a) One deal alone, then `deals` at once, each paid through the sandbox."""
    alone = completed(await drive_deals(cast, "pay-alone", 1, 1, watch_funding=True), report)
    [seconds] = _pay_to_funded(alone)
    report.figure(
        "pay_to_funded_alone",
        round(seconds, 3),
        "s",
        {"deals": 1},
        human=f"(a) sandbox pay to funded, one deal alone: {seconds:.3f} s",
    )
    together = completed(
        await drive_deals(cast, "pay-in-flight", deals, 1, watch_funding=True), report
    )
    report.percentiles(
        "pay_to_funded",
        _pay_to_funded(together),
        "s",
        {"deals_in_flight": deals},
        label=f"(a) sandbox pay to funded, {deals} deals in flight",
        goal=FUNDED_GOAL,
    )


async def _sleep_until(moment: float) -> None:
    await asyncio.sleep(max(0.0, moment - time.monotonic()))


@dataclass(frozen=True)
class Payment:
    """A session paid with the webhooks held back: its events as the sandbox sent them, and a
    future of when the deal showed funded."""

    deal_id: str
    bodies: list[str]
    funded: asyncio.Future[float]


Result = TypeVar("Result")


def _succeeded(
    outcomes: list[tuple[Any, Result | BaseException]], failed: str, report: Report
) -> list[tuple[Any, Result]]:
    """The (item, result) pairs that got a result; the others are a problem of the run."""
    errors = [result for _, result in outcomes if isinstance(result, BaseException)]
    if errors:
        report.problem(f"{len(errors)} of {len(outcomes)} deals {failed}; the first: {errors[0]!r}")
    return [(item, result) for item, result in outcomes if not isinstance(result, BaseException)]


async def _open(run: DealRun) -> str:
    """Start and sign the deal; its first Checkout Session, once mailed."""
    await run.start_and_sign()
    return await run.payment_session(0)


async def _pay_holding_webhooks(
    cast: Cast, opened: list[tuple[DealRun, str]], report: Report
) -> list[Payment]:
    """Pay every session while the sandbox's webhooks go to a catcher, not the bridge."""
    bench, slots = cast.bench, asyncio.Semaphore(PAYING_AT_ONCE)

    async def pay(catcher: WebhookCatcher, run: DealRun, session: str) -> Payment:
        funded = cast.watch.collected(run.spec.deal_id, run.spec.milestones[0].amount)
        async with slots:
            await run.pay(0, session)
        bodies = await catcher.events_of(run.spec.deal_id, CARD_PAYMENT_FUNDED, STEP_TIMEOUT)
        return Payment(run.spec.deal_id, bodies, funded)

    async with WebhookCatcher().serving() as catcher:
        await cast.sandbox.set_webhook(catcher.url)
        try:
            paid = await asyncio.gather(
                *(pay(catcher, run, session) for run, session in opened), return_exceptions=True
            )
        finally:
            await cast.sandbox.set_webhook(f"{bench.stack.bridge_url}/webhooks/stripe")
    return [
        payment
        for _, payment in _succeeded(
            list(zip(opened, paid, strict=True)), "could not be paid", report
        )
    ]


async def _post_at(sender: WebhookSender, moment: float, body: str) -> Delivery:
    """POST at its moment, whether or not the bridge has answered the ones before."""
    await _sleep_until(moment)
    return await sender.post(body)


async def webhooks_at(cast: Cast, rate: int, open_deals: int, report: Report) -> list[str]:
    """(b), and (c)'s answer times, at one rate; returns the event bodies it sent."""
    bench = cast.bench
    runs = [
        DealRun(cast, deal_spec(f"hook{rate}-{n:04d}", 1, cast.vendor.fulfillment_url), n)
        for n in range(open_deals)
    ]
    sessions = await asyncio.gather(*(_open(run) for run in runs), return_exceptions=True)
    opened = _succeeded(list(zip(runs, sessions, strict=True)), "could not be signed", report)
    # Every deal looks at Stripe itself a minute after its link; paid and posted after that
    # look and before the next one, a deal is funded by its webhook.
    newest_link = max(run.times.milestones[0].at["link"] for run, _ in opened)
    await asyncio.sleep(max(0.0, newest_link + FIRST_POLL.total_seconds() + 2 - cast.now()))
    payments = await _pay_holding_webhooks(cast, opened, report)
    meter = bench.cpu_meter(*STACK_PROCESSES)
    meter.start()
    async with aclosing(WebhookSender(bench.stack.bridge_url, bench.webhook_secret)) as sender:
        start = time.monotonic() + 0.5
        turns = [(payment, body) for payment in payments for body in payment.bodies]
        deliveries = await asyncio.gather(
            *(_post_at(sender, start + n / rate, body) for n, (_, body) in enumerate(turns))
        )
    first_post = {}
    for (payment, _), delivery in zip(turns, deliveries, strict=True):
        first_post.setdefault(payment.deal_id, delivery.sent_at)
    funded = await asyncio.gather(
        *(asyncio.wait_for(payment.funded, STEP_TIMEOUT) for payment in payments),
        return_exceptions=True,
    )
    cpu = meter.stop()
    results = [
        (first_post[payment.deal_id], at)
        for payment, at in _succeeded(
            list(zip(payments, funded, strict=True)), "did not show funded", report
        )
    ]
    if refused := [d.status for d in deliveries if d.status != 200]:
        report.problem(
            f"the bridge refused {len(refused)} of {len(deliveries)} webhooks: HTTP {sorted(set(refused))}"
        )
    posted = [d.sent_at for d in deliveries]
    params = {
        "rate": rate,
        "achieved_rate": round((len(posted) - 1) / (max(posted) - min(posted)), 1),
        "open_deals": open_deals,
        "events": len(deliveries),
        # Deals whose own look at Stripe found the payment before its webhook came.
        "funded_before_first_post": sum(1 for posted_at, at in results if at < posted_at),
    }
    report.percentiles(
        "webhook_to_funded",
        [at - posted_at for posted_at, at in results if at >= posted_at],
        "s",
        params,
        label=f"(b) {rate} webhooks/s to the bridge ({params['achieved_rate']}/s sent), {open_deals} open deals, to funded",
        goal=FUNDED_GOAL,
    )
    report.percentiles(
        "webhook_answer",
        [d.seconds for d in deliveries],
        "ms",
        params,
        label=f"(c) the bridge's answer at {rate} webhooks/s",
        goal=ANSWER_GOAL_MS,
        scale=1000,
    )
    report_cpu_per(
        report,
        "webhook_cpu_seconds_per_payment",
        cpu,
        len(payments),
        params,
        "CPU s per payment, first POST to the last funded",
    )
    return [body for _, body in turns]


def _copies(bodies: list[str], number: int) -> list[str]:
    """`number` events like these, each under an id of its own (as Stripe's own duplicates come)."""
    copies = []
    for n, body in zip(range(number), itertools.cycle(bodies)):
        event = json.loads(body)
        event["id"] = f"evt_ingest{n:08d}"
        copies.append(json.dumps(event, indent=2))
    return copies


async def ingest(cast: Cast, bodies: list[str], sizes: dict[str, int], report: Report) -> None:
    """(c) POSTed as fast as the bridge takes them, `concurrency` at a time from `sources` addresses."""
    bench, concurrency, sources = cast.bench, sizes["concurrency"], sizes["sources"]
    waiting = _copies(bodies, sizes["ingest_events"])
    deliveries: list[Delivery] = []

    async def send_while_any(sender: WebhookSender) -> None:
        while waiting:
            deliveries.append(await sender.post(waiting.pop()))

    senders = [
        WebhookSender(
            bench.stack.bridge_url, bench.webhook_secret, source=SOURCE_ADDRESS.format(1 + n)
        )
        for n in range(sources)
    ]
    started = time.monotonic()
    await asyncio.gather(*(send_while_any(senders[n % sources]) for n in range(concurrency)))
    seconds = time.monotonic() - started
    for sender in senders:
        await sender.aclose()
    accepted = [d for d in deliveries if d.status == 200]
    statuses = sorted({d.status for d in deliveries} - {200})
    params = {
        "events": len(deliveries),
        "concurrency": concurrency,
        "sources": sources,
        "seconds": round(seconds, 2),
        "refused": {
            str(status): sum(d.status == status for d in deliveries) for status in statuses
        },
    }
    rate = len(accepted) / seconds
    report.figure(
        "ingest_events_per_second",
        round(rate, 1),
        "events/s",
        params,
        human=f"(c) as fast as it takes them ({concurrency} at a time from {sources} addresses): "
        f"{len(accepted)} of {len(deliveries)} accepted in {seconds:.1f} s = {rate:.0f} events/s; "
        f"refused: {params['refused'] or 'none'}",
    )
    report.percentiles(
        "ingest_answer",
        [d.seconds for d in accepted],
        "ms",
        params,
        label="    its answer",
        scale=1000,
    )


async def run(sizes: dict[str, int], rates: list[int], home: Path, report: Report) -> None:
    async with bench_stack(home) as bench, deal_cast(bench) as cast:
        await pay_to_funded(cast, sizes["deals"], report)
        bodies: list[str] = []
        for rate in rates:
            bodies += await webhooks_at(cast, rate, sizes["open_deals"], report)
        await ingest(cast, bodies, sizes, report)


def main() -> None:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--deals", type=count, help="(a) deals in flight (default 100; --quick 5)")
    parser.add_argument(
        "--open-deals",
        type=count,
        help="(b) deals waiting for funding per rate (default 200; --quick 10)",
    )
    parser.add_argument(
        "--rates", type=count, nargs="+", help="(b) webhooks POSTed per second (default: 20 50)"
    )
    parser.add_argument(
        "--ingest-events",
        type=count,
        help="(c) events POSTed as fast as possible (default 1000; --quick 50)",
    )
    parser.add_argument(
        "--concurrency", type=count, default=16, help="(c) POSTs at a time (default 16)"
    )
    parser.add_argument(
        "--sources",
        type=count,
        default=8,
        choices=range(1, 251),
        metavar="S",
        help="(c) source addresses (default 8)",
    )
    args = parser.parse_args()
    sizes = {
        "deals": size(args.deals, full=100, quick=5, is_quick=args.quick),
        "open_deals": size(args.open_deals, full=200, quick=10, is_quick=args.quick),
        "ingest_events": size(args.ingest_events, full=1000, quick=50, is_quick=args.quick),
        "concurrency": args.concurrency,
        "sources": args.sources,
    }
    report = Report("payment_latency", args.jsonl)
    run_in_home(
        args.home, "payment-bench-", lambda home: run(sizes, args.rates or [20, 50], home, report)
    )
    raise SystemExit(report.exit_code)


if __name__ == "__main__":
    main()
