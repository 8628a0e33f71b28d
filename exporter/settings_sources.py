"""Where the configuration comes from, merged in order of precedence, lowest first: defaults < TOML file <
environment (`LAGWATCH_`, `__` between levels) < CLI flags; then validated against the settings model. Every
kind of invalid input ends as one `ConfigError` whose message is a single line naming the field, so the CLI
can print it without a traceback."""

from __future__ import annotations

import ast
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_settings import EnvSettingsSource, SettingsError

from exporter.config_errors import ConfigError, describe
from exporter.settings import ENV_PREFIX, Settings

__all__ = ["load_settings"]


def load_settings(config_path: Path | None, cli_overrides: Mapping[str, Any]) -> Settings:
    """Merge defaults < TOML file < environment < `cli_overrides` and validate.

    `cli_overrides` maps dotted paths (`"storage.intervals"`) or section names to values; strings are parsed
    like environment variables. Raises ConfigError with one line naming the field for any invalid input.
    """
    merged = _read_toml(config_path) if config_path is not None else {}
    merged = _merge(merged, _environment())
    merged = _merge(merged, _nest(cli_overrides))
    try:
        return Settings.model_validate(merged)
    except ValidationError as error:
        raise ConfigError(describe(error)) from None


def _environment() -> dict[str, Any]:
    try:
        values: dict[str, Any] = EnvSettingsSource(Settings)()
    except SettingsError as error:
        field = re.search(r'field "([^"]+)"', str(error))
        name = field[1] if field else "environment"
        cause = f": {error.__cause__}" if error.__cause__ else ""
        raise ConfigError(
            f"{name}: cannot parse environment variable {ENV_PREFIX}{name.upper()}{cause}"
        ) from None
    return values


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as error:
        raise ConfigError(f"config file: cannot read {str(path)!r}: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"config file: {str(path)!r} is not UTF-8 text: {error.reason}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(_toml_problem(path, text, str(error))) from None


def _toml_problem(path: Path, text: str, message: str) -> str:
    position = re.search(r"\(at line (\d+), column \d+\)$", message)
    line = int(position[1]) if position else 0
    where = f"{path}, line {line}" if line else str(path)
    twice = re.match(r"Cannot declare (\(.*\)) twice", message)
    if twice:
        table = ".".join(ast.literal_eval(twice[1]))
        if table.startswith("clusters.") and table.count(".") == 1:
            return f"{table}: cluster {table.split('.', 1)[1]!r} is declared twice ({where})"
        return f"{table}: table [{table}] is declared twice ({where})"
    if message.startswith("Cannot overwrite a value") and line:
        return f"{_key_at(text, line)}: set twice ({where})"
    detail = message[: position.start()].strip() if position else message
    return f"config file: invalid TOML: {detail} ({where})"


def _key_at(text: str, line: int) -> str:
    """Best-effort dotted path of the key assigned on `line`, for the duplicate-key message."""
    lines = text.splitlines()
    key = lines[line - 1].split("=", 1)[0].strip()
    for previous in reversed(lines[: line - 1]):
        header = re.fullmatch(r"\s*\[([^\[\]]+)\]\s*(?:#.*)?", previous)
        if header:
            return f"{header[1].strip()}.{key}"
    return key


def _nest(overrides: Mapping[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for path, value in overrides.items():
        *parents, leaf = path.split(".")
        node: dict[str, Any] = {leaf: value}
        for parent in reversed(parents):
            node = {parent: node}
        nested = _merge(nested, node)
    return nested


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged
