"""Bounded, clock-driven helpers of the auth edge (pure): a TTL cache and a per-user token
bucket. Both forget their oldest entries past a fixed size, so no caller can grow them."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


class TtlCache:
    def __init__(self, ttl_s: float, size: int = 10_000) -> None:
        self._ttl_s, self._size = ttl_s, size
        self._items: OrderedDict[object, tuple[float, object]] = OrderedDict()

    def get(self, key: object) -> object | None:
        hit = self._items.get(key)
        if hit is None or time.monotonic() - hit[0] > self._ttl_s:
            return None
        return hit[1]

    def put(self, key: object, value: object) -> None:
        self._items[key] = (time.monotonic(), value)
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)


class RateLimiter:
    """Token bucket per user: ``rate_per_s`` sustained, ``burst`` at once."""

    def __init__(self, rate_per_s: float, burst: int, clock: Callable[[], float] = time.monotonic):
        self._rate, self._burst, self._clock = rate_per_s, burst, clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, user: str) -> float:
        """0 when allowed, else the seconds until a request would be."""
        if self._rate <= 0:
            return 0.0
        now = self._clock()
        tokens, at = self._buckets.get(user, (float(self._burst), now))
        tokens = min(float(self._burst), tokens + (now - at) * self._rate)
        if tokens < 1:
            self._buckets[user] = (tokens, now)
            return (1 - tokens) / self._rate
        self._buckets[user] = (tokens - 1, now)
        self._buckets.move_to_end(user)
        if len(self._buckets) > 100_000:
            self._buckets.popitem(last=False)
        return 0.0
