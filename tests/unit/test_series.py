"""api.metrics.series' pure planning: chunk chains, position lookup, MLflow's NTILE picks; and the
chart point rendering of api.metrics.render."""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Mapping, Sequence

from api.metrics import render
from api.metrics.series import (
    Chain,
    ChunkIndex,
    Meta,
    Point,
    distinct_sorted,
    follows_in_steps,
    follows_in_time,
    is_chain,
    locate,
    ntile_picks,
    step_chain,
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


def _index(chunks: Sequence[Sequence[Point]], ids: Sequence[int] | None = None) -> ChunkIndex:
    """The index entries the writer stores for ``chunks`` (each sorted in history order)."""
    metas = []
    for cid, points in zip(ids or range(1, len(chunks) + 1), chunks, strict=True):
        ts, steps = [p[0] for p in points], [p[1] for p in points]
        sorted_ = all(a <= b for a, b in itertools.pairwise(steps))
        metas.append(Meta(cid, len(points), min(ts), max(ts), min(steps), max(steps), sorted_))
    return ChunkIndex.of(metas)


def _sample_through(
    index: ChunkIndex, chunks: Mapping[int, Sequence[Point]], buckets: int
) -> list[Point]:
    """What the pick statement returns for ``step_chain(index)``: each picked position's chunk
    found by binary search over the chunk starts (width_bucket), then read by subscript."""
    chain = step_chain(index)
    assert chain is not None
    out = []
    for pos in ntile_picks(chain.total, buckets):
        k = bisect.bisect_right(chain.starts, pos) - 1
        out.append(chunks[chain.chunk_ids[k]][pos - chain.starts[k]])
    return out


def test_a_chain_is_found_in_any_storage_order_and_sampled_like_mlflow() -> None:
    rng = random.Random(5)
    points = [(1000 + i, i, i / 3) for i in range(3000)]
    cuts = sorted(rng.sample(range(1, 3000), 20))
    chunks = [points[a:b] for a, b in zip([0, *cuts], [*cuts, 3000], strict=True)]
    ids = rng.sample(range(100, 200), len(chunks))  # compaction: ids out of step order
    by_id = dict(zip(ids, chunks, strict=True))
    for order in (ids, sorted(ids), rng.sample(ids, len(ids))):
        index = _index([by_id[i] for i in order], order)
        for buckets in (1, 7, 1000, 2500, 5000):
            expected = [points[i] for i in ntile_picks(3000, buckets)]
            assert _sample_through(index, by_id, buckets) == expected, (order, buckets)


def test_step_chain_starts_and_total() -> None:
    chunks = [[(t, t, 0.0) for t in range(a, b)] for a, b in ((0, 3), (3, 4), (4, 8))]
    assert step_chain(_index(chunks)) == Chain([1, 2, 3], [0, 3, 4], 8)
    assert step_chain(_index(list(reversed(chunks)), [3, 2, 1])) == Chain([1, 2, 3], [0, 3, 4], 8)
    assert step_chain(ChunkIndex.empty()) == Chain([], [], 0)


def test_equal_steps_at_a_boundary_chain_only_with_later_timestamps() -> None:
    # log_batch: one timestamp per request, the next request starts at the last step
    first, second = [(10, 0, 0.0), (10, 5, 1.0)], [(11, 5, 2.0), (11, 9, 3.0)]
    assert step_chain(_index([first, second])) is not None
    assert step_chain(_index([second, first], [2, 1])) is not None
    earlier = [(9, 5, 2.0), (11, 9, 3.0)]  # same step, earlier timestamp: interleaved
    assert step_chain(_index([first, earlier])) is None


def test_no_chain_when_steps_overlap_or_go_down_inside_a_chunk() -> None:
    a, b = [(0, 0, 0.0), (1, 10, 0.0)], [(2, 5, 0.0), (3, 20, 0.0)]
    assert step_chain(_index([a, b])) is None  # logged out of step order across requests
    down = [(0, 7, 0.0), (1, 3, 0.0)]  # later timestamp, lower step: not step-sorted
    assert step_chain(_index([down])) is None
    assert step_chain(_index([[(0, 1, 0.0)], [(0, 1, 0.0)]])) is None  # a re-sent point


def test_is_step_chain_agrees_with_follows_in_steps() -> None:
    rng = random.Random(11)
    for _ in range(500):
        metas = []
        for cid in range(rng.randint(0, 5)):
            s, t = rng.randrange(6), rng.randrange(6)
            metas.append(Meta(cid, 1, t, t + rng.randrange(3), s, s + rng.randrange(3), True))
        expected = is_chain(metas, follows_in_steps)
        assert ChunkIndex.of(metas).is_step_chain() == expected, metas


def test_run_points_render_each_point_with_its_run() -> None:
    assert render.run_points("loss", "r1", [1000, 1001], [0, 1], [0.5, None]) == [
        {"key": "loss", "value": 0.5, "timestamp": 1000, "step": 0, "run_id": "r1"},
        {"key": "loss", "value": "NaN", "timestamp": 1001, "step": 1, "run_id": "r1"},
    ]
    assert render.run_points("loss", "r1", [], [], []) == []
