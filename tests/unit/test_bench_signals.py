"""The bench's SIGTERM handling: it must unwind like Ctrl-C so its servers are stopped."""

from __future__ import annotations

import os
import signal

import pytest

from benchmarks.__main__ import stop_on_sigterm


def test_sigterm_unwinds_through_finally() -> None:
    previous = signal.getsignal(signal.SIGTERM)
    cleaned = []
    try:
        stop_on_sigterm()
        with pytest.raises(KeyboardInterrupt):
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                pytest.fail("SIGTERM did not interrupt")
            finally:
                cleaned.append("stack stopped")
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert cleaned == ["stack stopped"]
