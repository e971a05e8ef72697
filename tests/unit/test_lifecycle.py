"""What a stop signal means depends on when it arrives: copies of one request (a group-wide
signal plus a supervisor's forward) must not count as an operator insisting."""

from sluice.lifecycle import REPEAT_WINDOW_S, SignalCounter, SignalMeaning


def test_first_signal_stops() -> None:
    assert SignalCounter().classify(100.0) is SignalMeaning.STOP


def test_copies_within_the_window_are_the_same_request() -> None:
    counter = SignalCounter()
    counter.classify(100.0)
    assert counter.classify(100.0) is SignalMeaning.REPEAT
    assert counter.classify(100.0 + REPEAT_WINDOW_S * 0.9) is SignalMeaning.REPEAT


def test_a_later_signal_insists() -> None:
    counter = SignalCounter()
    counter.classify(100.0)
    counter.classify(100.1)
    assert counter.classify(100.0 + REPEAT_WINDOW_S) is SignalMeaning.INSIST
    assert counter.classify(500.0) is SignalMeaning.INSIST
