"""Payment schedules: a spec may give the deal's `total` and a `schedule` instead of each
milestone's amount. Each schedule entry is a milestone with a `percent` or a fixed `amount` in
place of its amount; this compiles it into plain milestones before anything else sees the spec.

Fixed amounts come off the total first; the percentages (summing to 100 exactly, at most two
decimals) split what is left by the largest-remainder method: each entry gets its share rounded
down to the minor unit, and the units left over go one each to the largest remainders (the
earlier entry on a tie), so the amounts always add up to the total exactly. Due dates (and
`due_in_days`) must not go backwards.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from dealflow.models import MAX_MILESTONE_AMOUNT, MAX_MILESTONES
from dealflow.money import format_money

_FULL = 10_000  # basis points in 100 %


def is_scheduled(data: Mapping[str, Any]) -> bool:
    """Whether a spec gives a total and a schedule (rather than milestones)."""
    return "schedule" in data or "total" in data


def split_largest_remainder(amount: int, weights: Sequence[int]) -> list[int]:
    """`amount` minor units split in proportion to `weights` (summing to more than zero), each
    share rounded down and the units left over given to the largest remainders, earliest first."""
    whole = sum(weights)
    shares = [amount * weight // whole for weight in weights]
    remainders = [amount * weight % whole for weight in weights]
    left = amount - sum(shares)
    for index in sorted(range(len(weights)), key=lambda i: (-remainders[i], i))[:left]:
        shares[index] += 1
    return shares


def percent_bps(value: object) -> int:
    """A percentage as written (`25`, `33.33`, `"12.5"`) in basis points; ValueError if it is
    not a number above 0 and at most 100 with at most two decimals."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        # ValueError, as for every other bad percentage: the caller reports it by field.
        raise ValueError("must be a number of percent, like 25 or 33.33")  # noqa: TRY004
    try:
        bps = Decimal(str(value)) * 100
    except InvalidOperation as error:
        raise ValueError("must be a number of percent, like 25 or 33.33") from error
    if bps != bps.to_integral_value():
        raise ValueError("at most two decimals (33.33, not 33.333)")
    if not 0 < bps <= _FULL:
        raise ValueError("must be above 0 and at most 100")
    return int(bps)


def _amount_problem(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return "must be an integer number of minor units (cents)"
    if not 0 < value <= MAX_MILESTONE_AMOUNT * MAX_MILESTONES:
        return f"must be above 0 and at most {MAX_MILESTONE_AMOUNT * MAX_MILESTONES}"
    return None


def compile_schedule(data: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The spec with its `total` and `schedule` turned into `milestones`, and every problem
    found on the way ('schedule[1].percent: ...'); the spec is only usable without problems."""
    problems: list[str] = []
    spec = {k: v for k, v in data.items() if k not in ("total", "schedule")}
    if "milestones" in data:
        problems.append("milestones: give either milestones or a total and a schedule, not both")
    total = data.get("total")
    if "total" not in data:
        problems.append("total: a schedule needs the deal's total (minor units)")
    elif problem := _amount_problem(total):
        problems.append(f"total: {problem}")
    entries = data.get("schedule")
    if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_MILESTONES:
        problems.append(f"schedule: must be a list of 1 to {MAX_MILESTONES} entries")
        return spec, problems
    if not all(isinstance(entry, dict) for entry in entries):
        problems.append("schedule: each entry must be a mapping (key, title, percent or amount)")
        return spec, problems
    fixed, percents = _parts(entries, problems)
    problems.extend(_order_problems(entries))
    if problems:
        return spec, problems
    assert isinstance(total, int)
    amounts = _amounts(total, fixed, percents, str(data.get("currency", "")), problems)
    if problems:
        return spec, problems
    spec["milestones"] = [
        {**{k: v for k, v in entry.items() if k not in ("percent", "amount")}, "amount": amount}
        for entry, amount in zip(entries, amounts, strict=True)
    ]
    return spec, problems


def _parts(
    entries: list[dict[str, Any]], problems: list[str]
) -> tuple[dict[int, int], dict[int, int]]:
    """Each entry's fixed amount or percentage (in basis points), by position."""
    fixed: dict[int, int] = {}
    percents: dict[int, int] = {}
    for index, entry in enumerate(entries):
        where = f"schedule[{index}]"
        if ("percent" in entry) == ("amount" in entry):
            problems.append(f"{where}: give exactly one of 'percent' and 'amount'")
        elif "amount" in entry:
            if problem := _amount_problem(entry["amount"]):
                problems.append(f"{where}.amount: {problem}")
            else:
                fixed[index] = entry["amount"]
        else:
            try:
                percents[index] = percent_bps(entry["percent"])
            except ValueError as error:
                problems.append(f"{where}.percent: {error}")
    if percents and sum(percents.values()) != _FULL and len(percents) + len(fixed) == len(entries):
        problems.append(
            f"schedule: the percentages add up to {Decimal(sum(percents.values())) / 100} %, "
            "not 100 % exactly"
        )
    return fixed, percents


def _amounts(
    total: int, fixed: dict[int, int], percents: dict[int, int], currency: str, problems: list[str]
) -> list[int]:
    def money(amount: int) -> str:
        return format_money(amount, currency) if currency else str(amount)

    rest = total - sum(fixed.values())
    if not percents and rest != 0:
        problems.append(
            f"schedule: the amounts add up to {money(sum(fixed.values()))}, the total is {money(total)}"
        )
    elif percents and rest <= 0:
        problems.append(
            f"schedule: the fixed amounts ({money(sum(fixed.values()))}) leave nothing of the "
            f"total ({money(total)}) for the percentages"
        )
    if problems:
        return []
    order = sorted(percents)
    shares = dict(zip(order, split_largest_remainder(rest, [percents[i] for i in order]), strict=True))
    amounts = [fixed.get(index, shares.get(index, 0)) for index in range(len(fixed) + len(percents))]
    for index, amount in enumerate(amounts):
        if amount == 0:
            problems.append(
                f"schedule[{index}].percent: {Decimal(percents[index]) / 100} % of {money(rest)} "
                f"is less than {money(1)}"
            )
        elif amount > MAX_MILESTONE_AMOUNT:
            problems.append(
                f"schedule[{index}]: {money(amount)} is more than one milestone may be "
                f"({money(MAX_MILESTONE_AMOUNT)}); split it"
            )
    return amounts


def _order_problems(entries: list[dict[str, Any]]) -> list[str]:
    """Due dates and days after signing that go backwards, each named by the later entry."""
    problems: list[str] = []
    for field in ("due", "due_in_days"):
        previous: tuple[int, Any] | None = None
        for index, entry in enumerate(entries):
            value = _comparable(field, entry.get(field))
            if value is None:
                continue
            if previous is not None and value < previous[1]:
                problems.append(
                    f"schedule[{index}].{field}: {entry[field]} comes before "
                    f"schedule[{previous[0]}].{field} ({entries[previous[0]][field]}); "
                    "the schedule must be in order"
                )
            previous = (index, value)
    return problems


def _comparable(field: str, value: object) -> date | int | None:
    """A due date or a number of days, or None where it is absent or for DealSpec to refuse."""
    if field == "due_in_days":
        return value if isinstance(value, int) and not isinstance(value, bool) else None
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None
