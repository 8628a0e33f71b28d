"""lagwatch's configuration: the pydantic-settings model, its sections and their value types.

`settings_sources.load_settings` builds it from its sources (defaults, TOML file, environment, CLI flags);
invalid input ends as one `config_errors.ConfigError` whose message is a single line naming the field.
docs/configuration.md is the reference for every option.
"""

from __future__ import annotations

import os
import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from exporter.setting_values import readable, split_host_port, split_list

ENV_PREFIX = "LAGWATCH_"
ENV_DELIMITER = "__"
DEFAULT_CLUSTER = "local"
DEFAULT_BOOTSTRAP_SERVER = "127.0.0.1:9092"
DEFAULT_PORT = 7980
SECRET_MASK = "********"

_CLUSTER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_SASL_PROTOCOLS = ("SASL_PLAINTEXT", "SASL_SSL")
_SSL_PROTOCOLS = ("SSL", "SASL_SSL")


class StartupError(Exception):
    """A start-up failure the user can fix (port taken, permission denied, state directory unwritable);
    `str(error)` is one line naming the setting and the cause. The command line exits 2 without traceback."""


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


LogLevel = Annotated[Literal["debug", "info", "warning", "error"], BeforeValidator(_lower)]
SecurityProtocol = Annotated[
    Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"], BeforeValidator(_upper)
]
SaslMechanism = Annotated[Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"], BeforeValidator(_upper)]
OffsetsSource = Annotated[Literal["offsets-topic", "admin-api"], BeforeValidator(_lower)]
Granularity = Annotated[Literal["partition", "group"], BeforeValidator(_lower)]
"""`[metrics] granularity`, also the renderer's: "group" drops every family with a `partition` label."""
CompatibleSet = Annotated[Literal["burrow", "kafka_exporter"], BeforeValidator(_lower)]
"""A set of other exporters' metric names (`[metrics] compatible`), also the renderer's."""
Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]
"""A duration in seconds, strictly positive."""
NonNegativeSeconds = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SecuritySettings(_Section):
    """How lagwatch authenticates to one Kafka cluster."""

    protocol: SecurityProtocol = Field(
        default="PLAINTEXT", description="Security protocol of the Kafka listener."
    )
    sasl_mechanism: SaslMechanism = Field(
        default="PLAIN", description="SASL mechanism, used with SASL_* protocols."
    )
    sasl_username: str = Field(
        default="", validate_default=True, description="SASL user name, required with SASL_* protocols."
    )
    sasl_password: SecretStr = Field(default=SecretStr(""), description="SASL password.")
    ca_file: str = Field(default="", description="PEM file of the CA that signed the brokers' certificates.")
    cert_file: str = Field(
        default="", description="PEM client certificate, for brokers that require TLS client auth."
    )
    key_file: str = Field(default="", description="PEM private key of the client certificate.")
    key_password: SecretStr = Field(default=SecretStr(""), description="Password of the private key.")
    check_hostname: bool = Field(
        default=True, description="Check that the broker certificate matches its host name."
    )

    @field_validator("sasl_username")
    @classmethod
    def _username_with_sasl(cls, value: str, info: ValidationInfo) -> str:
        protocol = info.data.get("protocol")
        if protocol in _SASL_PROTOCOLS and not value:
            raise ValueError(f"required when protocol is {protocol}")
        return value

    @field_validator("ca_file", "cert_file", "key_file")
    @classmethod
    def _tls_file(cls, value: str, info: ValidationInfo) -> str:
        protocol = info.data.get("protocol")
        if value and protocol is not None and protocol not in _SSL_PROTOCOLS:
            raise ValueError(f"is set but protocol is {protocol}; use SSL or SASL_SSL")
        if info.field_name == "key_file" and value and info.data.get("cert_file") == "":
            raise ValueError("is set without cert_file")
        readable(value)
        return value


