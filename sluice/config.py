"""One frozen configuration, parsed once from ``SLUICE_*`` environment variables.

Each field's environment name is its path in upper case: ``Settings.kafka.bootstrap`` is
``SLUICE_KAFKA_BOOTSTRAP``, ``Settings.port`` is ``SLUICE_PORT``. Values are cast by annotation;
a ``Literal`` annotation lists the only values accepted. An unknown ``SLUICE_*`` variable is an
error (a typo must not silently fall back to a default), except the few read only by the shell
scripts in ``scripts/`` (listed in ``SCRIPT_VARIABLES``). Only the CLI calls :func:`load`;
nothing else reads ``os.environ``. The comment beside each field is its documentation:
``sluice config`` shows it (``sluice.settings_doc``).

Any setting may instead come from a file: ``NAME_FILE=/path`` reads the value of ``NAME`` from
that file (one trailing newline dropped), the way container secrets are mounted. Setting both
``NAME`` and ``NAME_FILE`` is an error. Secret fields (``repr=False``) are masked wherever
settings are shown.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

PREFIX = "SLUICE_"
FILE_SUFFIX = "_FILE"

# Read by scripts/*.sh (service provisioning), never by the Python services.
SCRIPT_VARIABLES = frozenset(
    {
        "SLUICE_STATE_DIR",
        "SLUICE_VENV",
        "SLUICE_PYTHON",
        "SLUICE_PG_PORT",
        "SLUICE_PG_DB",
        "SLUICE_PG_BIN",
        "SLUICE_PG_OS_USER",
        "SLUICE_PG_TIMEOUT",
        "SLUICE_PGHA_PORT",
        "SLUICE_KAFKA_PORT",
        "SLUICE_KAFKA_CONTROLLER_PORT",
        "SLUICE_KAFKA_BROKERS",
        "SLUICE_KAFKA_HEAP",
        "SLUICE_KAFKA_JVM_OPTS",
        "SLUICE_KAFKA_LIBS",
        "SLUICE_KAFKA_START_TIMEOUT",
        "SLUICE_KAFKA_STOP_TIMEOUT",
        "SLUICE_KAFKA_BROKER_SESSION_MS",
        "SLUICE_KAFKA_GROUP_MIN_SESSION_MS",
        "SLUICE_KAFKA_SASL_SSL_PORT",
        "SLUICE_KAFKA_TLS_DIR",
        "SLUICE_HELM_VERSION",
        "SLUICE_S3_PORT",
        "SLUICE_S3_START_TIMEOUT",
        "SLUICE_MLFLOW_REF_PORT",
        "SLUICE_MLFLOW_REF_BACKEND_URI",
        "SLUICE_KEEP_TEST_STATE",
    }
)


class ConfigError(Exception):
    """A variable is unknown, or its value cannot be cast to the field's type."""


@dataclass(frozen=True, slots=True)
class KafkaConfig:
    bootstrap: str = "127.0.0.1:9092"  # broker list, host:port[,host:port]
    topic: str = "sluice.metrics.v1"  # metric records, key = run id
    traces_topic: str = "sluice.traces.v1"  # span batches and trace infos, key = trace id
    # Registry changes webhooks subscribe to (api -> its deliverer), key = registered model name
    webhooks_topic: str = "sluice.webhooks.v1"
    partitions: int = 8  # topic partitions; the writer group scales up to this many processes
    replication_factor: int = 1  # 3 in production (with min.insync.replicas=2)
    min_insync_replicas: int = 1  # topic setting applied by `sluice migrate`
    produce_deadline_s: float = 5.0  # ingest answers 429 if the broker has not acked by then
    linger_ms: int = 2  # producer batching delay: trades ~2 ms latency for far fewer requests
    max_batch_bytes: int = 1_048_576  # producer per-partition buffer
    request_timeout_ms: int = 30_000  # aiokafka request timeout
    session_timeout_ms: int = 10_000  # consumer group session: a silent writer loses its partitions
    # Managed clusters: TLS (SSL), a SASL login (SASL_PLAINTEXT), or both (SASL_SSL).
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    # SASL login mechanism (security_protocol SASL_*); managed services mostly offer SCRAM.
    sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = "SCRAM-SHA-512"
    sasl_username: str = ""  # SASL user (security_protocol SASL_*)
    sasl_password: str = field(default="", repr=False)  # its password; or ..._PASSWORD_FILE
    ssl_cafile: str = ""  # PEM bundle that signs the brokers' certificates; "" = system CAs
    ssl_certfile: str = ""  # client certificate (PEM) when the brokers require mutual TLS
    ssl_keyfile: str = ""  # its private key (PEM)
    ssl_key_password: str = field(default="", repr=False)  # if that key is encrypted

    def __post_init__(self) -> None:
        # Checked at load, not at the first connection: every service stops at start.
        if self.security_protocol.startswith("SASL_") and not (
            self.sasl_username and self.sasl_password
        ):
            raise ConfigError(
                f"SLUICE_KAFKA_SECURITY_PROTOCOL={self.security_protocol} needs "
                "SLUICE_KAFKA_SASL_USERNAME and SLUICE_KAFKA_SASL_PASSWORD (or _FILE)"
            )


