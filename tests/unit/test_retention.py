"""Which stored offsets are below the log start (pure part of the retention guard)."""

from writer.retention import Gap, find_gaps


def test_a_stored_offset_below_the_log_start_is_a_gap() -> None:
    gaps = find_gaps({0: 1200, 1: 1500, 2: 1600}, {0: 1500, 1: 1500, 2: 0})
    assert gaps == [Gap(0, 1200, 1500)]
    assert gaps[0].records == 300


def test_fresh_partitions_and_unknown_ones_are_not_gaps() -> None:
    assert find_gaps({0: 0, 1: 7}, {0: 0}) == []
