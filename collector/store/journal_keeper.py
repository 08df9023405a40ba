"""The journal's lifecycle in one place, for the process that writes it.

start: lock the directory (JournalLocked if another process holds it), find the
segments earlier runs left (the flusher replays them before anything new), begin this
run's first segment and, under the `everysec` policy, fsync the open segment once a
second from a thread. close: stop the fsync loop, then sync and close the segment and
release the lock — after the flusher's final flush, which still seals and discards
segments.
"""

from __future__ import annotations

import asyncio

from collector.store.journal import Journal, Segment
from collector.store.periodic import Periodic

FSYNC_EVERY = 1.0  # seconds, under `everysec` (like Redis' appendfsync everysec)


class JournalKeeper:
    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self._syncer: Periodic | None = None

    def start(self, writer: str, first_seq: int) -> list[Segment]:
        """Open the journal for batch (writer, first_seq); the segments earlier runs left."""
        leftovers = self.journal.open()
        try:
            self.journal.begin(writer, first_seq)
        except OSError:
            self.journal.close()  # releases the lock: a failed start leaves nothing held
            raise
        if self.journal.fsync_policy == "everysec":
            self._syncer = Periodic("journal-fsync", self._sync, FSYNC_EVERY)
            self._syncer.start()
        return leftovers

    async def _sync(self) -> float:
        # In a thread: an fsync can take long on a busy disk, and hits must not wait for it.
        await asyncio.to_thread(self.journal.sync)
        return FSYNC_EVERY

    async def close(self) -> None:
        if self._syncer:
            await self._syncer.close()
        self.journal.close()
