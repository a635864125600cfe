"""`within`: wait for an awaitable at most so long, without asyncio.wait_for's hazard on Python 3.10-3.11.

There, a task cancelled just as the awaited thing completes or times out can
have the cancellation swallowed (the result is returned, or TimeoutError is
raised instead): a loop that retries on TimeoutError then never stops, and a
node that is shutting down waits for ever. `asyncio.wait` never turns a
cancellation into anything else, so this is built on it.
"""
from __future__ import annotations

import asyncio
from typing import Awaitable, TypeVar

T = TypeVar("T")


async def within(awaitable: Awaitable[T], timeout: float) -> T:
    """The awaitable's result, or asyncio.TimeoutError after `timeout` seconds (the awaitable is cancelled)."""
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