@dataclass(frozen=True, slots=True)
class PgConfig:
    dsn: str = "postgresql://postgres@127.0.0.1:5433/sluice"  # asyncpg DSN
    pool_min: int = 1  # connections kept open per process
    pool_max: int = 10  # upper bound per process; acquire waits at most acquire_timeout_s
    acquire_timeout_s: float = 5.0  # pool acquire deadline; past it the request gets a 429
    command_timeout_s: float = 30.0  # statement deadline


@dataclass(frozen=True, slots=True)
class IngestConfig:
    host: str = "127.0.0.1"  # address ingest listens on
    port: int = 5001  # ingest HTTP port (MLflow write calls)
    max_body_bytes: int = 4 * 1024 * 1024  # legal MLflow batches reach ~1.5 MB; refuse above this
    run_cache_ttl_s: float = 5.0  # how long an "active run" answer is trusted (NOTIFY invalidates)
    run_cache_size: int = 100_000  # bound on cached run states
    # MLflow 2.x EndTrace waits this long for its trace's StartTrace to be stored (then 429)
    end_trace_deadline_s: float = 10.0


@dataclass(frozen=True, slots=True)
class WriterConfig:
    group_id: str = "sluice-writer"  # Kafka consumer group of all writer processes
    batch_max_rows: int = 20_000  # flush when this many metric rows are buffered
    batch_max_age_s: float = 0.2  # ... or when the oldest buffered record is this old
    fetch_max_records: int = 5_000  # records per getmany() call
    metrics_port: int = 5003  # /health and /metrics of the writer process (`up`: +i for the i-th)
    processes: int = 1  # writer processes `sluice up` runs (useful up to the partition count)
    host: str = "127.0.0.1"  # address of the writer's /health and /metrics


@dataclass(frozen=True, slots=True)
class ApiConfig:
    host: str = "127.0.0.1"  # address the api listens on
    port: int = 5002  # api HTTP port (reads, lifecycle, registry, artifacts)
    read_fence_deadline_s: float = 10.0  # a read waits this long for acknowledged writes
    artifact_root: str = "./.state/artifacts"  # local folder, or s3://bucket/prefix
    artifact_s3_endpoint_url: str = ""  # S3 API endpoint; empty = AWS default (tests: moto)
    artifact_s3_timeout_s: float = 60.0  # connect/read deadline of each S3 call (botocore)
    artifact_upload_part_bytes: int = 8 * 1024 * 1024  # S3 part size: an upload's memory bound
    # Client multipart (mpu/*): part URLs (S3 presigned, local staging) are valid this long.
    artifact_mpu_expiry_s: int = 3600
    # Local root only: where parts wait for complete; "" = "<artifact_root>.mpu" beside the root.
    artifact_mpu_staging_dir: str = ""
    # Origin clients reach the api at (e.g. https://mlflow.example.com[/prefix]); local part
    # URLs name it. "" = the request's X-Forwarded-Host/-Proto, else its Host.
    public_url: str = ""
    max_body_bytes: int = 4 * 1024 * 1024  # largest request body the api reads
    # The local artifact root (and its multipart staging) is one filesystem every api process
    # sees (NFS, a shared volume). Required when more than one api runs on a local root.
    artifact_root_shared: bool = False
    ui_enabled: bool = True  # serve the MLflow web UI on / (false: headless deployments)
    ui_dir: str = "./.state/ui/mlflow-3.17.2"  # the bundle scripts/ui-bundle.sh unpacks


