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
``backoff_max_s``. Records are fetched one at a time, so the time between two polls is one
event's deliveries, and the consumer's poll interval is set above that worst case
(:func:`max_poll_interval_ms`): a slow receiver never makes Kafka take the partition away
while it is still being worked on. Should it be taken anyway (a lost heartbeat, a new member),
the loop notices before the next record (``consumer.assignment()``) or at the failed commit,
and delivers nothing more of what it fetched for it: the new owner starts at the committed
offset.

POSTGRESQL DOWN. The subscribers of an event are read from PostgreSQL; while it does not answer
the read is retried for at most ``SUBSCRIBERS_DEADLINE_S`` (the minute the poll interval leaves
for it), then the record is handed back to the consumer (a seek to its offset) and fetched
again by the next poll, so the loop keeps polling and keeps its partitions.
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
from api.webhooks.secrets import PLAIN_BOX, SecretBox, SecretUnreadable
from api.webhooks.sender import Attempt, Sender, backoff_s
from api.webhooks.signing import body_of, delivery_id, headers
from schemas.webhook_events import EventRecord, InvalidEventRecord, decode
from sluice import metrics
from sluice.config import WebhooksConfig

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]

SUBSCRIBERS_DEADLINE_S = 60.0  # the minute on top in max_poll_interval_ms


class SubscribersUnreadable(Exception):
    """PostgreSQL did not answer the subscribers' read within its deadline."""


class Deliverer:
    def __init__(
        self,
        cfg: WebhooksConfig,
        pool: asyncpg.Pool,
        sender: Sender,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.time,
        subscribers_deadline_s: float = SUBSCRIBERS_DEADLINE_S,
        box: SecretBox = PLAIN_BOX,
    ) -> None:
        self._cfg = cfg
        self._pool = pool
        self._sender = sender
        self._sleep = sleep
        self._clock = clock
        self._subscribers_deadline_s = subscribers_deadline_s
        self._box = box
        self._slots = asyncio.Semaphore(cfg.max_in_flight)

    # -- the consumer loop ----------------------------------------------------------------------

    async def run(self, consumer: AIOKafkaConsumer) -> None:
        """Consume until cancelled; the consumer is started and subscribed by the caller, with
        ``max_poll_interval_ms(cfg)``."""
        while True:
            # One record per poll: the poll interval then bounds one event, not a batch.
            batches = await consumer.getmany(timeout_ms=1000, max_records=1)
            for tp, records in batches.items():
                await self.handle_owned(consumer, tp, records)

    async def handle_owned(
        self, consumer: AIOKafkaConsumer, tp: TopicPartition, records: list[Any]
    ) -> None:
        """Deliver and commit ``records`` of ``tp`` in order while this process owns ``tp``;
        once it lost it (revoked, or a commit refused), the rest belongs to the new owner."""
        for record in records:
            if tp not in consumer.assignment():
                log.warning("webhook partition revoked; its fetched records are left to its owner")
                return
            try:
                await self.handle(record.value, record.key)
            except SubscribersUnreadable:
                consumer.seek(tp, record.offset)  # the next poll fetches it again
                return
            if not await _commit(consumer, tp, record.offset + 1):
                return

    async def handle(self, value: bytes, key: bytes | None) -> None:
        """Every delivery of one record's event, to its end (never raises for a bad record;
        raises SubscribersUnreadable when PostgreSQL did not answer in time)."""
        try:
            record = decode(value, key)
        except InvalidEventRecord as exc:
            metrics.webhook_deliveries_total.labels(outcome="unreadable").inc()
            log.error("webhook event record skipped", extra={"reason": str(exc)})
            return
        hooks = await self._subscribers(record)
        await asyncio.gather(*(self._bounded(record, hook) for hook in hooks))

    async def _subscribers(self, record: EventRecord) -> list[asyncpg.Record]:
        # PostgreSQL down: wait and retry, up to the deadline; the record stays uncommitted.
        try:
            async with asyncio.timeout(self._subscribers_deadline_s):
                return await self._read_subscribers(record)
        except TimeoutError:
            raise SubscribersUnreadable(record.event_id) from None

    async def _read_subscribers(self, record: EventRecord) -> list[asyncpg.Record]:
        delay = self._cfg.backoff_base_s
        while True:
            try:
                return await store.subscribers(self._pool, record.event)
            except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                log.warning("webhook subscribers not readable", extra={"error": repr(exc)})
                await self._sleep(delay)
                delay = min(delay * 2, self._cfg.backoff_max_s)

    async def _bounded(self, record: EventRecord, hook: Any) -> None:
        try:
            secret = None if hook["secret"] is None else self._box.open(hook["secret"])
        except SecretUnreadable as exc:
            # Signing with a wrong key would only be refused by the receiver: give it up.
            metrics.webhook_deliveries_total.labels(outcome="secret_unreadable").inc()
            log.error(
                "webhook delivery given up",
                extra={
                    "webhook_id": hook["webhook_id"],
                    "event_id": record.event_id,
                    "error": str(exc),
                },
            )
            return
        async with self._slots:
            await self.deliver(record, hook["webhook_id"], hook["url"], secret)

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


def max_poll_interval_ms(cfg: WebhooksConfig) -> int:
    """The consumer's poll interval: above the longest one record can take, so Kafka does not
    move a partition whose event is still being delivered (aiokafka's default, 300 s, is what
    4 attempts of 30 s plus 3 waits of 60 s take: no margin at all).

    One delivery takes at most ``max_attempts`` POSTs of ``request_timeout_s`` (DNS included)
    and ``max_attempts - 1`` waits of ``backoff_max_s`` (jitter and Retry-After are capped by
    it). An event's deliveries run ``max_in_flight`` at a time, so the bound holds for events
    with up to ``max_in_flight`` subscribed webhooks; twice the bound (and a minute on top)
    leaves room for the subscribers' read and a second wave of deliveries."""
    one_delivery_s = (
        cfg.max_attempts * cfg.request_timeout_s + (cfg.max_attempts - 1) * cfg.backoff_max_s
    )
    return int((2 * one_delivery_s + 60) * 1000)


def _result(attempt: Attempt) -> str:
    if attempt.delivered:
        return "delivered"
    return "retryable" if attempt.retryable else "failed"


async def _commit(consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int) -> bool:
    """False when the commit was refused: the partition moved to another process (rebalance),
    which re-delivers from the last committed offset, with the same delivery ids."""
    try:
        await consumer.commit({tp: offset})
    except (CommitFailedError, KafkaError) as exc:
        log.warning("webhook offset not committed", extra={"offset": offset, "error": repr(exc)})
        return False
    return True
