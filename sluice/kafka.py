"""Kafka client factories: the one place aiokafka's wide constructors are called."""

from __future__ import annotations

from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError

from sluice.config import KafkaConfig
from sluice.errors import Unreachable


class _Startable(Protocol):
    async def start(self) -> None: ...


async def start(client: _Startable, cfg: KafkaConfig) -> None:
    """Start a producer, consumer or admin client; raises Unreachable (one line for the
    operator) when no broker of ``cfg.bootstrap`` answers."""
    try:
        await client.start()
    except KafkaConnectionError as exc:
        raise Unreachable(f"cannot reach Kafka at {cfg.bootstrap}: {exc}") from exc


def create_producer(cfg: KafkaConfig) -> AIOKafkaProducer:
    """Durable producer: acks=all + idempotence, so an ack means the record is replicated and a
    broker-side retry never duplicates it. Not started; the owner starts and stops it."""
    return AIOKafkaProducer(
        bootstrap_servers=cfg.bootstrap,
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
        "bootstrap_servers": cfg.bootstrap,
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


async def partition_count(cfg: KafkaConfig, topic: str) -> int:
    """Partitions of ``topic`` as the cluster reports them (not as configured: producers and
    the read fence must agree with the real layout). Raises LookupError for a missing topic."""
    admin = AIOKafkaAdminClient(bootstrap_servers=cfg.bootstrap, request_timeout_ms=15_000)
    await start(admin, cfg)
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    for entry in described:
        if entry["topic"] == topic and entry["error_code"] == 0:
            return len(entry["partitions"])
    raise LookupError(f"topic {topic} does not exist; run `sluice migrate`")
