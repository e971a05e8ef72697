"""The read fence's shared ListOffsets calls (api/read_fence.py ``Rounds``): callers that arrive
together share one call, never one that started before they arrived (it may predate their
writes), and a caller arriving mid-call starts its own at once instead of waiting for the
running one to end first (at most ``max_running`` in flight)."""

from __future__ import annotations

import asyncio

import pytest

from api.read_fence import Rounds


class _Source:
    """An end-offsets source whose every call waits until the test releases that call; each
    call answers its own sequence number."""

    def __init__(self) -> None:
        self.gates: list[asyncio.Event] = []
        self.in_flight = 0
        self.fail = False

    @property
    def calls(self) -> int:
        return len(self.gates)

    def release(self, number: int) -> None:
        self.gates[number - 1].set()

    async def fetch(self) -> int:
        self.gates.append(asyncio.Event())
        number = len(self.gates)
        self.in_flight += 1
        try:
            await self.gates[number - 1].wait()
        finally:
            self.in_flight -= 1
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
    source.release(1)
    assert await asyncio.gather(*callers) == [1] * 5
    assert source.calls == 1


async def test_a_caller_arriving_mid_call_starts_its_own_at_once() -> None:
    """The late callers' call starts while the early one is still in flight, and answers them
    without waiting for it: one call's time, not the rest of the running one plus their own."""
    source = _Source()
    rounds = Rounds(source.fetch, deadline_s=5)
    early = asyncio.create_task(rounds.get())
    await _settle()  # call 1 is in flight
    late = [asyncio.create_task(rounds.get()) for _ in range(3)]
    await _settle()
    assert source.calls == 2 and source.in_flight == 2  # call 2 started at once
    source.release(2)
    assert await asyncio.gather(*late) == [2, 2, 2]  # never call 1: it predates them
    assert not early.done()  # call 1 still runs; the late callers did not wait for it
    source.release(1)
    assert await early == 1
    assert source.calls == 2


async def test_past_max_running_callers_join_the_call_that_starts_when_a_slot_frees() -> None:
    source = _Source()
    rounds = Rounds(source.fetch, deadline_s=5, max_running=2)
    first = asyncio.create_task(rounds.get())
    await _settle()
    second = asyncio.create_task(rounds.get())
    await _settle()
    waiting = [asyncio.create_task(rounds.get()) for _ in range(3)]
    await _settle()
    assert source.calls == 2  # both slots taken: the third call waits for one
    source.release(1)
    assert await first == 1
    await _settle()
    assert source.calls == 3  # started after every waiting caller arrived
    source.release(3)
    assert await asyncio.gather(*waiting) == [3, 3, 3]
    source.release(2)
    assert await second == 2


async def test_a_failed_call_fails_its_callers_and_the_next_call_retries() -> None:
    source = _Source()
    rounds = Rounds(source.fetch, deadline_s=5)
    source.fail = True
    failing = asyncio.create_task(rounds.get())
    await _settle()
    source.release(1)
    with pytest.raises(ConnectionError):
        await failing
    source.fail = False
    retry = asyncio.create_task(rounds.get())
    await _settle()
    source.release(2)
    assert await retry == 2


async def test_a_cancelled_caller_leaves_the_call_to_the_others() -> None:
    source = _Source()
    rounds = Rounds(source.fetch, deadline_s=5)
    impatient = asyncio.create_task(rounds.get())
    patient = asyncio.create_task(rounds.get())
    await _settle()
    impatient.cancel()
    await _settle()
    source.release(1)
    assert await patient == 1
    assert impatient.cancelled()


async def test_a_hung_call_ends_at_the_deadline() -> None:
    source = _Source()
    rounds = Rounds(source.fetch, deadline_s=0.05)
    with pytest.raises(TimeoutError):
        await rounds.get()
    assert source.in_flight == 0  # the hung call was cancelled, its slot is free again
    next_call = asyncio.create_task(rounds.get())
    await _settle()
    source.release(2)
    assert await next_call == 2
    await rounds.close()


async def test_close_ends_the_callers_still_waiting() -> None:
    source = _Source()
    rounds = Rounds(source.fetch, deadline_s=5, max_running=1)
    running = asyncio.create_task(rounds.get())
    await _settle()
    queued = asyncio.create_task(rounds.get())  # no free slot: waits for one
    await _settle()
    await rounds.close()
    for caller in (running, queued):
        with pytest.raises(asyncio.CancelledError):
            await caller
    assert source.calls == 1 and source.in_flight == 0
