"""What every YAML-configured stage shares: strict pydantic models, ``a.b=value`` overrides, and error
messages that name the file, the field, the bad value and what is allowed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from dataigm.core.errors import DataigmError, InputError, one_line
from dataigm.core.schema import slugify

M = TypeVar("M", bound=BaseModel)


class SettingsError(DataigmError, ValueError):
    """An invalid recipe or config; the message names the source, the field, the value and what is allowed."""


class StrictModel(BaseModel):
    """Unknown fields are errors (a typo must not be ignored silently)."""

    model_config = ConfigDict(extra="forbid")


def slug_name(value: str, names: str = "") -> str:
    """``value`` when it is already a slug (lowercase letters, digits and '_'), for validators of fields that name
    things; else an InputError that says what it names (``names``) and suggests the slug."""
    if value != slugify(value):
        use = f" (it names {names})" if names else ""
        raise InputError(f"must be lowercase letters, digits and '_'{use}, e.g. {slugify(value)!r}")
    return value


def _shown(value: Any) -> str:
    return repr(value) if not isinstance(value, (dict, list)) or len(repr(value)) < 120 else type(value).__name__


def _fields_at(model: Any, path: tuple[Any, ...]) -> list[str]:
    """The field names of the model found at ``path`` below ``model`` (list indexes and dict keys stepped over), or []."""
    from typing import get_args

    from pydantic import BaseModel

    def models(t: Any) -> list[Any]:
        if isinstance(t, type) and issubclass(t, BaseModel):
            return [t]
        return [m for a in get_args(t) for m in models(a)]

    current = models(model)
    for part in path:
        if isinstance(part, int) or not current:
            continue
        nxt = [f.annotation for m in current if part in m.model_fields for f in [m.model_fields[part]]]
        current = [m for t in nxt for m in models(t)] if nxt else current  # a dict key: stay on the value's model
    return sorted({name for m in current for name in m.model_fields})


def _field_error(e: Any, model: Any = None) -> str:
    loc = ".".join(str(p) for p in e["loc"])
    if e["type"] == "extra_forbidden" and model is not None:
        from dataigm.core.registry import did_you_mean

        hint = did_you_mean(str(e["loc"][-1]), _fields_at(model, tuple(e["loc"][:-1])))
        return f"field '{loc}': unknown field{hint}"
    if e["type"] == "value_error" and "error" in e.get("ctx", {}):
        # A model validator's own message already names the field and the value.
        msg = one_line(str(e["ctx"]["error"]))
        return f"field '{loc}': {msg}" if loc else msg
    got = "" if e["type"] == "missing" else f" (got {one_line(_shown(e.get('input')))})"
    return f"field '{loc or '(top level)'}': {one_line(e['msg'])}{got}"


def format_validation_error(source: str, err: ValidationError, what: str = "recipe", model: Any = None) -> str:
    """One line: ``source: invalid what: field 'a.b': msg (got value); field 'c': ...``; an unknown field of ``model``
    gets the closest known one as a suggestion."""
    return f"{source}: invalid {what}: " + "; ".join(_field_error(e, model) for e in err.errors())


def first_error(err: ValidationError) -> str:
    """The first error of ``err`` in one line, for nesting inside another model's message."""
    return _field_error(err.errors()[0])


def apply_overrides(data: dict[str, Any], overrides: list[str], source: str, error: type[Exception] = SettingsError) -> dict[str, Any]:
    """Apply ``a.b=value`` overrides (values parsed as YAML) to a dict; returns a new dict."""
    data = json.loads(json.dumps(data))
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise error(f"{source}: override {item!r} is not of the form key.sub=value")
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise error(f"{source}: override {item!r}: {part!r} is not a mapping")
        node[parts[-1]] = yaml.safe_load(raw)
    return data


def read_yaml_mapping(path: Path, what: str = "recipe", error: type[Exception] = SettingsError) -> dict[str, Any]:
    """Read a YAML file that must hold a mapping; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: {what} file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise error(f"{path}: not valid YAML: {yaml_error_line(e)}") from None
    if not isinstance(data, dict):
        raise error(f"{path}: a {what} must be a YAML mapping, got {type(data).__name__}")
    return data


def read_json_file(path: Path, what: str = "file") -> Any:
    """Read a JSON file a user handed us (a manifest, a part record); a corrupt one is an :class:`InputError` naming it."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: {what} is not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None


def yaml_error_line(err: yaml.YAMLError) -> str:
    """PyYAML's multi-line message in one line: the problem and where (line and column, 1-based)."""
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None)
    if problem and mark is not None:
        context = getattr(err, "context", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}"
        return f"{problem} at {where}" + (f" ({context})" if context else "")
    return one_line(str(err))


def validate(model: type[M], data: Any, source: str, what: str = "recipe", error: type[Exception] = SettingsError) -> M:
    """``model(**data)``, with a validation failure turned into ``error`` naming source, field and value."""
    if not isinstance(data, dict):
        raise error(f"{source}: a {what} must be a YAML mapping, got {type(data).__name__}")
    try:
        return model(**data)
    except ValidationError as e:
        raise error(format_validation_error(source, e, what, model)) from None
