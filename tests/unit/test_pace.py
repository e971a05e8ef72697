"""The writer loop's pause between polls (writer/pace.py)."""

from __future__ import annotations

from writer import pace


def test_a_poll_that_brought_records_is_followed_by_the_gather_pause() -> None:
    assert pace.pause_s(polled=3, max_records=5000, flushed=False) == pace.GATHER_S


def test_no_pause_after_an_empty_poll_a_flush_or_a_full_poll() -> None:
    assert pace.pause_s(polled=0, max_records=5000, flushed=False) == 0.0
    assert pace.pause_s(polled=3, max_records=5000, flushed=True) == 0.0
    assert pace.pause_s(polled=5000, max_records=5000, flushed=False) == 0.0


def test_an_idle_fetch_is_answered_by_the_first_record() -> None:
    # The loop's pause is what batches a trickle; the broker must not hold a record back.
    assert pace.FETCH_MIN_BYTES == 1
    assert pace.GATHER_S * 1000 < pace.FETCH_MAX_WAIT_MS
