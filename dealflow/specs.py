"""Reading deal specs (YAML or JSON) into a validated DealSpec, with every error spelled out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from dealflow.models import DealSpec
from dealflow.schedules import compile_schedule, is_scheduled
from dealflow.text_rules import text_problems

M = TypeVar("M", bound=BaseModel)


class SpecError(ValueError):
    """A spec that cannot become a deal; `problems` lists each as 'field: what is wrong'."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(f"{source}: " + "; ".join(problems))
        self.source = source
        self.problems = problems


def field_path(location: tuple[int | str, ...]) -> str:
    """('milestones', 0, 'amount') -> 'milestones[0].amount'."""
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(spec)"


def validation_problems(error: ValidationError) -> list[str]:
    return [f"{field_path(e['loc'])}: {e['msg']}" for e in error.errors()]


def parse_model(model: type[M], data: object, source: str) -> M:
    """Validate `data`, then check its text: decoding alone never refuses text (see TextRule)."""
    try:
        parsed = model.model_validate(data)
    except ValidationError as error:
        raise SpecError(source, validation_problems(error)) from error
    problems = [str(problem) for problem in text_problems(parsed)]
    if problems:
        raise SpecError(source, problems)
    return parsed


def load_spec(path: Path) -> DealSpec:
    """Load a `.yaml`/`.yml`/`.json` spec file; raise SpecError naming each bad field."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise SpecError(source, [f"cannot read the file: {error.strerror}"]) from error
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise SpecError(source, [f"not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {error}"]) from error
    if not isinstance(data, dict):
        raise SpecError(source, ["the spec must be a mapping of fields (deal_id, title, ...)"])
    return parse_spec(data, source)


def parse_spec(data: dict[str, object], source: str) -> DealSpec:
    """A spec's fields as a DealSpec; a total and a schedule become its milestones first, and
    a problem of one of those milestones is named by its schedule entry."""
    if not is_scheduled(data):
        return parse_model(DealSpec, data, source)
    compiled, problems = compile_schedule(data)
    if problems:
        raise SpecError(source, problems)
    try:
        return parse_model(DealSpec, compiled, source)
    except SpecError as error:
        renamed = [p.replace("milestones[", "schedule[", 1) for p in error.problems]
        raise SpecError(source, renamed) from error