@dataclass(frozen=True, slots=True)
class AuthConfig:
    enabled: bool = False  # off for `make up`; on: every route but health needs credentials
    # What a user without a grant may do (MLflow's default: READ).
    default_permission: Literal["READ", "EDIT", "MANAGE", "NO_PERMISSIONS"] = "READ"
    cache_ttl_s: float = 5.0  # how long identities and grants are trusted between lookups
    # Requests per second per user and service (token bucket); 0 = unlimited. Each of the
    # service's `instances` processes enforces its share (rate / instances, burst / instances).
    rate_per_s: float = 0.0
    rate_burst: int = 200  # bucket size: short bursts above the rate are fine


@dataclass(frozen=True, slots=True)
class WebhooksConfig:
    """Model registry webhooks (MLflow 3.3+): who may be called and how deliveries retry."""

    # This api process consumes the webhooks topic and POSTs the deliveries (one consumer group
    # over every api process); false on api processes that should only serve requests.
    deliver: bool = True
    group_id: str = "sluice-webhooks"  # Kafka consumer group of the deliverers
    # URL schemes a webhook may use (comma list; MLflow's MLFLOW_WEBHOOK_ALLOWED_SCHEMES).
    allowed_schemes: str = "https"
    # Allow targets that resolve to private, loopback or link-local addresses (SSRF protection
    # off; MLflow's MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS). Local development and tests only.
    allow_private: bool = False
    request_timeout_s: float = 30.0  # deadline of one POST (connect, send, answer)
    resolve_timeout_s: float = 5.0  # deadline of the DNS lookup of a webhook's host
    # Attempts per delivery before it is given up (MLflow: 1 + 3 retries). Retried: connection
    # errors, timeouts and 429/500/502/503/504, as MLflow does.
    max_attempts: int = 4
    backoff_base_s: float = 1.0  # wait before retry n: base * 2**(n-1), capped, plus jitter
    backoff_max_s: float = 60.0  # cap of one wait (a Retry-After above it is capped too)
    max_in_flight: int = 16  # deliveries of one event to its webhooks running at once
    # How often each api process's outbox relay (api/webhooks/outbox.py) publishes the
    # registry events a request could not hand to Kafka.
    outbox_relay_every_s: float = 5.0
    # How old an outbox event must be before the relay takes it: longer than a request's
    # produce deadline, so a request still publishing its own event is left alone.
    outbox_grace_s: float = 30.0
    # Fernet keys that encrypt webhook secrets at rest (comma list: the first encrypts, all
    # decrypt, for rotation). Empty: secrets are stored in plain text (a start-up warning).
    secret_keys: str = field(default="", repr=False)

    @property
    def schemes(self) -> tuple[str, ...]:
        return tuple(s.strip() for s in self.allowed_schemes.split(",") if s.strip())


@dataclass(frozen=True, slots=True)
class HaConfig:
    """`sluice up-ha`: the production shape on one machine (docs/capacity.md)."""

    ingest_processes: int = 2  # ingest processes behind HAProxy
    api_processes: int = 2  # api processes behind HAProxy (artifacts must be shared: S3)
    writer_processes: int = 2  # writers in the consumer group (useful up to the partitions)
    # Process i (from 0) of a service listens on the service's port + i * port_stride; the
    # writers' health ports are writer.metrics_port + i.
    port_stride: int = 10
    haproxy_bin: str = ""  # "" = found on PATH or installed by scripts/haproxy.sh
    balancer_stats_port: int = 8404  # HAProxy's Prometheus /metrics and /health


