"""A background loop with its own start/close, shared by the flusher and the salt keeper.

It stops through an event rather than task cancellation: redis-py can swallow a
CancelledError that lands inside a command, which would leave a cancelled loop asleep
for its full interval and hang shutdown. A tick in progress is allowed to finish.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class Periodic:
    def __init__(self, name: str, tick: Callable[[], Awaitable[float]], first_delay: float) -> None:
        """`tick()` does one round and returns the seconds to wait before the next."""
        self.name = name
        self.tick = tick
        self.first_delay = first_delay
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def close(self) -> None:
        self._stop.set()
        if self._task:
            await self._task

    async def _run(self) -> None:
        delay = self.first_delay
        while True:
            try:
                await asyncio.wait_for(self._stop.wait(), delay)
                return
            except TimeoutError:
                pass
            try:
                delay = await self.tick()
            except Exception:  # a bug in one round must not end the loop for good
                log.exception("%s: round failed", self.name)
                delay = self.first_delay
