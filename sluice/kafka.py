"""Kafka client factories: the one place aiokafka's wide constructors are called.

Every client (producer, consumer, admin) gets the same connection options from
:func:`connection_options`, so TLS and SASL settings reach ingest, writer, api and migrate alike.
"""

from __future__ import annotations

import ssl
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.conn import create_conn
from aiokafka.errors import KafkaConnectionError, KafkaError
from aiokafka.helpers import create_ssl_context

from schemas.wire import dlq_topic
from sluice.config import KafkaConfig
from sluice.errors import StartupError, Unreachable

# aiokafka's SaslAuthenticationFailedError (Kafka error code 58), matched by code not by text.
_SASL_AUTHENTICATION_FAILED = 58


class KafkaSetupError(StartupError):
    """The cluster refused this client's TLS or SASL settings: retrying will not help, so the
    process stops at start with this one message (the CLI prints it)."""


class _Startable(Protocol):
    async def start(self) -> None: ...


def connection_options(cfg: KafkaConfig) -> dict[str, Any]:
    """Bootstrap servers plus the security options every aiokafka client takes."""
    options: dict[str, Any] = {
        "bootstrap_servers": cfg.bootstrap,
        "security_protocol": cfg.security_protocol,
    }
    if cfg.security_protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = _ssl_context(cfg)
    if cfg.security_protocol.startswith("SASL_"):
        options["sasl_mechanism"] = cfg.sasl_mechanism
        options["sasl_plain_username"] = cfg.sasl_username
        options["sasl_plain_password"] = cfg.sasl_password
    return options


def _ssl_context(cfg: KafkaConfig) -> ssl.SSLContext:
    # Hostname checks stay on (aiokafka's helper enforces it): a broker certificate must name
    # the address in the bootstrap list or in the broker's advertised listener.
    try:
        context: ssl.SSLContext = create_ssl_context(
            cafile=cfg.ssl_cafile or None,
            certfile=cfg.ssl_certfile or None,
            keyfile=cfg.ssl_keyfile or None,
            password=cfg.ssl_key_password or None,
        )
    except (OSError, ssl.SSLError) as exc:
        raise KafkaSetupError(f"Kafka TLS files cannot be loaded: {exc}") from exc
    return context


def create_producer(cfg: KafkaConfig) -> AIOKafkaProducer:
    """Durable producer: acks=all + idempotence, so an ack means the record is replicated and a
    broker-side retry never duplicates it. Not started; the owner starts it with :func:`start`."""
    return AIOKafkaProducer(
        **connection_options(cfg),
        acks="all",
        enable_idempotence=True,
        linger_ms=cfg.linger_ms,
        max_batch_size=cfg.max_batch_bytes,
        max_request_size=cfg.max_batch_bytes,
        request_timeout_ms=cfg.request_timeout_ms,
        compression_type=None,
    )


def create_consumer(cfg: KafkaConfig, group_id: str | None, **overrides: Any) -> AIOKafkaConsumer:
    """Consumer with auto-commit off: offsets are stored in PostgreSQL with the rows."""
    options: dict[str, Any] = {
        **connection_options(cfg),
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "isolation_level": "read_uncommitted",
        "request_timeout_ms": cfg.request_timeout_ms,
        "session_timeout_ms": cfg.session_timeout_ms,
        # Kafka requires heartbeats well inside the session (aiokafka's default is 3 s).
        "heartbeat_interval_ms": min(3_000, cfg.session_timeout_ms // 3),
    }
    options.update(overrides)
    return AIOKafkaConsumer(**options)


def create_admin(cfg: KafkaConfig) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**connection_options(cfg), request_timeout_ms=15_000)


async def start(client: _Startable, cfg: KafkaConfig) -> None:
    """Start a producer, consumer or admin client. When it cannot bootstrap, raise one line for
    the operator: KafkaSetupError when the cluster refused our TLS or SASL settings (aiokafka
    only logs that reason and raises a generic "Unable to bootstrap"), else Unreachable."""
    try:
        await client.start()
    except KafkaConnectionError as exc:
        reason = await refusal_reason(cfg)
        if reason is not None:
            raise KafkaSetupError(reason) from exc
        raise Unreachable(f"cannot reach Kafka at {cfg.bootstrap}: {exc}") from exc


async def refusal_reason(cfg: KafkaConfig) -> str | None:
    """Connect once to each bootstrap server with our settings; the reason the first server
    that answers refused us (certificate, SASL mechanism or credentials), None if none did."""
    if cfg.security_protocol == "PLAINTEXT":
        return None  # nothing to refuse: the cluster was unreachable
    options = connection_options(cfg)
    for server in cfg.bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            conn = await create_conn(
                host,
                int(port),
                ssl_context=options.get("ssl_context"),
                security_protocol=cfg.security_protocol,
                sasl_mechanism=options.get("sasl_mechanism", "PLAIN"),
                sasl_plain_username=options.get("sasl_plain_username"),
                sasl_plain_password=options.get("sasl_plain_password"),
                request_timeout_ms=10_000,
            )
        except ssl.SSLError as exc:
            return f"Kafka at {server} failed the TLS handshake ({exc.reason or exc}); {_TLS_HINT}"
        except KafkaError as exc:
            return _sasl_refusal(cfg, server, exc)
        except (OSError, TimeoutError):
            continue  # unreachable: not a refusal; try the next server
        conn.close()
    return None


_TLS_HINT = "check SLUICE_KAFKA_SSL_CAFILE and that the certificate names the broker's address"


def _sasl_refusal(cfg: KafkaConfig, server: str, exc: KafkaError) -> str:
    if getattr(exc, "errno", None) == _SASL_AUTHENTICATION_FAILED:
        return (
            f"Kafka at {server} rejected the credentials of user {cfg.sasl_username!r} "
            f"({cfg.sasl_mechanism}): check SLUICE_KAFKA_SASL_USERNAME and "
            "SLUICE_KAFKA_SASL_PASSWORD (or SLUICE_KAFKA_SASL_PASSWORD_FILE)"
        )
    return f"Kafka at {server} refused the connection: {exc}"


def deployment_topics(cfg: KafkaConfig) -> tuple[str, ...]:
    """Every topic a deployment uses: metrics and traces with their dead-letter topics, and the
    webhooks topic (internal: no dead letters). `sluice migrate` creates them, `doctor` checks
    them: one list, so a new topic cannot be created but left unchecked."""
    return (
        cfg.topic,
        dlq_topic(cfg.topic),
        cfg.traces_topic,
        dlq_topic(cfg.traces_topic),
        cfg.webhooks_topic,
    )


async def partition_count(cfg: KafkaConfig, topic: str) -> int:
    """Partitions of ``topic`` as the cluster reports them (not as configured: producers and
    the read fence must agree with the real layout). Raises LookupError for a missing topic."""
    admin = create_admin(cfg)
    await start(admin, cfg)
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    for entry in described:
        if entry["topic"] == topic and entry["error_code"] == 0:
            return len(entry["partitions"])
    raise LookupError(f"topic {topic} does not exist; run `sluice migrate`")
