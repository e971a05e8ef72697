"""api.series' pure planning: chunk chains, position lookup, MLflow's NTILE picks."""

from __future__ import annotations

import random

from api.series import (
    Meta,
    distinct_sorted,
    follows_in_steps,
    follows_in_time,
    is_chain,
    locate,
    ntile_picks,
)


def _ntile_reference(n: int, buckets: int) -> list[int]:
    """PostgreSQL's ntile() semantics, then MLflow's keep-first-per-bucket + last point."""
    size, extra = divmod(n, buckets)
    bucket_of, pos = [], 0
    for b in range(buckets):
        count = size + (1 if b < extra else 0)
        bucket_of += [b] * count
        pos += count
    firsts = [i for i in range(n) if i == 0 or bucket_of[i] != bucket_of[i - 1]]
    if n <= buckets:
        return firsts
    return [i for i in firsts if bucket_of[i] < buckets - 1] + [n - 1]


def test_ntile_picks_match_the_reference() -> None:
    for n in [*range(0, 40), 99, 100, 101, 999, 1000, 1001, 12345]:
        for buckets in (1, 2, 3, 7, 10, 100, 1000, 2500):
            assert ntile_picks(n, buckets) == _ntile_reference(n, buckets), (n, buckets)


def _meta(cid: int, n: int, ts: tuple[int, int], steps: tuple[int, int]) -> Meta:
    return Meta(cid, n, ts[0], ts[1], steps[0], steps[1], True)


def test_time_chain_allows_a_shared_timestamp_only_with_increasing_steps() -> None:
    a = _meta(1, 10, (100, 200), (0, 9))
    assert follows_in_time(a, _meta(2, 10, (201, 300), (10, 19)))
    assert follows_in_time(a, _meta(2, 10, (200, 300), (10, 19)))  # log_batch: one timestamp
    assert not follows_in_time(a, _meta(2, 10, (200, 300), (9, 19)))  # could be a duplicate
    assert not follows_in_time(a, _meta(2, 10, (150, 300), (10, 19)))  # interleaved


def test_step_chain() -> None:
    a = _meta(1, 10, (100, 200), (0, 9))
    assert follows_in_steps(a, _meta(2, 10, (0, 1), (10, 19)))
    assert follows_in_steps(a, _meta(2, 10, (201, 300), (9, 19)))
    assert not follows_in_steps(a, _meta(2, 10, (200, 300), (9, 19)))


def test_is_chain_and_locate() -> None:
    metas = [
        _meta(i, n, (i * 10, i * 10 + 9), (i * 10, i * 10 + 9)) for i, n in enumerate([3, 1, 4])
    ]
    assert is_chain(metas, follows_in_time)
    assert not is_chain(list(reversed(metas)), follows_in_time)
    assert locate(metas, [0, 2, 3, 4, 7]) == [(0, 0), (0, 2), (1, 0), (2, 0), (2, 3)]


def test_distinct_sorted_drops_exact_duplicates_only() -> None:
    rng = random.Random(3)
    points = [
        (rng.randrange(5), rng.randrange(3), rng.choice([None, 0.0, 1.5])) for _ in range(200)
    ]
    out = distinct_sorted(points, lambda p: (p[0], p[1], p[2] or 0.0, p[2] is None))
    assert len(out) == len(set(points))
    assert out == sorted(set(points), key=lambda p: (p[0], p[1], p[2] or 0.0, p[2] is None))