class ClusterSettings(_Section):
    """One Kafka cluster; its name in `[clusters.<name>]` is the `kafka_cluster` label."""

    bootstrap_servers: Annotated[tuple[str, ...], NoDecode, BeforeValidator(split_list)] = Field(
        description="Kafka bootstrap servers as host:port, a list or one comma-separated string."
    )
    client_id: str = Field(
        default="lagwatch", min_length=1, description="Client id lagwatch sends to the brokers."
    )
    offsets_source: OffsetsSource = Field(
        default="offsets-topic",
        description="Where committed offsets come from: 'offsets-topic' (read __consumer_offsets, like "
        "Burrow) or 'admin-api' (poll OffsetFetch every offset_refresh).",
    )
    offsets_topic: str = Field(
        default="__consumer_offsets", min_length=1, description="Name of the offsets topic."
    )
    start_latest: bool = Field(
        default=False, description="Start reading the offsets topic at its end instead of replaying it."
    )
    offset_refresh: Seconds = Field(
        default=10.0, description="Seconds between fetches of the partitions' HEAD (log-end) offsets."
    )
    topic_refresh: Seconds = Field(default=60.0, description="Seconds between refreshes of the topic list.")
    admin_concurrency: int = Field(
        default=16, ge=1, description="admin-api source: maximum concurrent OffsetFetch requests."
    )
    request_timeout: Seconds = Field(default=30.0, description="Seconds before a Kafka request times out.")
    security: SecuritySettings = SecuritySettings()

    @field_validator("bootstrap_servers")
    @classmethod
    def _servers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("at least one host:port is required")
        for server in value:
            split_host_port(server)
        return value


class StorageSettings(_Section):
    """How many commits are kept per group-partition and for how long (Burrow's storage module)."""

    intervals: int = Field(
        default=10,
        ge=1,
        description="Commits kept per group-partition; also the length of the HEAD offset history.",
    )
    min_distance: NonNegativeSeconds = Field(
        default=0.0, description="Commits closer than this many seconds to the previous one replace it."
    )
    expire_group: Seconds = Field(
        default=604800.0, description="Seconds without a commit after which a group is dropped."
    )


class EvaluatorSettings(_Section):
    """Thresholds of Burrow's evaluation rules."""

    allowed_lag: int = Field(
        default=0, ge=0, description="Lag at or below which a partition counts as caught up."
    )
    minimum_complete: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Windows filled to less than this fraction are reported OK without evaluation.",
    )


