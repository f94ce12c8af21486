"""The lookups the engine needs without scanning every object: each kind's objects in creation
order (for list pages and cursors), the session of a payment intent, customers by email, what
falls due at a time (open sessions, card authorizations, bank debits, pending funds), and money sums.
`Indexes.add` keeps them in step with an object each time the store is given it, so a request
costs the same with 10 or 100,000 objects.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]

#: Card money reaches the available balance two days after the charge, as on Stripe's standard
#: payout schedule; until then a transfer must name the charge as its `source_transaction`.
PENDING_SECONDS = 2 * 86_400
#: Money log kinds and what they do to the connected account they name (`destination`): a
#: transfer credits it, a reversal takes money back, a payout leaves it for the vendor's bank.
ACCOUNT_EFFECT = {"transfer": 1, "transfer_reversal": -1, "account_payout": -1}
#: Money log kinds whose money is pending before it is available, and their sign: a charge's
#: Stripe fee comes off its pending money.
PENDING_EFFECT = {"charge": 1, "capture": 1, "stripe_fee": -1}


def in_range(value: int, bounds: dict[str, int] | None) -> bool:
    """Whether `value` satisfies Stripe's range filter (`created[gte]=...`)."""
    if not bounds:
        return True
    checks = {
        "eq": value == bounds.get("eq", value),
        "gt": value > bounds.get("gt", value - 1),
        "gte": value >= bounds.get("gte", value),
        "lt": value < bounds.get("lt", value + 1),
        "lte": value <= bounds.get("lte", value),
    }
    return all(checks.values())


class Timeline:
    """One kind's ids in creation order, with positions and a sorted `created` column, so a
    page starts at a cursor in O(1) and at a time in O(log n).

    The column holds the running maximum of `created`, so it stays sorted even if the wall clock
    steps back (the sandbox clock only moves forward); each object's own `created` is checked
    again when it is listed, and one made during such a step may be left out of a window that
    ends before its predecessors' time.
    """

    def __init__(self) -> None:
        self._ids: list[str] = []
        self._created: list[int] = []
        self._positions: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._ids)

    def append(self, object_id: str, created: int) -> None:
        if object_id in self._positions:
            return
        self._positions[object_id] = len(self._ids)
        self._ids.append(object_id)
        self._created.append(max(created, self._created[-1]) if self._created else created)

    def position(self, object_id: str) -> int | None:
        return self._positions.get(object_id)

    def id_at(self, position: int) -> str:
        return self._ids[position]

    def span(self, bounds: dict[str, int] | None) -> range:
        """The positions whose `created` can satisfy `bounds`."""
        start, stop = 0, len(self._ids)
        for name, value in (bounds or {}).items():
            if name in ("gte", "eq"):
                start = max(start, bisect_left(self._created, value))
            if name == "gt":
                start = max(start, bisect_right(self._created, value))
            if name in ("lte", "eq"):
                stop = min(stop, bisect_right(self._created, value))
            if name == "lt":
                stop = min(stop, bisect_left(self._created, value))
        return range(start, max(start, stop))


@dataclass(frozen=True)
class Listing:
    """The objects of a timeline span that match a filter, read lazily from a cursor: a page
    costs about its own length, not the number of objects."""

    objects: Mapping[str, Obj]
    timeline: Timeline
    span: range
    matches: Callable[[Obj], bool]

    @classmethod
    def of(
        cls,
        objects: Mapping[str, Obj],
        timeline: Timeline,
        matches: Callable[[Obj], bool],
        created: dict[str, int] | None = None,
    ) -> Listing:
        return cls(
            objects,
            timeline,
            timeline.span(created),
            lambda obj: in_range(obj["created"], created) and matches(obj),
        )

    def narrowed_to(self, object_id: str | None) -> Listing:
        """Only `object_id` (none at all for None), as an index already found it."""
        position = None if object_id is None else self.timeline.position(object_id)
        if position is None or position not in self.span:
            return Listing(self.objects, self.timeline, range(0), self.matches)
        return Listing(self.objects, self.timeline, range(position, position + 1), self.matches)

    def knows(self, object_id: str) -> bool:
        return self.timeline.position(object_id) is not None

    def older_than(self, cursor: str | None) -> Iterator[Obj]:
        """Newest first, starting just before `cursor` (one it `knows`), or at the newest."""
        stop = self.span.stop
        if cursor is not None:
            stop = min(stop, self._position(cursor))
        return self._read(range(stop - 1, self.span.start - 1, -1))

    def newer_than(self, cursor: str) -> Iterator[Obj]:
        """Oldest first, starting just after `cursor` (one it `knows`)."""
        return self._read(range(max(self.span.start, self._position(cursor) + 1), self.span.stop))

    def _position(self, cursor: str) -> int:
        position = self.timeline.position(cursor)
        assert position is not None, "a cursor the listing knows"
        return position

    def _read(self, positions: range) -> Iterator[Obj]:
        for position in positions:
            obj = self.objects[self.timeline.id_at(position)]
            if self.matches(obj):
                yield obj


