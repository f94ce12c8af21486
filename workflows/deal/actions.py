"""Human actions: each comes both as a signal (operators in the Temporal UI or CLI, external
senders) and as an update with a validator (the portal and the APIs, so the person gets an
answer and a double click is deduplicated by update id), and both take one path.

`action_handlers` writes the three handlers of each action in the contract's table, so a new action
is a line in `dealflow.contract.ACTIONS` and a row in the workflow's table of `Action`s, not
three more methods. An update that is not valid now is refused by its validator with the
reason; an invalid signal is only recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from dealflow.contract import ACTIONS, CANCEL_DEAL, EventKind
    from dealflow.messages import ActionResult, OperatorAction
    from dealflow.text_rules import first_text_problem
    from workflows import rules
    from workflows.deal.context import DealContext
    from workflows.journal import Source

#: Actions whose update answers only once the deal has ended (its compensations ran).
ANSWERED_AT_THE_END = frozenset({CANCEL_DEAL})


@dataclass(frozen=True)
class Action:
    """One human action: who performs it, why it is refused now (or None), and what it does."""

    source: Callable[[Any], Source]
    refusal: Callable[[Any], str | None]
    apply: Callable[[Any], str]
    #: Taken while the deal winds down too (what the wind-down itself waits for).
    while_stopping: bool = False
    #: A check of the handler, after the validator passed: why the action is refused, in a way
    #: that counts (a wrong access code), so it changes state and a validator cannot make it.
    #: Its refusal is recorded, and an update fails with it.
    admit: Callable[[Any], str | None] | None = None


class Actions:
    def __init__(self, ctx: DealContext, table: Mapping[str, Action]) -> None:
        if table.keys() != ACTIONS.keys():
            raise ValueError(f"the deal's actions are {sorted(ACTIONS)}, not {sorted(table)}")
        self.ctx = ctx
        self._table = table

    def act(self, name: str, action_input: Any, *, update: bool = False) -> ActionResult:
        """The one path of every human action, signal or update (an update whose `admit`
        refused fails with the reason, after it counted)."""
        action = self._table[name]
        source = action.source(action_input)
        ctx = self.ctx
        if isinstance(action_input, OperatorAction):
            ctx.acting_operator = ctx.operator_of(action_input, source)
        admitted = True
        try:
            reason = self._refusal(action, action_input)
            if reason is None and action.admit is not None:
                reason = action.admit(action_input)
                admitted = reason is None
            if reason is not None:
                if admitted:  # `admit` records what it refused itself
                    ctx.record(source, EventKind.REJECTED, f"{name} rejected: {reason}")
                message = reason
            else:
                message = action.apply(action_input)
        finally:
            ctx.acting_operator = None
        ctx.journal.flush()
        if update and not admitted:
            raise ApplicationError(message, type="ActionRejected", non_retryable=True)
        return ActionResult(stage=ctx.stage, message=message)

    def validate(self, name: str, action_input: Any) -> None:
        reason = self._refusal(self._table[name], action_input)
        if reason is not None:
            raise ApplicationError(reason, type="ActionRejected", non_retryable=True)

    async def outcome(self) -> ActionResult:
        """The answer of an action that waits for the end: the final stage, the money returned."""
        ctx = self.ctx
        await workflow.wait_condition(lambda: ctx.stage in rules.ENDED)
        refunded = sum(m.returned for m in ctx.milestones.values())
        return ActionResult(
            stage=ctx.stage,
            message=f"Deal {ctx.stage.value}; {ctx.money(refunded)} returned to the client",
        )

    def _refusal(self, action: Action, action_input: Any) -> str | None:
        ctx = self.ctx
        refusal = rules.deal_refusal(ctx.stage, None if action.while_stopping else ctx.stop)
        if refusal is not None:
            return refusal
        if ctx.text_checked and (problem := first_text_problem(action_input)):
            return str(problem)
        return action.refusal(action_input)


class TakesActions(Protocol):
    """A workflow whose human actions go through `_actions`."""

    _actions: Actions


W = TypeVar("W", bound=type)


def action_handlers(cls: W) -> W:
    """Add to `cls`, for every action in the contract, the signal `<name>_signal`, the update
    `<name>` and its validator, all of that name. Apply it before `@workflow.defn`, which then
    finds them like handlers written out; each has `__annotations__` naming the action's input
    model, so the SDK decodes it as such."""
    for name, input_type in ACTIONS.items():
        for handler in _handlers(name, input_type, cls.__qualname__):
            setattr(cls, handler.__name__, handler)
    return cls


def _handlers(name: str, input_type: type, owner: str) -> list[Callable[..., Any]]:
    def signal(self: TakesActions, action_input: Any) -> None:
        self._actions.act(name, action_input)

    def validator(self: TakesActions, action_input: Any) -> None:
        self._actions.validate(name, action_input)

    if name in ANSWERED_AT_THE_END:

        async def update(self: TakesActions, action_input: Any) -> ActionResult:
            self._actions.act(name, action_input, update=True)
            return await self._actions.outcome()

    else:

        def update(self: TakesActions, action_input: Any) -> ActionResult:  # type: ignore[misc]
            return self._actions.act(name, action_input, update=True)

    _method(signal, f"{name}_signal", owner, input_type, None)
    _method(validator, f"_validate_{name}", owner, input_type, None)
    _method(update, name, owner, input_type, ActionResult)
    registered = workflow.update(name=name)(update)
    registered.validator(validator)
    return [workflow.signal(name=name)(signal), registered]


def _method(
    fn: Callable[..., Any], name: str, owner: str, input_type: type, returns: type | None
) -> None:
    """Name `fn` as a method of `owner` and give it real (not string) type hints; `self` stays
    unannotated, which is how the SDK tells it from the input."""
    fn.__name__ = name
    fn.__qualname__ = f"{owner}.{name}"
    fn.__annotations__ = {"action_input": input_type, "return": returns}
