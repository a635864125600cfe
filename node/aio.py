"""Small asyncio tools: `within` (a timeout that never swallows a cancellation) and `LoopWatch`.

`within`: wait for an awaitable at most so long, without asyncio.wait_for's hazard on Python 3.10-3.11.

There, a task cancelled just as the awaited thing completes or times out can
have the cancellation swallowed (the result is returned, or TimeoutError is
raised instead): a loop that retries on TimeoutError then never stops, and a
node that is shutting down waits for ever. `asyncio.wait` never turns a
cancellation into anything else, so on 3.10 this is built on it; on 3.11+ on
`asyncio.timeout`, which does not swallow one either and makes no task.
"""
from __future__ import annotations

import asyncio
import time
from typing import Awaitable, TypeVar

T = TypeVar("T")

# asyncio.timeout (3.11+) tells its own expiry from a cancellation by counting them (Task.uncancel), so it never
# swallows one either; on 3.10 `within` waits on a task of its own.
_timeout = getattr(asyncio, "timeout", None)


async def within(awaitable: Awaitable[T], timeout: float) -> T:
    """The awaitable's result, or asyncio.TimeoutError after `timeout` seconds (the awaitable is cancelled)."""
    if _timeout is not None:  # 3.11+: no task of its own (a sync session awaits one per message received)
        async with _timeout(timeout):
            return await awaitable
    task = asyncio.ensure_future(awaitable)
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout)
    except BaseException:
        task.cancel()
        raise
    if not done:
        task.cancel()
        try:
            await task
        except (asyncio.CancelledError, Exception):
            pass
        raise asyncio.TimeoutError
    return task.result()


class LoopWatch:
    """The event loop's longest stall: a task that asks to wake every `interval` seconds and notes how late it
    woke. While a node serves, database work runs on its own thread, so this stays in the milliseconds; the
    node logs it when it stops (and bench/bench_sync.py reads it)."""

    def __init__(self, interval: float = 0.02):
        self.interval = interval
        self.longest = 0.0

    async def run(self) -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(self.interval)
            self.longest = max(self.longest, time.perf_counter() - start - self.interval)
