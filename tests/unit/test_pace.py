"""The writer loop's polls and pauses (writer/pace.py) and when a batch is due (writer/batch.py)."""

from __future__ import annotations

import pytest

from writer import pace
from writer.batch import BatchPolicy


def test_a_poll_that_brought_records_is_followed_by_the_gather_pause() -> None:
    assert pace.pause_s(polled=3, max_records=5000, flushed=False, due_in=0.15) == pace.GATHER_S
    # ... but never past the moment the batch is due
    assert pace.pause_s(polled=3, max_records=5000, flushed=False, due_in=0.005) == 0.005


def test_no_pause_after_an_empty_poll_a_flush_or_a_full_poll() -> None:
    assert pace.pause_s(polled=0, max_records=5000, flushed=False, due_in=0.1) == 0.0
    assert pace.pause_s(polled=3, max_records=5000, flushed=True, due_in=None) == 0.0
    assert pace.pause_s(polled=5000, max_records=5000, flushed=False, due_in=0.1) == 0.0


def test_a_poll_waits_no_longer_than_until_the_batch_is_due() -> None:
    assert pace.poll_timeout_ms(None) == pace.POLL_MS  # nothing batched
    assert pace.poll_timeout_ms(1.0) == pace.POLL_MS
    assert pace.poll_timeout_ms(0.0123) == 13
    assert pace.poll_timeout_ms(0.0) == 0  # due now: take what is buffered and flush


def test_a_batch_is_due_its_max_age_after_its_first_record() -> None:
    policy = BatchPolicy(max_rows=100, max_age_s=0.2)
    assert policy.due_in(None, 5.0) is None
    assert policy.due_in(5.0, 5.05) == pytest.approx(0.15)
    assert policy.due_in(5.0, 7.0) == 0.0


def test_an_idle_fetch_is_answered_by_the_first_record() -> None:
    # The loop's pause is what batches a trickle; the broker must not hold a record back.
    assert pace.FETCH_MIN_BYTES == 1
    assert pace.GATHER_S * 1000 < pace.POLL_MS < pace.FETCH_MAX_WAIT_MS


def test_the_poll_after_a_gather_pause_does_not_wait() -> None:
    # What arrived during the pause is already fetched; an empty answer means the input is quiet.
    assert pace.poll_timeout_ms(None, gathered=True) == 0
    assert pace.poll_timeout_ms(0.15, gathered=True) == 0


def test_a_loop_that_flushes_when_idle_flushes_after_an_empty_poll_with_records_batched() -> None:
    assert pace.flush_now(ready=False, polled=0, batched=True, when_idle=True)
    # nothing batched, or the poll brought records (more may follow): keep batching
    assert not pace.flush_now(ready=False, polled=0, batched=False, when_idle=True)
    assert not pace.flush_now(ready=False, polled=4, batched=True, when_idle=True)


def test_a_loop_that_batches_by_age_flushes_only_when_the_batch_is_ready() -> None:
    assert not pace.flush_now(ready=False, polled=0, batched=True, when_idle=False)
    assert pace.flush_now(ready=True, polled=4, batched=True, when_idle=False)
    assert pace.flush_now(ready=True, polled=0, batched=True, when_idle=True)