class FilterSettings(_Section):
    """Regular expressions selecting groups and topics (unanchored, as in Burrow); empty means no filter."""

    group_allow: str = Field(default="", description="Only groups matching this regex are watched.")
    group_deny: str = Field(default="", description="Groups matching this regex are ignored.")
    topic_allow: str = Field(default="", description="Only topics matching this regex are watched.")
    topic_deny: str = Field(default="", description="Topics matching this regex are ignored.")

    @field_validator("group_allow", "group_deny", "topic_allow", "topic_deny")
    @classmethod
    def _regex(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as error:
            raise ValueError(f"invalid regular expression {value!r}: {error}") from None
        return value


class HttpSettings(_Section):
    """The HTTP server: /metrics, the Burrow-compatible API and health endpoints."""

    listen: str = Field(
        default=f"0.0.0.0:{DEFAULT_PORT}",
        description="Address to listen on, host:port ([::]:port for IPv6, :port for every interface).",
    )
    web_config_file: str = Field(
        default="", description="Prometheus exporter-toolkit web config file (TLS, basic auth)."
    )
    admin_token: SecretStr = Field(
        default=SecretStr(""), description="Bearer token enabling the DELETE endpoints; empty disables them."
    )
    header_timeout: Seconds = Field(
        default=10.0,
        description="Seconds a new connection has to send its first request's head (and TLS handshake).",
    )
    read_timeout: Seconds = Field(default=30.0, description="Seconds a request's body has to arrive.")
    idle_timeout: Seconds = Field(
        default=60.0,
        description="Seconds a keep-alive connection may wait for its next complete request.",
    )
    max_connections: int = Field(
        default=512,
        ge=1,
        description="Open connections at most; at the limit the oldest one without a request closes.",
    )

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        split_host_port(value, allow_empty_host=True)
        return value

    @field_validator("web_config_file")
    @classmethod
    def _web_config(cls, value: str) -> str:
        readable(value)
        return value

    @property
    def host(self) -> str:
        """Host part of `listen`; empty means every interface."""
        return split_host_port(self.listen, allow_empty_host=True)[0]

    @property
    def port(self) -> int:
        return split_host_port(self.listen, allow_empty_host=True)[1]


class MetricsSettings(_Section):
    """What /metrics exposes."""

    granularity: Granularity = Field(
        default="partition",
        description="'partition' exports per-partition series, 'group' only per-group series.",
    )
    compatible: Annotated[tuple[CompatibleSet, ...], NoDecode, BeforeValidator(split_list)] = Field(
        default=(),
        description="Other exporters' metric names to export as well: 'burrow' (Burrow's own /metrics), "
        "'kafka_exporter' (danielqsj/kafka_exporter's lag families); a list or one comma-separated string.",
    )
    burrow_compatible: bool = Field(
        default=False,
        description="Deprecated: the same as 'burrow' in compatible, which it is added to.",
    )
    max_series: int = Field(
        default=1_000_000,
        ge=1,
        description="Upper bound on the number of exported lag series, a guard against cardinality blow-ups.",
    )

    @field_validator("compatible")
    @classmethod
    def _unique(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        repeated = sorted({name for name in value if value.count(name) > 1})
        if repeated:
            raise ValueError(f"{', '.join(repeated)} listed more than once")
        return value

    @property
    def compatible_sets(self) -> frozenset[str]:
        """The compatibility sets in effect: `compatible`, plus 'burrow' for the deprecated switch."""
        return frozenset(self.compatible) | ({"burrow"} if self.burrow_compatible else set())


def _default_state_dir() -> str:
    # The XDG base directory spec's place for state that should survive a restart but is not worth a backup.
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "lagwatch")


class LagSecondsSettings(_Section):
    """Lag in seconds (docs/lag-seconds.md): the HEAD history it interpolates on, where that history is kept
    across restarts, and the exact reads that answer what interpolation cannot."""

    enabled: bool = Field(default=True, description="Compute and export lag in seconds.")
    span: Seconds = Field(
        default=3600.0,
        description="Seconds of HEAD history kept per partition: lags up to this are interpolated, older "
        "ones need an exact read.",
    )
    state_dir: str = Field(
        default_factory=_default_state_dir,
        description="Directory of the HEAD history files (heads-<cluster>.bin), saved every 300 s and at "
        "shutdown and read at start; empty keeps the history in memory only.",
    )
    exact_reads: bool = Field(
        default=True,
        description="Read the record at a committed offset where interpolation cannot answer (needs Read "
        "permission on the topics).",
    )
    exact_read_concurrency: int = Field(
        default=4, ge=1, description="Exact reads in flight per cluster, at most (one consumer each)."
    )
    exact_reads_per_second: float = Field(
        default=20.0,
        gt=0,
        allow_inf_nan=False,
        description="Exact reads started per second and cluster, at most.",
    )


def _default_clusters() -> dict[str, ClusterSettings]:
    return {DEFAULT_CLUSTER: ClusterSettings(bootstrap_servers=(DEFAULT_BOOTSTRAP_SERVER,))}


class Settings(BaseSettings):
    """The whole configuration. Build it with `load_settings`; `Settings()` alone skips the TOML file."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_DELIMITER,
        extra="forbid",
        frozen=True,
    )

    log_level: LogLevel = Field(default="info", description="Log level.")
    full_collection_every: Seconds = Field(
        default=600.0,
        description="Seconds between the full collections of Python's cycle collector that include what "
        "evaluation rounds froze (docs/architecture.md).",
    )
    clusters: dict[str, ClusterSettings] = Field(default_factory=_default_clusters)
    storage: StorageSettings = StorageSettings()
    evaluator: EvaluatorSettings = EvaluatorSettings()
    filters: FilterSettings = FilterSettings()
    http: HttpSettings = HttpSettings()
    metrics: MetricsSettings = MetricsSettings()
    lag_seconds: LagSecondsSettings = Field(default_factory=LagSecondsSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings

    @field_validator("clusters")
    @classmethod
    def _clusters(cls, value: dict[str, ClusterSettings]) -> dict[str, ClusterSettings]:
        if not value:
            raise ValueError("at least one cluster is required")
        owner: dict[tuple[str, int], str] = {}
        for name, cluster in value.items():
            if _CLUSTER_NAME.fullmatch(name) is None:
                raise ValueError(f"cluster name {name!r} may only hold letters, digits, '.', '_' and '-'")
            for server in cluster.bootstrap_servers:
                host, port = split_host_port(server)
                key = (host.lower(), port)
                if owner.setdefault(key, name) != name:
                    raise ValueError(
                        f"clusters {owner[key]!r} and {name!r} share bootstrap server {server}: "
                        "the same Kafka cluster is configured twice"
                    )
        return value

    def redacted(self) -> dict[str, Any]:
        """The configuration as plain JSON-compatible data, non-empty secrets replaced by `SECRET_MASK`."""
        return {key: _redact(value) for key, value in self.model_dump().items()}


def _redact(value: object) -> object:
    if isinstance(value, SecretStr):
        return SECRET_MASK if value.get_secret_value() else ""
    if isinstance(value, dict):
        return {key: _redact(item) for key, item in value.items()}
    if isinstance(value, tuple | list):
        return [_redact(item) for item in value]
    return value
