"""Settings: Burrow's defaults, source precedence and one-line errors for every kind of invalid input."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.config_errors import ConfigError
from exporter.setting_values import split_host_port
from exporter.settings import ClusterSettings, Settings
from exporter.settings_sources import load_settings


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("LAGWATCH_"):
            monkeypatch.delenv(name)


@pytest.fixture
def toml(tmp_path: Path) -> Path:
    return tmp_path / "lagwatch.toml"


def _error(config: Path | None = None, **overrides: object) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(config, overrides)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_defaults_follow_burrow() -> None:
    settings = load_settings(None, {})
    assert settings.log_level == "info"
    assert settings.clusters == {"local": ClusterSettings(bootstrap_servers=("127.0.0.1:9092",))}
    local = settings.clusters["local"]
    assert local.bootstrap_servers == ("127.0.0.1:9092",)
    assert (local.offset_refresh, local.topic_refresh) == (10.0, 60.0)
    assert (local.offsets_source, local.offsets_topic, local.start_latest) == (
        "offsets-topic",
        "__consumer_offsets",
        False,
    )
    assert (local.client_id, local.admin_concurrency, local.request_timeout) == ("lagwatch", 16, 30.0)
    assert local.security.protocol == "PLAINTEXT"
    assert local.security.sasl_mechanism == "PLAIN"
    assert local.security.check_hostname is True
    assert (settings.storage.intervals, settings.storage.min_distance, settings.storage.expire_group) == (
        10,
        0.0,
        604800.0,
    )
    assert (settings.evaluator.allowed_lag, settings.evaluator.minimum_complete) == (0, 0.0)
    assert settings.filters.model_dump() == {
        "group_allow": "",
        "group_deny": "",
        "topic_allow": "",
        "topic_deny": "",
    }
    assert (settings.http.listen, settings.http.host, settings.http.port) == ("0.0.0.0:7980", "0.0.0.0", 7980)
    assert settings.http.admin_token.get_secret_value() == ""
    assert (
        settings.metrics.granularity,
        settings.metrics.burrow_compatible,
        settings.metrics.max_series,
    ) == (
        "partition",
        False,
        1_000_000,
    )


def test_lag_seconds_defaults_keep_the_history_in_the_xdg_state_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    lag = load_settings(None, {}).lag_seconds
    assert lag.model_dump() == {
        "enabled": True,
        "span": 3600.0,
        "state_dir": str(tmp_path / ".local" / "state" / "lagwatch"),
        "exact_reads": True,
        "exact_read_concurrency": 4,
        "exact_reads_per_second": 20.0,
    }
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert load_settings(None, {}).lag_seconds.state_dir == str(tmp_path / "xdg" / "lagwatch")


def test_lag_seconds_state_dir_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAGWATCH_LAG_SECONDS__STATE_DIR", "")
    monkeypatch.setenv("LAGWATCH_LAG_SECONDS__EXACT_READS", "off")
    lag = load_settings(None, {"lag_seconds.exact_reads_per_second": "2.5"}).lag_seconds
    assert (lag.state_dir, lag.exact_reads, lag.exact_reads_per_second) == ("", False, 2.5)


def test_toml_overrides_defaults(toml: Path) -> None:
    toml.write_text('log_level = "debug"\n[storage]\nintervals = 15\n[evaluator]\nallowed_lag = 3\n')
    settings = load_settings(toml, {})
    assert (settings.log_level, settings.storage.intervals, settings.evaluator.allowed_lag) == (
        "debug",
        15,
        3,
    )
    assert settings.storage.expire_group == 604800.0


def test_environment_overrides_toml(toml: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml.write_text("[storage]\nintervals = 15\nmin_distance = 2\n")
    monkeypatch.setenv("LAGWATCH_STORAGE__INTERVALS", "20")
    settings = load_settings(toml, {})
    assert (settings.storage.intervals, settings.storage.min_distance) == (20, 2.0)


def test_cli_overrides_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAGWATCH_STORAGE__INTERVALS", "20")
    monkeypatch.setenv("LAGWATCH_LOG_LEVEL", "warning")
    settings = load_settings(None, {"storage.intervals": "25"})
    assert (settings.storage.intervals, settings.log_level) == (25, "warning")


def test_cli_overrides_toml(toml: Path) -> None:
    toml.write_text('[http]\nlisten = "127.0.0.1:9999"\n')
    assert load_settings(toml, {"http.listen": ":8001"}).http.listen == ":8001"
    assert load_settings(toml, {"http": {"listen": ":8002"}}).http.port == 8002


def test_sources_merge_inside_one_cluster(toml: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml.write_text('[clusters.prod]\nbootstrap_servers = ["a:9092"]\nclient_id = "from-toml"\n')
    monkeypatch.setenv("LAGWATCH_CLUSTERS__PROD__SECURITY__PROTOCOL", "sasl_plaintext")
    monkeypatch.setenv("LAGWATCH_CLUSTERS__PROD__SECURITY__SASL_USERNAME", "svc")
    monkeypatch.setenv("LAGWATCH_CLUSTERS__PROD__SECURITY__SASL_PASSWORD", "hunter2")
    settings = load_settings(toml, {"clusters.prod.offset_refresh": "2.5"})
    assert list(settings.clusters) == ["prod"]
    prod = settings.clusters["prod"]
    assert (prod.bootstrap_servers, prod.client_id, prod.offset_refresh) == (("a:9092",), "from-toml", 2.5)
    assert (prod.security.protocol, prod.security.sasl_username) == ("SASL_PLAINTEXT", "svc")
    assert prod.security.sasl_password.get_secret_value() == "hunter2"


def test_environment_comma_separated_and_json_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAGWATCH_CLUSTERS__PROD__BOOTSTRAP_SERVERS", "a:9092, b:9092,")
    monkeypatch.setenv("LAGWATCH_CLUSTERS__DR__BOOTSTRAP_SERVERS", '["[::1]:9093"]')
    settings = load_settings(None, {})
    assert settings.clusters["prod"].bootstrap_servers == ("a:9092", "b:9092")
    assert settings.clusters["dr"].bootstrap_servers == ("[::1]:9093",)
    assert "local" not in settings.clusters


def test_configured_clusters_replace_the_default(toml: Path) -> None:
    toml.write_text(
        '[clusters.a]\nbootstrap_servers = "k1:9092"\n[clusters.b]\nbootstrap_servers = "k2:9092"\n'
    )
    assert list(load_settings(toml, {}).clusters) == ["a", "b"]
    shortcut = load_settings(None, {"clusters.local.bootstrap_servers": "kafka:9092"})
    assert shortcut.clusters["local"].bootstrap_servers == ("kafka:9092",)


def test_bare_settings_reads_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAGWATCH_EVALUATOR__ALLOWED_LAG", "7")
    assert Settings().evaluator.allowed_lag == 7


def test_literals_are_case_insensitive() -> None:
    settings = load_settings(
        None,
        {
            "log_level": "DEBUG",
            "metrics.granularity": "Group",
            "clusters.local.bootstrap_servers": "k:1",
            "clusters.local.offsets_source": "ADMIN-API",
            "clusters.local.security.sasl_mechanism": "scram-sha-512",
        },
    )
    assert (settings.log_level, settings.metrics.granularity) == ("debug", "group")
    assert settings.clusters["local"].offsets_source == "admin-api"
    assert settings.clusters["local"].security.sasl_mechanism == "SCRAM-SHA-512"


def test_readable_tls_files_are_accepted(toml: Path, tmp_path: Path) -> None:
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tmp_path / name).write_text("pem")
    toml.write_text(
        f'[clusters.s]\nbootstrap_servers = "k:9093"\n[clusters.s.security]\nprotocol = "SSL"\n'
        f'ca_file = "{tmp_path}/ca.pem"\ncert_file = "{tmp_path}/cert.pem"\nkey_file = "{tmp_path}/key.pem"\n'
    )
    assert load_settings(toml, {}).clusters["s"].security.key_file == f"{tmp_path}/key.pem"


def test_redacted_masks_secrets_only_when_set() -> None:
    settings = load_settings(
        None,
        {
            "http.admin_token": "t0ken",
            "clusters.local.bootstrap_servers": "k:1",
            "clusters.local.security.protocol": "SASL_PLAINTEXT",
            "clusters.local.security.sasl_username": "svc",
            "clusters.local.security.sasl_password": "hunter2",
        },
    )
    data = settings.redacted()
    assert data["http"]["admin_token"] == "********"
    security = data["clusters"]["local"]["security"]
    assert (security["sasl_username"], security["sasl_password"], security["key_password"]) == (
        "svc",
        "********",
        "",
    )
    assert data["clusters"]["local"]["bootstrap_servers"] == ["k:1"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[storage]\nbogus = 1\n", "storage.bogus: unknown key"),
        ("bogus = 1\n", "bogus: unknown key"),
        ('[clusters.p]\nbootstrap_servers = "k:1"\nport = 1\n', "clusters.p.port: unknown key"),
        (
            '[storage]\nintervals = "ten"\n',
            "storage.intervals: input should be a valid integer, unable to parse string as an integer "
            "(got 'ten')",
        ),
        (
            "[storage]\nintervals = 0\n",
            "storage.intervals: input should be greater than or equal to 1 (got 0)",
        ),
        (
            "[evaluator]\nminimum_complete = 1.5\n",
            "evaluator.minimum_complete: input should be less than or equal to 1 (got 1.5)",
        ),
        (
            'log_level = "verbose"\n',
            "log_level: input should be 'debug', 'info', 'warning' or 'error' (got 'verbose')",
        ),
        (
            '[filters]\ntopic_deny = "(a"\n',
            "filters.topic_deny: invalid regular expression '(a': missing ), unterminated subpattern at "
            "position 0",
        ),
        ('[clusters.p]\nclient_id = "x"\n', "clusters.p.bootstrap_servers: required but not set"),
        (
            '[clusters.p]\nbootstrap_servers = "kafka"\n',
            "clusters.p.bootstrap_servers: 'kafka' is not host:port",
        ),
        (
            '[clusters.p]\nbootstrap_servers = ""\n',
            "clusters.p.bootstrap_servers: at least one host:port is required",
        ),
        ('[http]\nlisten = "localhost"\n', "http.listen: 'localhost' is not host:port"),
        ("[http]\nlisten = 'h:70000'\n", "http.listen: 'h:70000' is not host:port"),
        ("[http]\nadmin_token = 12345\n", "http.admin_token: input should be a valid string"),
        ("[clusters]\n", "clusters: at least one cluster is required"),
        (
            "[clusters.'a b']\nbootstrap_servers = 'k:1'\n",
            "clusters: cluster name 'a b' may only hold letters, digits, '.', '_' and '-'",
        ),
        (
            '[clusters.p]\nbootstrap_servers = "k:1"\n[clusters.p.security]\nprotocol = "SASL_SSL"\n',
            "clusters.p.security.sasl_username: required when protocol is SASL_SSL",
        ),
        (
            '[clusters.p]\nbootstrap_servers = "k:1"\n[clusters.p.security]\nca_file = "/etc/hostname"\n',
            "clusters.p.security.ca_file: is set but protocol is PLAINTEXT; use SSL or SASL_SSL",
        ),
        (
            '[clusters.p]\nbootstrap_servers = "k:1"\noffset_refresh = 0\n',
            "clusters.p.offset_refresh: input should be greater than 0 (got 0)",
        ),
        (
            '[clusters.p]\nbootstrap_servers = "k:1"\noffsets_source = "zookeeper"\n',
            "clusters.p.offsets_source: input should be 'offsets-topic' or 'admin-api' (got 'zookeeper')",
        ),
        (
            "[lag_seconds]\nspan = 0\n",
            "lag_seconds.span: input should be greater than 0 (got 0)",
        ),
        (
            "[lag_seconds]\nexact_read_concurrency = 0\n",
            "lag_seconds.exact_read_concurrency: input should be greater than or equal to 1 (got 0)",
        ),
        (
            "[lag_seconds]\nexact_reads_per_second = inf\n",
            "lag_seconds.exact_reads_per_second: input should be a finite number (got inf)",
        ),
        ("[lag_seconds]\nstate_file = 'x'\n", "lag_seconds.state_file: unknown key"),
        (
            '[metrics]\ncompatible = ["burrow", "prometheus"]\n',
            "metrics.compatible.1: input should be 'burrow' or 'kafka_exporter' (got 'prometheus')",
        ),
        (
            '[metrics]\ncompatible = ["kafka_exporter", "KAFKA_EXPORTER"]\n',
            "metrics.compatible: kafka_exporter listed more than once",
        ),
        (
            "[storage]\nintervals = 0\nexpire_group = -1\n",
            "storage.intervals: input should be greater than or equal to 1 (got 0) (and 1 more problem)",
        ),
    ],
)
def test_invalid_toml_values(toml: Path, text: str, message: str) -> None:
    toml.write_text(text)
    assert _error(toml) == message


def test_unreadable_certificate_file(toml: Path, tmp_path: Path) -> None:
    toml.write_text(
        '[clusters.prod]\nbootstrap_servers = "k:9093"\n[clusters.prod.security]\nprotocol = "SSL"\n'
        'ca_file = "/x/ca.pem"\n'
    )
    assert _error(toml) == (
        "clusters.prod.security.ca_file: cannot read file '/x/ca.pem': No such file or directory"
    )
    assert _error(
        None, **{"clusters.local.bootstrap_servers": "k:1", "http.web_config_file": str(tmp_path)}
    ) == (f"http.web_config_file: cannot read file '{tmp_path}': Is a directory")


def test_key_file_needs_cert_file(toml: Path) -> None:
    toml.write_text(
        '[clusters.p]\nbootstrap_servers = "k:1"\n[clusters.p.security]\nprotocol = "SSL"\nkey_file = "/k"\n'
    )
    assert _error(toml) == "clusters.p.security.key_file: is set without cert_file"


def test_duplicate_clusters_are_both_named(toml: Path) -> None:
    toml.write_text(
        '[clusters.prod]\nbootstrap_servers = ["a:9092", "b:9092"]\n'
        '[clusters.copy]\nbootstrap_servers = "B:9092"\n'
    )
    assert _error(toml) == (
        "clusters: clusters 'prod' and 'copy' share bootstrap server B:9092: "
        "the same Kafka cluster is configured twice"
    )


def test_one_cluster_may_repeat_a_server(toml: Path) -> None:
    toml.write_text('[clusters.prod]\nbootstrap_servers = ["a:9092", "A:9092"]\n')
    assert load_settings(toml, {}).clusters["prod"].bootstrap_servers == ("a:9092", "A:9092")


def test_duplicate_table_names_the_cluster(toml: Path) -> None:
    toml.write_text('[clusters.a]\nbootstrap_servers = "k:1"\n\n[clusters.a]\nclient_id = "x"\n')
    assert _error(toml) == f"clusters.a: cluster 'a' is declared twice ({toml}, line 4)"
    toml.write_text("[storage]\n[storage]\n")
    assert _error(toml) == f"storage: table [storage] is declared twice ({toml}, line 2)"


def test_duplicate_key_is_named(toml: Path) -> None:
    toml.write_text("[storage]\nintervals = 1\nintervals = 2\n")
    assert _error(toml) == f"storage.intervals: set twice ({toml}, line 3)"


def test_toml_syntax_error(toml: Path) -> None:
    toml.write_text("[storage]\nintervals = \n")
    assert _error(toml) == f"config file: invalid TOML: Invalid value ({toml}, line 2)"


def test_unreadable_or_binary_config_file(tmp_path: Path) -> None:
    assert _error(tmp_path / "missing.toml") == (
        f"config file: cannot read '{tmp_path}/missing.toml': No such file or directory"
    )
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe")
    assert _error(binary) == f"config file: '{binary}' is not UTF-8 text: invalid start byte"


def test_invalid_environment_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAGWATCH_STORAGE__BOGUS", "1")
    assert _error() == "storage.bogus: unknown key"
    monkeypatch.delenv("LAGWATCH_STORAGE__BOGUS")
    monkeypatch.setenv("LAGWATCH_CLUSTERS", "prod")
    assert _error() == (
        "clusters: cannot parse environment variable LAGWATCH_CLUSTERS: "
        "Expecting value: line 1 column 1 (char 0)"
    )


def test_secret_values_never_appear_in_errors() -> None:
    message = _error(None, **{"http.admin_token": ["sup3rsecret"]})
    assert message == "http.admin_token: input should be a valid string"


@pytest.mark.parametrize(
    ("address", "expected"),
    [("k:9092", ("k", 9092)), ("[::1]:7980", ("::1", 7980)), ("10.0.0.1:1", ("10.0.0.1", 1))],
)
def test_split_host_port(address: str, expected: tuple[str, int]) -> None:
    assert split_host_port(address) == expected


def test_listen_may_omit_the_host() -> None:
    http = load_settings(None, {"http.listen": ":0"}).http
    assert (http.host, http.port) == ("", 0)


_HOSTS = st.from_regex(r"[a-z0-9][a-z0-9.-]{0,20}", fullmatch=True)
_SERVERS = st.lists(
    st.tuples(_HOSTS, st.integers(1, 65535)).map(lambda pair: f"{pair[0]}:{pair[1]}"),
    min_size=1,
    max_size=5,
    unique_by=str.lower,
)


@given(_SERVERS, st.sampled_from([",", ", ", " ,"]))
def test_comma_separated_servers_parse_to_the_list(servers: list[str], separator: str) -> None:
    cluster = ClusterSettings.model_validate({"bootstrap_servers": separator.join(servers)})
    assert cluster.bootstrap_servers == tuple(servers)
    for server in servers:
        host, port = split_host_port(server)
        assert f"{host}:{port}" == server


_LEVELS = ("toml", "env", "cli")


@given(st.fixed_dictionaries({}, optional={level: st.integers(1, 10_000) for level in _LEVELS}))
def test_highest_source_that_sets_a_value_wins(values: dict[str, int]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        config = Path(directory) / "c.toml"
        config.write_text(f"[storage]\nintervals = {values['toml']}\n" if "toml" in values else "")
        environment = {"LAGWATCH_STORAGE__INTERVALS": str(values["env"])} if "env" in values else {}
        cli = {"storage.intervals": str(values["cli"])} if "cli" in values else {}
        with mock.patch.dict(os.environ, environment):
            settings = load_settings(config, cli)
    winner = next((values[level] for level in reversed(_LEVELS) if level in values), 10)
    assert settings.storage.intervals == winner


def test_compatibility_sets_are_a_list_and_burrow_compatible_their_deprecated_alias(
    toml: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load_settings(None, {}).metrics.compatible_sets == frozenset()
    toml.write_text('[metrics]\ncompatible = ["burrow", "kafka_exporter"]\n')
    assert load_settings(toml, {}).metrics.compatible_sets == {"burrow", "kafka_exporter"}
    # The old switch keeps working, alone or beside the list.
    toml.write_text("[metrics]\nburrow_compatible = true\n")
    assert load_settings(toml, {}).metrics.compatible_sets == {"burrow"}
    toml.write_text('[metrics]\nburrow_compatible = true\ncompatible = ["kafka_exporter"]\n')
    assert load_settings(toml, {}).metrics.compatible_sets == {"burrow", "kafka_exporter"}
    # Flags and the environment take one comma-separated string (or a JSON list).
    assert load_settings(None, {"metrics.compatible": "kafka_exporter, burrow"}).metrics.compatible == (
        "kafka_exporter",
        "burrow",
    )
    monkeypatch.setenv("LAGWATCH_METRICS__COMPATIBLE", '["kafka_exporter"]')
    assert load_settings(None, {}).metrics.compatible_sets == {"kafka_exporter"}
