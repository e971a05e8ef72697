"""schemas.chunks and writer.compact's pure parts: chunk rows, latest values, merging."""

from __future__ import annotations

import random

import pytest

from schemas import chunks
from schemas.chunks import Point
from writer import compact


def _pts(items: list[tuple[int, int, float, bool]]) -> list[Point]:
    return [Point(*item) for item in items]


def test_chunk_rows_sort_dedupe_and_describe_their_arrays() -> None:
    points = _pts(
        [(30, 3, 1.5, False), (10, 1, 0.0, True), (20, 2, -1.0, False), (10, 1, 0.0, True)]
    )
    (row,) = chunks.chunk_rows("r", "loss", points)
    assert row == (
        "r", "loss", 3, 10, 30, 1, 3, True, None,
        [10, 20, 30], [1, 2, 3], [None, -1.0, 1.5],
    )  # fmt: skip


def test_chunk_rows_split_at_the_cap_in_history_order() -> None:
    rng = random.Random(7)
    points = [Point(rng.randrange(100), rng.randrange(5), float(i), False) for i in range(2500)]
    rows = chunks.chunk_rows("r", "k", points, cap=1000)
    assert [row.n for row in rows] == [1000, 1000, 500]
    flat = [
        (t, s, v)
        for row in rows
        for t, s, v in zip(row.timestamps, row.steps, row.vals, strict=True)
    ]
    assert flat == sorted((p.timestamp, p.step, p.value) for p in set(points))
    for row in rows:  # metadata is exact per chunk
        assert (row.min_ts, row.max_ts) == (min(row.timestamps), max(row.timestamps))
        assert (row.min_step, row.max_step) == (min(row.steps), max(row.steps))
        assert row.step_sorted == (row.steps == sorted(row.steps))
        assert row.first_val == row.vals[0]


def test_step_sorted_is_false_when_steps_go_back_in_time_order() -> None:
    (row,) = chunks.chunk_rows("r", "k", _pts([(1, 5, 0.0, False), (2, 4, 0.0, False)]))
    assert row.step_sorted is False


def test_latest_is_argmax_of_step_then_timestamp_then_value() -> None:
    points = _pts(
        [(100, 2, 1.0, False), (50, 3, 0.5, False), (60, 3, 0.1, False), (60, 3, 0.2, False)]
    )
    rows = chunks.chunk_rows("r", "k", points)
    assert rows[0].step_sorted is False  # steps go back in time order: the scan path
    assert chunks.latest_row(rows) == ("r", "k", 3, 60, 0.2, False)


def test_latest_matches_a_brute_force_argmax_across_chunks() -> None:
    rng = random.Random(11)
    for trial in range(200):
        forward = trial % 2 == 0  # step-sorted chunks take the last-point shortcut
        points = [
            (ts, ts // 3 if forward else rng.randrange(50), rng.choice([0.5, 1.5, 0.0]), False)
            for ts in (rng.randrange(100) for _ in range(rng.randrange(1, 40)))
        ]
        points += [(p[0], p[1], 0.0, True) for p in points[:2]]  # NaN twins
        rows = chunks.chunk_rows("r", "k", _pts(points), cap=7)
        ts, step, value, _ = max(points, key=lambda p: (p[1], p[0], p[2]))
        got = chunks.latest_row(rows)
        assert got[2:5] == (step, ts, value), (points, got)


def test_tracker_reports_series_once_they_have_enough_small_chunks() -> None:
    tracker = compact.Tracker(limit=2)
    for _ in range(compact.COMPACT_AFTER - 1):
        tracker.add([("r", "a"), ("r", "b"), ("r", "c")])  # "c" is beyond the bound
    assert len(tracker) == 2 and tracker.due() == []
    tracker.add([("r", "a")])
    assert tracker.due() == [("r", "a")]
    assert tracker.due() == []  # forgotten once handed out


def test_tracker_hands_out_due_series_oldest_first_in_bounded_rounds() -> None:
    tracker = compact.Tracker()
    order = [("r", k) for k in "zyxw"]
    for series in order:
        tracker.add([series] * compact.COMPACT_AFTER)
    assert tracker.pending() == 4
    assert tracker.due(limit=3) == order[:3]
    assert tracker.pending() == 1 and tracker.due(limit=3) == order[3:]


def test_compactor_pauses_keep_rounds_to_their_share_of_time() -> None:
    assert compact.pause_after(0.0) == compact.MIN_PAUSE_S
    for round_s in (0.5, 2.0, 10.0):
        pause = compact.pause_after(round_s)
        assert round_s / (round_s + pause) == pytest.approx(compact.DUTY)


def _record(
    series: tuple[str, str], chunk_id: int, points: list[chunks.Point]
) -> dict[str, object]:
    (row,) = chunks.chunk_rows(series[0], series[1], points)
    return {
        "run_uuid": series[0], "key": series[1], "chunk_id": chunk_id,
        "timestamps": row.timestamps, "steps": row.steps, "vals": row.vals,
    }  # fmt: skip


def test_merge_combines_dedupes_and_skips_lonely_chunks() -> None:
    a, b = ("r", "a"), ("r", "b")
    rows = [
        _record(a, 1, _pts([(2, 2, 0.0, True)])),
        _record(a, 5, _pts([(1, 1, 1.0, False), (2, 2, 0.0, True)])),  # re-sent NaN point
        _record(b, 3, _pts([(1, 1, 1.0, False)])),
    ]
    new_rows, old_series, old_ids = compact.merge(rows)
    assert old_series == [a, a] and old_ids == [1, 5]
    assert new_rows == chunks.chunk_rows("r", "a", _pts([(1, 1, 1.0, False), (2, 2, 0.0, True)]))
    assert new_rows[0].n == 2