class Deadlines:
    """Ids with a time they fall due; `pop_due` hands out the ones whose time has come, so a
    sweep touches only what is due. A newer `set` replaces an id's time; None forgets it."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, str]] = []
        self._due: dict[str, int] = {}

    def set(self, object_id: str, due: int | None) -> None:
        if due is None:
            self._due.pop(object_id, None)
        elif self._due.get(object_id) != due:
            self._due[object_id] = due
            heapq.heappush(self._heap, (due, object_id))

    def pop_due(self, now: int) -> list[str]:
        found = []
        while self._heap and self._heap[0][0] <= now:
            due, object_id = heapq.heappop(self._heap)
            if self._due.get(object_id) == due:
                del self._due[object_id]
                found.append(object_id)
        return found


class Indexes:
    def __init__(self) -> None:
        self.timelines: defaultdict[str, Timeline] = defaultdict(Timeline)
        self.session_by_intent: dict[str, str] = {}
        #: Customers by their exact email, in creation order (`GET /v1/customers?email=`).
        self.customers_by_email: defaultdict[str, Timeline] = defaultdict(Timeline)
        #: Refunds by payment intent, transfers by `transfer_group` and reversals by transfer, each
        #: in creation order (their list endpoints' filters).
        self.refunds_by_intent: defaultdict[str, Timeline] = defaultdict(Timeline)
        self.transfers_by_group: defaultdict[str, Timeline] = defaultdict(Timeline)
        self.reversals_by_transfer: defaultdict[str, Timeline] = defaultdict(Timeline)
        #: Open Checkout Sessions by `expires_at`.
        self.open_sessions = Deadlines()
        #: Payment intents holding an authorization, by when it was authorized.
        self.authorizations = Deadlines()
        #: Payment intents whose bank debit is processing, by when it settles by itself.
        self.debits = Deadlines()
        #: Balance transactions whose funds are pending, by `available_on`.
        self.pending_funds = Deadlines()
        #: Money log sums by (currency, kind).
        self.money_totals: Counter[tuple[str, str]] = Counter()
        #: Card money not yet available, oldest first: (available_on, currency, amount).
        self._pending: deque[tuple[int, str, int]] = deque()
        self._pending_totals: Counter[str] = Counter()
        #: What each connected account holds of the money it was sent, by (account, currency).
        self.account_balances: Counter[tuple[str, str]] = Counter()

    def add(self, obj: Obj) -> None:
        """Bring every index in step with `obj`, new or changed."""
        kind, object_id = obj["object"], obj["id"]
        self.timelines[kind].append(object_id, obj["created"])
        if kind == "checkout.session":
            self.open_sessions.set(
                object_id, obj["expires_at"] if obj["status"] == "open" else None
            )
            if obj["payment_intent"]:
                self.session_by_intent[obj["payment_intent"]] = object_id
        elif kind == "payment_intent":
            held = obj["status"] == "requires_capture"
            self.authorizations.set(object_id, obj["_authorized_at"] if held else None)
            processing = obj["status"] == "processing"
            self.debits.set(object_id, obj.get("_debit_due") if processing else None)
        elif kind == "customer" and obj["email"]:
            self.customers_by_email[obj["email"]].append(object_id, obj["created"])
        elif kind == "refund" and obj.get("payment_intent"):
            self.refunds_by_intent[obj["payment_intent"]].append(object_id, obj["created"])
        elif kind == "transfer" and obj.get("transfer_group"):
            self.transfers_by_group[obj["transfer_group"]].append(object_id, obj["created"])
        elif kind == "transfer_reversal" and obj.get("transfer"):
            self.reversals_by_transfer[obj["transfer"]].append(object_id, obj["created"])
        elif kind == "balance_transaction":
            pending = obj["status"] == "pending"
            self.pending_funds.set(object_id, obj["available_on"] if pending else None)

    def add_money(self, entry: Obj) -> None:
        self.money_totals[entry["currency"], entry["kind"]] += entry["amount"]
        if entry["kind"] in ACCOUNT_EFFECT and entry.get("destination"):
            account = entry["destination"], entry["currency"]
            self.account_balances[account] += ACCOUNT_EFFECT[entry["kind"]] * entry["amount"]
        if entry["kind"] in PENDING_EFFECT:
            available_on = entry["created"] + PENDING_SECONDS
            amount = PENDING_EFFECT[entry["kind"]] * entry["amount"]
            self._pending.append((available_on, entry["currency"], amount))
            self._pending_totals[entry["currency"]] += amount

    def pending(self, currency: str, now: int) -> int:
        """Card money of `currency` that is not available yet at `now`."""
        while self._pending and self._pending[0][0] <= now:
            _, settled_currency, amount = self._pending.popleft()
            self._pending_totals[settled_currency] -= amount
        return self._pending_totals[currency]
