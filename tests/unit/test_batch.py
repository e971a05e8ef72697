from schemas import wire
from schemas.chunks import ModelMetricRow, Point
from schemas.wire import MetricPoint, MetricRecord
from writer.batch import Batch, BatchPolicy


def _record(n: int, run: str = "r") -> MetricRecord:
    return MetricRecord(run, "e", 1000, [MetricPoint("k", float(i), i, i, False) for i in range(n)])


def test_flushes_on_size() -> None:
    batch = Batch(BatchPolicy(max_rows=10, max_age_s=60))
    batch.add(0, 5, _record(9), now=0.0)
    assert not batch.ready(now=0.0)
    batch.add(0, 6, _record(1), now=0.0)
    assert batch.ready(now=0.0)


def test_flushes_on_age_of_first_record() -> None:
    batch = Batch(BatchPolicy(max_rows=1000, max_age_s=0.5))
    assert not batch.ready(now=100.0)  # empty batches are never ready
    batch.add(1, 0, _record(1), now=10.0)
    batch.add(1, 1, _record(1), now=10.4)
    assert not batch.ready(now=10.49)
    assert batch.ready(now=10.5)


def test_dead_lettered_records_still_advance_offsets() -> None:
    batch = Batch(BatchPolicy(max_rows=10, max_age_s=1))
    batch.add(2, 41, None, now=0.0)
    assert batch.next_offsets == {2: 42}
    assert batch.all_series() == {}
    assert not batch.empty()


def test_points_are_grouped_by_series_as_history_ordered_points() -> None:
    batch = Batch(BatchPolicy(max_rows=10, max_age_s=1))
    batch.add(0, 0, MetricRecord("run", "e", 1, [MetricPoint("loss", 0.0, 7, -3, True)]), now=0.0)
    batch.add(0, 1, MetricRecord("run", "e", 1, [MetricPoint("loss", 2.5, 8, -2, False)]), now=0.0)
    batch.add(1, 0, MetricRecord("other", "e", 1, [MetricPoint("loss", 1.0, 9, 0, False)]), now=0.0)
    assert batch.all_series() == {
        ("run", "loss"): [Point(7, -3, 0.0, True), Point(8, -2, 2.5, False)],
        ("other", "loss"): [Point(9, 0, 1.0, False)],
    }
    assert batch.row_count == 3


def test_drop_partitions_forgets_rows_and_offsets() -> None:
    batch = Batch(BatchPolicy(max_rows=100, max_age_s=1))
    batch.add(0, 0, _record(3), now=0.0)
    batch.add(1, 0, _record(4), now=0.0)
    batch.drop_partitions({0})
    assert batch.row_count == 4 and set(batch.next_offsets) == {1}
    batch.drop_partitions({1})
    assert batch.empty() and batch.started_at is None


def test_points_naming_a_model_are_also_model_rows_by_partition() -> None:
    raw = wire.encode(
        "run",
        "e",
        1,
        [("acc", 0.5, 7, 1, False, "m-1", "ds", "d1"), ("loss", 1.0, 7, 1, False)],
        models=True,
    )
    batch = Batch(BatchPolicy(max_rows=100, max_age_s=1))
    batch.add(3, 0, wire.decode(raw), now=0.0)
    batch.add(4, 0, _record(2, run="other"), now=0.0)
    assert batch.all_model_rows() == [ModelMetricRow("m-1", "acc", 7, 1, "run", 0.5, "ds", "d1")]
    # ... and points of their run like any other.
    assert set(batch.all_series()) == {("run", "acc"), ("run", "loss"), ("other", "k")}
    batch.drop_partitions({3})
    assert batch.all_model_rows() == []