@dataclass(frozen=True, slots=True)
class Settings:
    port: int = 5000  # the single MLflow endpoint `sluice up` serves (routes to ingest/api)
    host: str = "127.0.0.1"  # address the front (`sluice up`, `sluice front`) listens on
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"  # JSON log lines on stderr
    access_log: bool = False  # one JSON line per HTTP request (logger sluice.access) on stderr
    # OTLP/HTTP traces URL for Sluice's own spans (e.g. http://collector:4318/v1/traces); "" = off
    otel_endpoint: str = ""
    # Processes of this service behind the balancer (`sluice up-ha` sets it): per-process
    # shares of deployment-wide limits, and the artifact root check of the api.
    instances: int = 1
    kafka: KafkaConfig = field(default_factory=KafkaConfig)
    pg: PgConfig = field(default_factory=PgConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    writer: WriterConfig = field(default_factory=WriterConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    webhooks: WebhooksConfig = field(default_factory=WebhooksConfig)
    ha: HaConfig = field(default_factory=HaConfig)


T = TypeVar("T")


def load(environ: Mapping[str, str]) -> Settings:
    """Build the settings from ``environ``; raise ConfigError on unknown or malformed variables."""
    known: set[str] = set()
    settings = _build(Settings, environ, PREFIX, known)
    unknown = sorted(
        k
        for k in environ
        if k.startswith(PREFIX)
        and k not in known
        and k.removesuffix(FILE_SUFFIX) not in known
        and k not in SCRIPT_VARIABLES
    )
    if unknown:
        raise ConfigError(f"unknown configuration variable(s): {', '.join(unknown)}")
    return settings


def instance_share(settings: Settings) -> Settings:
    """This process's settings when ``instances`` processes of its service share the load: the
    per-user rate limit is deployment-wide, so each process enforces rate / instances (burst /
    instances, at least 1). The balancer spreads requests round-robin, so the sum stays the
    configured rate without a shared counter on every request."""
    n = max(1, settings.instances)
    auth = dataclasses.replace(
        settings.auth,
        rate_per_s=settings.auth.rate_per_s / n,
        rate_burst=max(1, math.ceil(settings.auth.rate_burst / n)),
    )
    return dataclasses.replace(settings, auth=auth)


def require_shared_artifacts(settings: Settings) -> None:
    """Several api processes must see one artifact store: files written through one (and the
    multipart parts staged by one) are read, listed and completed through any other. S3 is
    shared by nature; a local root only when the operator says it is a shared filesystem."""
    api = settings.api
    if settings.instances <= 1 or api.artifact_root.startswith("s3://"):
        return
    if not api.artifact_root_shared:
        raise ConfigError(
            f"SLUICE_INSTANCES={settings.instances} api processes need one artifact store: set"
            " SLUICE_API_ARTIFACT_ROOT to s3://bucket/prefix, or to a folder every api process"
            " mounts (NFS, a shared volume) and SLUICE_API_ARTIFACT_ROOT_SHARED=true"
            f" (now: local {api.artifact_root!r}, not shared)"
        )


def env_names(cls: type[Any] = Settings, prefix: str = PREFIX) -> list[str]:
    """Every environment variable name the configuration reads (used by compose checks)."""
    names: list[str] = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        name = prefix + f.name.upper()
        if dataclasses.is_dataclass(hint):
            names.extend(env_names(typing.cast(type[Any], hint), name + "_"))
        else:
            names.append(name)
    return names


def _build(cls: type[T], environ: Mapping[str, str], prefix: str, known: set[str]) -> T:
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        hint = hints[f.name]
        name = prefix + f.name.upper()
        if dataclasses.is_dataclass(hint):
            values[f.name] = _build(typing.cast(type[Any], hint), environ, name + "_", known)
            continue
        known.add(name)
        raw = _raw_value(name, environ)
        if raw is not None:
            values[f.name] = _cast(name, raw, hint)
    return cls(**values)


def _raw_value(name: str, environ: Mapping[str, str]) -> str | None:
    """NAME's value, from NAME itself or from the file NAME_FILE points to."""
    path = environ.get(name + FILE_SUFFIX)
    if path is None:
        return environ.get(name)
    if name in environ:
        raise ConfigError(f"{name} and {name}{FILE_SUFFIX} are both set; keep one")
    try:
        with open(path, encoding="utf-8") as secret:
            return secret.read().removesuffix("\n")
    except OSError as exc:
        raise ConfigError(f"{name}{FILE_SUFFIX}={path!r} cannot be read: {exc.strerror}") from exc


def _cast(name: str, raw: str, hint: Any) -> Any:
    if isinstance(hint, types.UnionType):
        raise ConfigError(f"{name}: union types are not supported")
    if typing.get_origin(hint) is Literal:
        allowed = typing.get_args(hint)
        if raw not in allowed:
            raise ConfigError(f"{name}={raw!r} is not one of: {', '.join(allowed)}")
        return raw
    try:
        if hint is bool:
            return _cast_bool(raw)
        return hint(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}={raw!r} is not a valid {hint.__name__}") from exc


def _cast_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(raw)
