"""The deliverer: consumes the webhooks topic and POSTs each event to the webhooks subscribed
to it, off every request path. It runs in the api processes (``SLUICE_WEBHOOKS_DELIVER``),
one Kafka consumer group over all of them, so each event is delivered by one process.

OFFSETS. A record's offset is committed only when every delivery of its event has ended:
delivered, or given up after ``max_attempts`` (counted and logged). A process that dies in
between leaves the record uncommitted, and the next owner of the partition delivers it again:
deliveries are at least once, and a repeat carries the same ``X-MLflow-Delivery-Id``
(api/webhooks/signing.py). Records of one partition are handled one after the other, so the
events of one registered model (the record key) reach a webhook in order.

BOUNDS. One event's deliveries run concurrently, at most ``max_in_flight`` at once; each
attempt has the request deadline; the waits between attempts grow exponentially up to
``backoff_max_s``. The longest an event can hold its partition is therefore about
``max_attempts * request_timeout_s`` plus the waits (~2 minutes with the defaults), inside the
consumer's poll interval.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError

from api.webhooks import store
from api.webhooks.sender import Attempt, Sender, backoff_s
from api.webhooks.signing import body_of, delivery_id, headers
from schemas.webhook_events import EventRecord, InvalidEventRecord, decode
from sluice import metrics
from sluice.config import WebhooksConfig

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


class Deliverer:
    def __init__(
        self,
        cfg: WebhooksConfig,
        pool: asyncpg.Pool,
        sender: Sender,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._cfg = cfg
        self._pool = pool
        self._sender = sender
        self._sleep = sleep
        self._clock = clock
        self._slots = asyncio.Semaphore(cfg.max_in_flight)

    # -- the consumer loop ----------------------------------------------------------------------

    async def run(self, consumer: AIOKafkaConsumer) -> None:
        """Consume until cancelled; the consumer is started and subscribed by the caller."""
        while True:
            batches = await consumer.getmany(timeout_ms=1000, max_records=100)
            for tp, records in batches.items():
                for record in records:
                    await self.handle(record.value, record.key)
                    await _commit(consumer, tp, record.offset + 1)

    async def handle(self, value: bytes, key: bytes | None) -> None:
        """Every delivery of one record's event, to its end (never raises for a bad record)."""
        try:
            record = decode(value, key)
        except InvalidEventRecord as exc:
            metrics.webhook_deliveries_total.labels(outcome="unreadable").inc()
            log.error("webhook event record skipped", extra={"reason": str(exc)})
            return
        hooks = await self._subscribers(record)
        await asyncio.gather(*(self._bounded(record, hook) for hook in hooks))

    async def _subscribers(self, record: EventRecord) -> list[asyncpg.Record]:
        # PostgreSQL down: wait and retry; the record stays uncommitted meanwhile.
        delay = self._cfg.backoff_base_s
        while True:
            try:
                return await store.subscribers(self._pool, record.event)
            except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                log.warning("webhook subscribers not readable", extra={"error": repr(exc)})
                await self._sleep(delay)
                delay = min(delay * 2, self._cfg.backoff_max_s)

    async def _bounded(self, record: EventRecord, hook: Any) -> None:
        async with self._slots:
            await self.deliver(record, hook["webhook_id"], hook["url"], hook["secret"])

    # -- one delivery ---------------------------------------------------------------------------

    async def deliver(
        self, record: EventRecord, webhook_id: str, url: str, secret: str | None
    ) -> bool:
        """POST the event until it is delivered, refused or out of attempts."""
        body = body_of(record)
        delivery = delivery_id(record.event_id, webhook_id)
        attempt, n = Attempt(), 0
        for n in range(1, self._cfg.max_attempts + 1):
            attempt = await self._sender.post(
                url, body, headers(secret, delivery, int(self._clock()), body)
            )
            metrics.webhook_attempts_total.labels(result=_result(attempt)).inc()
            if attempt.delivered:
                metrics.webhook_deliveries_total.labels(outcome="delivered").inc()
                return True
            if not attempt.retryable or n == self._cfg.max_attempts:
                break
            await self._sleep(
                backoff_s(
                    n,
                    self._cfg.backoff_base_s,
                    self._cfg.backoff_max_s,
                    random.random(),
                    attempt.retry_after_s,
                )
            )
        outcome = "refused" if attempt.error and attempt.error.startswith("refused") else "given_up"
        metrics.webhook_deliveries_total.labels(outcome=outcome).inc()
        log.error(
            "webhook delivery given up",
            extra={
                "webhook_id": webhook_id,
                "event": str(record.event),
                "event_id": record.event_id,
                "delivery_id": delivery,
                "attempts": n,
                "status": attempt.status,
                "error": attempt.error,
            },
        )
        return False


def _result(attempt: Attempt) -> str:
    if attempt.delivered:
        return "delivered"
    return "retryable" if attempt.retryable else "failed"


async def _commit(consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int) -> None:
    try:
        await consumer.commit({tp: offset})
    except (CommitFailedError, KafkaError) as exc:
        # The partition moved to another process (rebalance): it re-delivers from the last
        # committed offset, with the same delivery ids.
        log.warning("webhook offset not committed", extra={"offset": offset, "error": repr(exc)})
