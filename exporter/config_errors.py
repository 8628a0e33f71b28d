"""Invalid configuration as one line: `ConfigError` (settings, their TOML file, environment or flags, and the
web configuration file) and the one-line description of a validation error of the settings model, naming the
field, secrets never shown."""

from __future__ import annotations

from typing import get_args

from pydantic import BaseModel, SecretStr, ValidationError
from pydantic_core import ErrorDetails

from exporter.settings import Settings

__all__ = ["ConfigError", "describe"]

_MAX_SHOWN_INPUT = 60


class ConfigError(Exception):
    """Invalid configuration; `str(error)` is one line that starts with the field path."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.splitlines()))


def _secret_fields(model: type[BaseModel]) -> frozenset[str]:
    names: set[str] = set()
    for name, field in model.model_fields.items():
        if field.annotation is SecretStr:
            names.add(name)
        for inner in (field.annotation, *get_args(field.annotation)):
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                names |= _secret_fields(inner)
    return frozenset(names)


def describe(error: ValidationError) -> str:
    problems = error.errors(include_url=False)
    first = problems[0]
    path = ".".join(str(part) for part in first["loc"]) or "configuration"
    more = len(problems) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return f"{path}: {_reason(first, _is_secret(first['loc']))}{suffix}"


def _is_secret(loc: tuple[int | str, ...]) -> bool:
    return bool(loc) and loc[-1] in _SECRETS


def _reason(problem: ErrorDetails, secret: bool) -> str:
    kind = problem["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required but not set"
    if kind == "value_error" and "ctx" in problem:
        return str(problem["ctx"]["error"])
    message = str(problem["msg"])
    reason = message[:1].lower() + message[1:]
    if secret:
        return reason
    shown = repr(problem["input"])
    if len(shown) > _MAX_SHOWN_INPUT:
        shown = shown[: _MAX_SHOWN_INPUT - 3] + "..."
    return f"{reason} (got {shown})"


_SECRETS = _secret_fields(Settings)
