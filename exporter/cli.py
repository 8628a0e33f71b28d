"""The `lagwatch` command line: global configuration flags, `serve` (the default) and `config check|show`.

Every flag is generated from the settings model, so a new option gets its flag, environment variable and help
line without touching this module. Subcommands live in one table (`_COMMANDS`); adding one is one entry and a
function taking the parsed arguments and returning the exit code.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import textwrap
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NoReturn, get_args, get_origin

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from exporter import __version__
from exporter.config_errors import ConfigError
from exporter.exposition.webconfig import load_web_config, server_ssl_context
from exporter.settings import (
    DEFAULT_BOOTSTRAP_SERVER,
    DEFAULT_CLUSTER,
    DEFAULT_PORT,
    ENV_DELIMITER,
    ENV_PREFIX,
    ClusterSettings,
    Settings,
    StartupError,
)
from exporter.settings_sources import load_settings
from exporter.tools import status
from exporter.tools.workload import command as workload

CONFIG_ENV = f"{ENV_PREFIX}CONFIG"
EXIT_CONFIG = 2
_PROG = "lagwatch"
_SETTING = "setting:"
"""Prefix of the argparse dests that carry a settings override, followed by the dotted settings path."""
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_EPILOG_WIDTH = 100


@dataclass(frozen=True)
class _Command:
    name: str
    help: str
    run: Callable[[argparse.Namespace], int] | None = None
    arguments: Callable[[argparse.ArgumentParser], None] | None = None
    subcommands: tuple[_Command, ...] = ()
    configured: bool = True
    """Whether the command reads lagwatch's configuration, and so accepts (and lists) its flags."""


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse would print the whole usage block; one line keeps scripts' stderr readable.
        raise _UsageError(f"{message} (see '{self.prog} --help')")


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def _split_lines(self, text: str, width: int) -> list[str]:
        # Never cut an environment variable name in two, however narrow the terminal.
        return textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code (2 for any usage or configuration error)."""
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except _UsageError as error:
        print(f"{_PROG}: error: {error}", file=sys.stderr)
        return EXIT_CONFIG
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else 0
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except ConfigError as error:
        print(f"{_PROG}: config error: {error}", file=sys.stderr)
        return EXIT_CONFIG
    except StartupError as error:
        print(f"{_PROG}: cannot start: {error}", file=sys.stderr)
        return EXIT_CONFIG


def _serve(args: argparse.Namespace) -> int:
    settings = _settings(args)
    # Imported here so that `config` and `--help` never pay for (or fail on) the Kafka and HTTP stack.
    from exporter.app import run

    return asyncio.run(run(settings))


def _config_check(args: argparse.Namespace) -> int:
    settings = _settings(args)
    web_config = load_web_config(settings.http.web_config_file)
    if web_config.tls is not None:
        server_ssl_context(web_config.tls)
    print(f"{_PROG}: configuration is valid; clusters: {', '.join(settings.clusters)}")
    return 0


def _config_show(args: argparse.Namespace) -> int:
    data = _settings(args).redacted()
    if args.format == "json":
        print(json.dumps(data, indent=2))
    else:
        print("# lagwatch effective configuration; secrets are masked")
        print(_to_toml(data), end="")
    return 0


def _demo_workload(args: argparse.Namespace) -> int:
    clusters = _settings(args).clusters
    cluster = clusters.get(DEFAULT_CLUSTER) or next(iter(clusters.values()))
    return workload.run_workload(args, cluster.bootstrap_servers)


def _show_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format", choices=("toml", "json"), default="toml", help="output format (default: toml)"
    )


_COMMANDS = (
    _Command("serve", "run the exporter (the default command)", run=_serve),
    _Command(
        "config",
        "validate or print the configuration",
        subcommands=(
            _Command(
                "check", "validate the configuration: exit 0 if it is valid, 2 if not", run=_config_check
            ),
            _Command(
                "show",
                "print the effective configuration with secrets masked",
                run=_config_show,
                arguments=_show_arguments,
            ),
        ),
    ),
    _Command(
        "demo",
        "drive a Kafka cluster for demonstrations",
        subcommands=(
            _Command(
                "workload",
                "producers and consumer groups that are healthy, slow, stalled, stopped and rewound",
                run=_demo_workload,
                arguments=workload.add_arguments,
            ),
        ),
    ),
    _Command(
        "status",
        "ask a running lagwatch for every group's status: exit 1 if one is ERR, 2 if it cannot be reached",
        run=status.run,
        arguments=status.add_arguments,
        configured=False,
    ),
)


def _settings(args: argparse.Namespace) -> Settings:
    config = args.config if "config" in args else os.environ.get(CONFIG_ENV, "")
    overrides = {
        key.removeprefix(_SETTING): value for key, value in vars(args).items() if key.startswith(_SETTING)
    }
    return load_settings(Path(config) if config else None, overrides)


def _build_parser() -> _Parser:
    options = _Parser(add_help=False, allow_abbrev=False, formatter_class=_Formatter)
    _add_options(options)
    parser = _Parser(
        prog=_PROG,
        allow_abbrev=False,
        description="Burrow's Kafka consumer-lag evaluation as a Prometheus exporter. "
        f"Serves http://0.0.0.0:{DEFAULT_PORT}/metrics unless told otherwise.",
        epilog=_cluster_help(),
        formatter_class=_Formatter,
        parents=[options],
    )
    parser.add_argument("--version", action="version", version=f"{_PROG} {__version__}")
    parser.set_defaults(run=_serve)
    _add_commands(parser, _COMMANDS, options, "command", required=False)
    return parser


def _add_commands(
    parser: argparse.ArgumentParser, commands: Sequence[_Command], options: _Parser, dest: str, required: bool
) -> None:
    subparsers = parser.add_subparsers(title="commands", dest=dest, metavar="COMMAND", required=required)
    for command in commands:
        # Options are accepted after the command too (`lagwatch config check --config x.toml`); their
        # defaults are suppressed, so a subparser never overwrites what was given before the command.
        sub = subparsers.add_parser(
            command.name,
            help=command.help,
            description=command.help,
            parents=[options] if command.configured else [],
            formatter_class=_Formatter,
        )
        if command.arguments is not None:
            command.arguments(sub)
        if command.subcommands:
            _add_commands(sub, command.subcommands, options, f"{dest}_{command.name}", required=True)
        else:
            sub.set_defaults(run=command.run)


def _add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help=f"TOML configuration file [env: {CONFIG_ENV}]",
    )
    parser.add_argument(
        "--bootstrap-servers",
        metavar="HOST:PORT,...",
        dest=f"{_SETTING}clusters.{DEFAULT_CLUSTER}.bootstrap_servers",
        default=argparse.SUPPRESS,
        help=f"bootstrap servers of the cluster named '{DEFAULT_CLUSTER}' "
        f"[env: {_env_var(('clusters', DEFAULT_CLUSTER, 'bootstrap_servers'))}]",
    )
    for path, field in _global_fields():
        flag = "--" + ".".join(part.replace("_", "-") for part in path)
        dest = _SETTING + ".".join(path)
        help_text = f"{_help(field)} [env: {_env_var(path)}]"
        if field.annotation is bool:
            parser.add_argument(
                flag,
                dest=dest,
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=help_text,
            )
        else:
            parser.add_argument(
                flag, dest=dest, metavar=_metavar(field), default=argparse.SUPPRESS, help=help_text
            )


def _global_fields() -> Iterator[tuple[tuple[str, ...], FieldInfo]]:
    """Every option outside `clusters`, as (path, field); cluster options have no flags of their own."""
    for path, field in _fields(Settings):
        if path[0] != "clusters":
            yield path, field


def _fields(model: type[BaseModel]) -> Iterator[tuple[tuple[str, ...], FieldInfo]]:
    """The options of `model` as (path, field), descending into sections."""
    for name, field in model.model_fields.items():
        section = field.annotation
        if isinstance(section, type) and issubclass(section, BaseModel):
            for path, sub_field in _fields(section):
                yield (name, *path), sub_field
        else:
            yield (name,), field


def _env_var(path: Sequence[str]) -> str:
    return ENV_PREFIX + ENV_DELIMITER.join(part.upper() for part in path)


def _cluster_help() -> str:
    name = "<NAME>"
    intro = (
        f"Cluster options, set per cluster in TOML [clusters.{name}] or in the environment as "
        f"{_env_var(('clusters', name, '<KEY>'))} ({name} reads as lower case there). With no cluster "
        f"configured anywhere, lagwatch watches one cluster named '{DEFAULT_CLUSTER}' at "
        f"{DEFAULT_BOOTSTRAP_SERVER}. "
        "Precedence: flags > environment > TOML file > defaults."
    )
    lines = textwrap.wrap(intro, _EPILOG_WIDTH, break_long_words=False)
    for path, field in _fields(ClusterSettings):
        lines.append(f"  {'.'.join(path)} {_metavar(field)}  [env: {_env_var(('clusters', name, *path))}]")
        lines.extend(
            textwrap.wrap(_help(field), _EPILOG_WIDTH, initial_indent=" " * 6, subsequent_indent=" " * 6)
        )
    return "\n".join(lines)


def _help(field: FieldInfo) -> str:
    description = field.description or ""
    if field.is_required():
        return f"{description} (required)"
    default = field.get_default(call_default_factory=True)
    if isinstance(default, SecretStr):
        shown = "none"
    elif isinstance(default, bool):
        shown = str(default).lower()
    elif default in ("", (), PydanticUndefined):
        shown = "none"
    else:
        shown = str(default)
    return f"{description} (default: {shown})"


def _metavar(field: FieldInfo) -> str:
    annotation = field.annotation
    if get_origin(annotation) is Literal:
        return "{" + ",".join(str(choice) for choice in get_args(annotation)) + "}"
    if annotation is float:
        return "SECONDS" if "seconds" in (field.description or "").lower() else "NUMBER"
    if get_origin(annotation) is tuple:
        (item, _) = get_args(annotation)
        choices = get_args(item)
        if choices and get_origin(choices[0]) is Literal:
            return "{" + ",".join(str(choice) for choice in get_args(choices[0])) + "},..."
        return "HOST:PORT,..."
    names: dict[object, str] = {bool: "BOOL", int: "N", SecretStr: "SECRET"}
    return names.get(annotation, "TEXT")


def _to_toml(data: Mapping[str, Any], table: tuple[str, ...] = ()) -> str:
    """Plain data (scalars, lists of scalars, nested mappings) as TOML, scalars before sub-tables."""
    scalars = {key: value for key, value in data.items() if not isinstance(value, Mapping)}
    tables = {key: value for key, value in data.items() if isinstance(value, Mapping)}
    text = ""
    if table and (scalars or not tables):
        text = f"\n[{'.'.join(_toml_key(part) for part in table)}]\n"
    text += "".join(f"{_toml_key(key)} = {_toml_value(value)}\n" for key, value in scalars.items())
    return text + "".join(_to_toml(value, (*table, key)) for key, value in tables.items())


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else json.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        # A JSON string is a valid TOML basic string: same quotes, same escapes.
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"cannot render {type(value).__name__} as TOML")
