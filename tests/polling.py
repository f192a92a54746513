"""Synchronisation for tests: poll a condition until a deadline, never sleep blindly."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Any | Awaitable[Any]],
    *,
    timeout: float = 20.0,
    interval: float = 0.05,
    what: str = "condition",
) -> Any:
    """Call ``probe`` until it returns a truthy value; return that value.

    ``probe`` may be sync or async.  Raises AssertionError naming ``what`` and the last
    value seen once ``timeout`` seconds have passed.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = probe()
        if inspect.isawaitable(last):
            last = await last
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")
        await asyncio.sleep(interval)  # poll interval under a deadline, not a synchronisation sleep
