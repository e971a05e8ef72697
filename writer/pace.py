"""When a writer's loop fetches: the consumers' fetch settings and the loop's pause (pure).

A fetch is answered as soon as the broker has a record for it, or after ``FETCH_MAX_WAIT_MS``
with none: an idle consumer costs the broker and the writer two empty fetches a second. (Waiting
at the broker for 64 kB or 20 ms instead, the four consumers of two idle writers sent 200 empty
fetches a second: 0.07 of a core in Kafka and 0.04 in each writer on the 2-core bench machine,
the metrics consumers' share of it spent during every trace workload.)

Batching a trickle is the loop's job: after a poll that brought records it waits ``GATHER_S``
before polling again. aiokafka sends a broker no new fetch while records it fetched from that
broker wait to be polled (for up to its 100 ms prefetch backoff), so whatever arrives meanwhile
comes in one fetch: at most one fetch per ``GATHER_S`` under a trickle or a flood, as a 20 ms
wait at the broker gave, while the first record after a quiet spell is fetched at once.

A loop may also flush when its input goes quiet (``flush_now``): the poll after a gather pause
does not wait, and when it brings nothing, nothing more is coming now, so waiting out the
batch's age (0.2 s) would only delay what is batched. The trace loop does this: a trace is then
visible a few tens of milliseconds after its export was acknowledged, not ~0.2 s, while under
load every poll brings records and batches still fill by size or age. The metrics loop keeps
batching by age: each flush writes a chunk per series, and a trickle flushed at once would
write many small chunks for the compactor to merge.
"""

from __future__ import annotations

import math

FETCH_MIN_BYTES = 1
FETCH_MAX_WAIT_MS = 500
GATHER_S = 0.02  # small next to the flush age (0.2 s)
POLL_MS = 50  # a poll's longest wait for records (the loop's heartbeat and flush checks)


def poll_timeout_ms(due_in: float | None, gathered: bool = False) -> int:
    """How long the next poll may wait for records: ``POLL_MS``, less when the batch is due
    sooner, so that a batch is flushed when it reaches its age, not up to a poll later; none
    after a gather pause (``gathered``): what arrived meanwhile is already fetched."""
    if gathered:
        return 0
    if due_in is None:
        return POLL_MS
    return min(POLL_MS, math.ceil(due_in * 1000))


def flush_now(ready: bool, polled: int, batched: bool, when_idle: bool) -> bool:
    """Whether the loop flushes after a poll: when the batch is ``ready`` (size or age), or,
    for a loop that flushes ``when_idle``, when the poll brought nothing and records wait."""
    return ready or (when_idle and polled == 0 and batched)


def pause_s(polled: int, max_records: int, flushed: bool, due_in: float | None) -> float:
    """Seconds the loop waits before its next poll: ``GATHER_S`` after a poll that brought
    records (at most until the batch is due), none after an empty one (the next fetch is
    already waiting at the broker), after a flush (records gathered meanwhile) or when the poll
    was cut at ``max_records`` (more are buffered)."""
    if flushed or polled == 0 or polled >= max_records:
        return 0.0
    return GATHER_S if due_in is None else min(GATHER_S, due_in)
