"""Extra api processes for the webhook tests, each on a database of its own
(``Stack.create_database``): webhooks and the outbox are global to a database, and the
session's apis deliver and relay over theirs."""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.stack import Ports, Stack


def start_api(stack: Stack, name: str, dsn: str, topic: str, **settings: str) -> str:
    """An api process named ``name`` on ``dsn`` publishing webhook events to ``topic``; its
    base URL."""
    port = Ports.free().api
    stack.start(
        "api",
        name,
        port,
        SLUICE_PG_DSN=dsn,
        SLUICE_API_PORT=str(port),
        SLUICE_KAFKA_WEBHOOKS_TOPIC=topic,
        **settings,
    )
    return f"http://127.0.0.1:{port}"


async def create_topic(stack: Stack, topic: str) -> None:
    """A one-partition topic (the session's broker does not create topics on first use)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
