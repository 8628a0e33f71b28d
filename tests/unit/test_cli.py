"""The command line: precedence through real argv, one-line errors with exit code 2, help, show and serve."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
import types
from pathlib import Path
from typing import Any

import bcrypt
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pydantic import BaseModel

from exporter import __version__
from exporter.cli import main
from exporter.settings import ClusterSettings, Settings
from exporter.settings_sources import load_settings


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("LAGWATCH_"):
            monkeypatch.delenv(name)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _show(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    code, out, err = _run(capsys, *argv, "config", "show", "--format", "json")
    assert (code, err) == (0, "")
    data: dict[str, Any] = json.loads(out)
    return data


def _config_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code, out, err = _run(capsys, *argv)
    assert code == 2
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_precedence_flag_over_env_over_toml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[storage]\nintervals = 11\nmin_distance = 1\nexpire_group = 100\n")
    monkeypatch.setenv("LAGWATCH_STORAGE__INTERVALS", "12")
    monkeypatch.setenv("LAGWATCH_STORAGE__MIN_DISTANCE", "2")
    storage = _show(capsys, "--config", str(config), "--storage.intervals", "13")["storage"]
    assert storage == {"intervals": 13, "min_distance": 2.0, "expire_group": 100.0}


def test_flags_after_the_command_and_config_from_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[clusters.prod]\nbootstrap_servers = "k:9092"\n')
    monkeypatch.setenv("LAGWATCH_CONFIG", str(config))
    code, out, err = _run(capsys, "config", "check", "--evaluator.allowed-lag", "5")
    assert (code, out, err) == (0, "lagwatch: configuration is valid; clusters: prod\n", "")
    assert _show(capsys, "--evaluator.allowed-lag", "5")["evaluator"]["allowed_lag"] == 5
    other = tmp_path / "other.toml"
    other.write_text('[clusters.dr]\nbootstrap_servers = "d:9092"\n')
    assert list(_show(capsys, "--config", str(other))["clusters"]) == ["dr"]


def test_bootstrap_servers_shortcut_and_boolean_flags(capsys: pytest.CaptureFixture[str]) -> None:
    data = _show(capsys, "--bootstrap-servers", "a:9092,b:9092", "--metrics.burrow-compatible")
    assert data["clusters"]["local"]["bootstrap_servers"] == ["a:9092", "b:9092"]
    assert data["metrics"]["burrow_compatible"] is True
    assert _show(capsys, "--no-metrics.burrow-compatible")["metrics"]["burrow_compatible"] is False


def test_no_configuration_watches_local(capsys: pytest.CaptureFixture[str]) -> None:
    clusters = _show(capsys)["clusters"]
    assert list(clusters) == ["local"]
    assert clusters["local"]["bootstrap_servers"] == ["127.0.0.1:9092"]


@pytest.mark.parametrize(
    ("files", "argv", "expected"),
    [
        ({"c.toml": "[storage]\nbogus = 1\n"}, ["--config", "c.toml"], "storage.bogus: unknown key"),
        (
            {},
            ["--storage.intervals", "ten"],
            "storage.intervals: input should be a valid integer, unable to parse string as an integer "
            "(got 'ten')",
        ),
        (
            {},
            ["--filters.group-allow", "[a-"],
            "filters.group_allow: invalid regular expression '[a-': unterminated character set at position 0",
        ),
        (
            {
                "c.toml": '[clusters.p]\nbootstrap_servers = "k:1"\n[clusters.p.security]\nprotocol = "SSL"\n'
                'ca_file = "missing-ca.pem"\n'
            },
            ["--config", "c.toml"],
            "clusters.p.security.ca_file: cannot read file 'missing-ca.pem': No such file or directory",
        ),
        (
            {"c.toml": '[clusters.a]\nbootstrap_servers = "k:1"\n[clusters.b]\nbootstrap_servers = "k:1"\n'},
            ["--config", "c.toml"],
            "clusters: clusters 'a' and 'b' share bootstrap server k:1: "
            "the same Kafka cluster is configured twice",
        ),
        (
            {"c.toml": '[clusters.a]\nbootstrap_servers = "k:1"\n[clusters.a]\n'},
            ["--config", "c.toml"],
            "clusters.a: cluster 'a' is declared twice (c.toml, line 3)",
        ),
        (
            {"c.toml": "log_level = \n"},
            ["--config", "c.toml"],
            "config file: invalid TOML: Invalid value (c.toml, line 1)",
        ),
        (
            {},
            ["--config", "nowhere.toml"],
            "config file: cannot read 'nowhere.toml': No such file or directory",
        ),
    ],
)
@pytest.mark.parametrize("command", [["config", "check"], ["config", "show"], []])
def test_invalid_configuration_is_one_line_and_exit_2(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    files: dict[str, str],
    argv: list[str],
    expected: str,
    command: list[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assert _config_error(capsys, *argv, *command) == f"lagwatch: config error: {expected}"


def test_invalid_environment_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LAGWATCH_HTTP__LISTEN", "nowhere")
    assert (
        _config_error(capsys, "config", "check")
        == "lagwatch: config error: http.listen: 'nowhere' is not host:port"
    )


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--bogus"], "lagwatch: error: unrecognized arguments: --bogus (see 'lagwatch --help')"),
        (
            ["config"],
            "lagwatch: error: the following arguments are required: COMMAND (see 'lagwatch config --help')",
        ),
        (
            ["frobnicate"],
            # argparse words the choices differently across Python versions; the frame is lagwatch's.
            "lagwatch: error: argument COMMAND: invalid choice: 'frobnicate' (choose from * "
            "(see 'lagwatch --help')",
        ),
        (
            ["--storage.intervals"],
            "lagwatch: error: argument --storage.intervals: expected one argument (see 'lagwatch --help')",
        ),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    head, _, tail = expected.partition("* ")
    line = _config_error(capsys, *argv)
    assert line == expected if not tail else (line.startswith(head) and line.endswith(tail))


def test_show_masks_secrets_in_toml_and_json(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LAGWATCH_CLUSTERS__LOCAL__BOOTSTRAP_SERVERS", "k:9093")
    monkeypatch.setenv("LAGWATCH_CLUSTERS__LOCAL__SECURITY__PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("LAGWATCH_CLUSTERS__LOCAL__SECURITY__SASL_USERNAME", "svc")
    monkeypatch.setenv("LAGWATCH_CLUSTERS__LOCAL__SECURITY__SASL_PASSWORD", "hunter2")
    argv = ["--http.admin-token", "t0ken", "config", "show"]
    code, out, err = _run(capsys, *argv)
    assert (code, err) == (0, "")
    assert "hunter2" not in out
    assert "t0ken" not in out
    shown = tomllib.loads(out)
    assert shown["clusters"]["local"]["security"]["sasl_password"] == "********"
    assert shown["http"]["admin_token"] == "********"
    assert shown["clusters"]["local"]["security"]["key_password"] == ""
    code, out, err = _run(capsys, *argv, "--format", "json")
    assert (code, err) == (0, "")
    assert "hunter2" not in out
    assert "t0ken" not in out
    assert json.loads(out) == shown


def test_show_toml_is_the_effective_configuration(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        'log_level = "debug"\n[clusters."eu.prod"]\nbootstrap_servers = ["a:1", "b:2"]\n'
        '[clusters.us]\nbootstrap_servers = "c:3"\n[evaluator]\nminimum_complete = 0.25\n'
    )
    code, out, _ = _run(capsys, "--config", str(config), "config", "show")
    assert code == 0
    assert out.startswith('# lagwatch effective configuration; secrets are masked\nlog_level = "debug"\n')
    assert '\n[clusters."eu.prod"]\nbootstrap_servers = ["a:1", "b:2"]\n' in out
    shown = tomllib.loads(out)
    assert shown == load_settings(config, {}).redacted()
    shown_again = tmp_path / "shown.toml"
    shown_again.write_text(out)
    assert load_settings(shown_again, {}) == load_settings(config, {})


@given(st.text(max_size=30))
@hypothesis_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_show_toml_round_trips_any_string(capsys: pytest.CaptureFixture[str], text: str) -> None:
    pattern = re.escape(text)
    code, out, err = _run(capsys, "--filters.topic-deny", pattern, "config", "show")
    assert (code, err) == (0, "")
    assert tomllib.loads(out)["filters"]["topic_deny"] == pattern


def _model_paths(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths: list[tuple[str, ...]] = []
    for name, field in model.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            paths += _model_paths(field.annotation, (*prefix, name))
        elif name != "clusters":
            paths.append((*prefix, name))
    return paths


def test_help_lists_every_option_with_its_environment_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    code, out, err = _run(capsys, "--help")
    assert (code, err) == (0, "")
    expected = [f"LAGWATCH_{'__'.join(path).upper()}" for path in _model_paths(Settings)]
    expected += [
        f"LAGWATCH_CLUSTERS__<NAME>__{'__'.join(path).upper()}" for path in _model_paths(ClusterSettings)
    ]
    expected += ["LAGWATCH_CONFIG", "LAGWATCH_CLUSTERS__LOCAL__BOOTSTRAP_SERVERS"]
    assert len(expected) == 48
    missing = [name for name in expected if f"{name}]" not in out]
    assert missing == []
    for path in _model_paths(Settings):
        assert "--" + ".".join(path).replace("_", "-") in out
    assert "--bootstrap-servers HOST:PORT,..." in out
    assert "--version" in out


def test_status_help_lists_only_its_own_options(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "status", "--help")
    assert (code, err) == (0, "")
    options = sorted(set(re.findall(r"^\s+(--[a-z-]+)", out, re.MULTILINE)))
    assert options == [
        "--ca-file",
        "--cluster",
        "--group",
        "--insecure",
        "--json",
        "--no-color",
        "--timeout",
        "--url",
    ]
    assert "LAGWATCH_" not in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(capsys, "--version") == (0, f"lagwatch {__version__}\n", "")


def test_serve_is_the_default_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    received: list[Settings] = []

    async def run(settings: Settings) -> int:
        received.append(settings)
        return 3

    monkeypatch.setitem(sys.modules, "exporter.app", types.SimpleNamespace(run=run))
    assert _run(capsys, "--storage.intervals", "4") == (3, "", "")
    assert _run(capsys, "serve", "--storage.intervals", "5") == (3, "", "")
    assert [settings.storage.intervals for settings in received] == [4, 5]
    assert list(received[0].clusters) == ["local"]


def test_serve_with_invalid_configuration_never_starts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "exporter.app", None)
    assert _config_error(capsys, "--log-level", "loud") == (
        "lagwatch: config error: log_level: "
        "input should be 'debug', 'info', 'warning' or 'error' (got 'loud')"
    )


def test_python_dash_m_exporter() -> None:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("LAGWATCH_")}
    done = subprocess.run(
        [sys.executable, "-m", "exporter", "--storage.intervals", "0", "config", "check"],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        "lagwatch: config error: storage.intervals: input should be greater than or equal to 1 (got '0')\n"
    )


_DOCS = Path(__file__).parents[2] / "docs" / "configuration.md"


def test_docs_name_every_environment_variable() -> None:
    text = _DOCS.read_text()
    names = [f"LAGWATCH_{'__'.join(path).upper()}" for path in _model_paths(Settings)]
    names += [
        f"LAGWATCH_CLUSTERS__<NAME>__{'__'.join(path).upper()}" for path in _model_paths(ClusterSettings)
    ]
    assert [name for name in names if f"`{name}`" not in text] == []


def test_docs_toml_examples_are_valid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    examples = re.findall(r"```toml\n(.*?)```", _DOCS.read_text(), re.DOTALL)
    assert len(examples) == 2
    for name in ("eu-ca.pem", "us-ca.pem", "us-client.pem", "us-client.key"):
        (tmp_path / name).write_text("placeholder")
    password_hash = bcrypt.hashpw(b"secret", bcrypt.gensalt(rounds=4)).decode()
    (tmp_path / "web.yml").write_text(f"basic_auth_users:\n  prometheus: '{password_hash}'\n")
    clusters = []
    for number, example in enumerate(examples):
        config = tmp_path / f"example{number}.toml"
        config.write_text(example.replace("/etc/lagwatch/", f"{tmp_path}/"))
        code, out, err = _run(capsys, "--config", str(config), "config", "check")
        assert (code, err) == (0, "")
        clusters.append(out)
    assert clusters == [
        "lagwatch: configuration is valid; clusters: local\n",
        "lagwatch: configuration is valid; clusters: prod_eu, prod_us, managed\n",
    ]


def test_config_check_validates_the_web_config_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    web_config = tmp_path / "web.yml"
    web_config.write_text(
        f"tls_server_config:\n  cert_file: {tmp_path}/none.pem\n  key_file: {tmp_path}/none.key\n"
    )
    assert main(["--http.web-config-file", str(web_config), "config", "check"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("lagwatch: config error: http.web_config_file: tls_server_config:")


def test_demo_workload_runs_against_the_configured_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, ...]] = []

    def fake_run(args: object, servers: tuple[str, ...]) -> int:
        calls.append(tuple(servers))
        return 0

    monkeypatch.setattr("exporter.tools.workload.command.run_workload", fake_run)
    assert main(["--bootstrap-servers", "127.0.0.1:1234", "demo", "workload", "--duration", "1"]) == 0
    assert calls == [("127.0.0.1:1234",)]
