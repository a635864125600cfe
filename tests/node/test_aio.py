"""`within` never swallows a cancellation (asyncio.wait_for can, on Python 3.10-3.11)."""
from __future__ import annotations

import asyncio
import sys

import pytest

from preau.node.aio import within


async def _cancelled_as_the_result_arrives(wait) -> str:
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    task = asyncio.create_task(wait(fut, 10))
    await asyncio.sleep(0)  # the task now waits on fut
    fut.set_result("result")
    task.cancel()
    try:
        return await task
    except asyncio.CancelledError:
        return "cancelled"


async def test_a_cancellation_as_the_result_arrives_is_not_swallowed():
    assert await _cancelled_as_the_result_arrives(within) == "cancelled"


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="wait_for was rewritten in 3.12")
async def test_wait_for_swallows_it_which_is_why_within_exists():
    assert await _cancelled_as_the_result_arrives(asyncio.wait_for) == "result"


async def test_result_and_timeout():
    assert await within(asyncio.sleep(0, "x"), 1) == "x"
    waited = asyncio.Event()
    with pytest.raises(asyncio.TimeoutError):
        await within(waited.wait(), 0.01)
