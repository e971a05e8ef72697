"""The read fence's shared ListOffsets rounds (api/read_fence.py ``Rounds``): concurrent reads
share one request, but never one that started before they arrived (it may predate their
writes)."""

from __future__ import annotations

import asyncio

import pytest

from api.read_fence import Rounds


class _Source:
    """An end-offsets source whose every call waits until the test releases it; each call
    answers its own sequence number."""

    def __init__(self) -> None:
        self.calls = 0
        self.release = asyncio.Event()
        self.fail = False

    async def fetch(self) -> int:
        self.calls += 1
        number = self.calls
        await self.release.wait()
        self.release.clear()
        if self.fail:
            raise ConnectionError("broker gone")
        return number


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_callers_that_arrive_together_share_one_call() -> None:
    source = _Source()
    rounds = Rounds(source.fetch, deadline_s=5)
    callers = [asyncio.create_task(rounds.get()) for _ in range(5)]
    await _settle()
    source.release.set()
    assert await asyncio.gather(*callers) == [1] * 5
    assert source.calls == 1


async def test_a_caller_arriving_during_a_call_waits_for_the_next() -> None:
    source = _Source()
    rounds = Rounds(source.fetch, deadline_s=5)
    early = asyncio.create_task(rounds.get())
    await _settle()  # call 1 is in flight
    late = [asyncio.create_task(rounds.get()) for _ in range(3)]
    await _settle()
    source.release.set()
    assert await early == 1
    await _settle()  # call 2 started for the late callers only
    assert not any(t.done() for t in late)
    source.release.set()
    assert await asyncio.gather(*late) == [2, 2, 2]
    assert source.calls == 2


async def test_a_failed_call_fails_its_callers_and_the_next_round_retries() -> None:
    source = _Source()
    rounds = Rounds(source.fetch, deadline_s=5)
    source.fail = True
    failing = asyncio.create_task(rounds.get())
    await _settle()
    source.release.set()
    with pytest.raises(ConnectionError):
        await failing
    source.fail = False
    retry = asyncio.create_task(rounds.get())
    await _settle()
    source.release.set()
    assert await retry == 2


async def test_a_cancelled_caller_leaves_the_round_to_the_others() -> None:
    source = _Source()
    rounds = Rounds(source.fetch, deadline_s=5)
    impatient = asyncio.create_task(rounds.get())
    patient = asyncio.create_task(rounds.get())
    await _settle()
    impatient.cancel()
    await _settle()
    source.release.set()
    assert await patient == 1
    assert impatient.cancelled()


async def test_a_hung_call_ends_at_the_deadline() -> None:
    source = _Source()
    rounds = Rounds(source.fetch, deadline_s=0.05)
    with pytest.raises(TimeoutError):
        await rounds.get()
    source.release.set()  # the next round works again
    assert await rounds.get() == 2
    await rounds.close()
