"""Dead-letter handling: a record no consumer can store never stalls its partition.

It is produced to ``<topic>.dlq`` with the reason in a header, counted, and its offset advances
with the next flush. A bound (``DlqLimit``) stops a writer that dead-letters too much in a row --
that is a bad deploy or a wrong topic, not poison, and must not eat the whole topic.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer

from schemas.wire import dlq_topic
from sluice import metrics

log = logging.getLogger(__name__)


class DlqLimitExceeded(Exception):
    """Too many invalid records among the most recent ones; the writer stops."""


@dataclass(frozen=True, slots=True)
class DlqLimit:
    window: int = 1000  # judge the last this-many records
    max_invalid: int = 500  # stop when more than this many of them were invalid


class InvalidTracker:
    """Sliding window of valid/invalid outcomes (pure)."""

    def __init__(self, limit: DlqLimit) -> None:
        self._limit = limit
        self._outcomes: deque[bool] = deque(maxlen=limit.window)
        self._invalid = 0

    def record(self, invalid: bool) -> None:
        if len(self._outcomes) == self._outcomes.maxlen and self._outcomes[0]:
            self._invalid -= 1
        self._outcomes.append(invalid)
        self._invalid += invalid
        if self._invalid > self._limit.max_invalid:
            raise DlqLimitExceeded(
                f"{self._invalid} of the last {len(self._outcomes)} records were invalid"
            )


async def dead_letter(
    producer: AIOKafkaProducer,
    topic: str,
    key: bytes | None,
    value: bytes | None,
    reason: str,
    origin: tuple[int, int],
) -> None:
    """Produce one record to the DLQ and wait for the ack (before its offset is committed)."""
    headers = [
        ("reason", reason.encode()[:1000]),
        ("origin", f"{topic}/{origin[0]}/{origin[1]}".encode()),
    ]
    await producer.send_and_wait(dlq_topic(topic), value=value, key=key, headers=headers)
    metrics.writer_dlq_total.labels(reason.split(":", 1)[0][:40]).inc()
    log.warning("record dead-lettered", extra={"reason": reason, "origin": origin})
