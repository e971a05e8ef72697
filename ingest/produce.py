"""Produce records (a metric record, trace records) and wait for the durable ack, under a
deadline."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from schemas import wire
from schemas.mlflow_errors import Unavailable
from sluice import logs, metrics, telemetry
from sluice.clock import now_ms

_RETRY_AFTER_MAX_S = 30.0


class Producer:
    """Owns the topic layout the ingest process learned at startup."""

    def __init__(self, producer: AIOKafkaProducer, topic: str, partitions: int, deadline_s: float):
        self._producer = producer
        self._topic = topic
        self._partitions = partitions
        self._deadline_s = deadline_s
        self._failing_since: float | None = None  # monotonic time of the first failure in a row

    @property
    def partitions(self) -> int:
        return self._partitions

    def _unavailable(self, what: str) -> Unavailable:
        """429 whose Retry-After grows with the outage: the MLflow client obeys Retry-After
        instead of its own backoff and gives up after 7 retries, so a fixed short value would
        exhaust it within a minute; this way its retries span a long outage (2 s, 4 s, ... 30 s)."""
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = now
        retry_after = int(min(_RETRY_AFTER_MAX_S, max(2.0, now - self._failing_since)))
        return Unavailable(f"{what}; retry later.", retry_after)

    async def ready(self, timeout_s: float = 1.0) -> bool:
        """Readiness: the cluster answered a metadata request within ``timeout_s``."""
        try:
            async with asyncio.timeout(timeout_s):
                return bool(await self._producer.client.force_metadata_update())
        except (TimeoutError, KafkaError):
            return False

    @telemetry.traced("kafka.produce")
    async def send_points(
        self,
        run_id: str,
        points: Sequence[wire.PointFields | wire.ModelPointFields],
        *,
        models: bool = False,
    ) -> None:
        """Return once Kafka acknowledged (acks=all) the record; raise Unavailable (429) past
        the deadline. A timed-out record may still be delivered later: the client retries and
        the writer's identity key stores the points once. ``models``: a point names a logged
        model (a version-2 record)."""
        value = wire.encode(run_id, uuid.uuid4().hex, now_ms(), points, models=models)
        await self.send_values([(run_id, value)])
        metrics.ingest_points_total.inc(len(points))

    async def send_values(self, keyed: list[tuple[str, bytes]]) -> None:
        """Produce each (key, value) to the key's partition and return once Kafka acknowledged
        all of them; raise Unavailable (429) past the deadline. Some may be delivered anyway:
        consumers store a re-sent record once (metrics: readers drop duplicates; traces:
        spans are upserted by id)."""
        started = time.perf_counter()
        # One request's records share its headers (aiokafka encodes them; it never changes them).
        headers = [
            (wire.REQUEST_ID_HEADER, logs.request_id.get().encode()),
            *telemetry.headers(),  # traceparent, when tracing is on
        ]
        metrics.ingest_produce_inflight.inc()
        try:
            async with asyncio.timeout(self._deadline_s):
                acks = [
                    await self._producer.send(
                        self._topic,
                        value=value,
                        key=key.encode(),
                        partition=wire.partition_for(key, self._partitions),
                        headers=headers,
                    )
                    for key, value in keyed
                ]
                await asyncio.gather(*acks)
        except TimeoutError:
            metrics.ingest_backpressure_total.labels("kafka_deadline").inc()
            raise self._unavailable("Kafka did not acknowledge the write in time") from None
        except KafkaError as exc:
            metrics.ingest_backpressure_total.labels("kafka_error").inc()
            raise self._unavailable(f"Kafka refused the write ({type(exc).__name__})") from None
        finally:
            metrics.ingest_produce_inflight.dec()
        self._failing_since = None
        metrics.kafka_produce_ack_seconds.observe(time.perf_counter() - started)
