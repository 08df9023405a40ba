"""Pacing a flush's CPU so the hit loop keeps answering within a millisecond or two.

The flusher builds its writes in a thread (store/flusher.py). Python runs one thread at a
time: while a build wants the CPU, the hit loop gets the GIL back only every switch
interval (1 ms, collector/server.py) and shares it about half and half. At half of the
peak rate the loop needs half the core for hits already, so during a flush's build its
queue grows, and the requests that arrive then wait (the half-rate p99 of issue 17).

A `Pacer` is called at the build's natural steps (every few hundred cells, every key,
every packed command). Once the building thread has used `slice_seconds` of CPU, it
sleeps long enough to keep its share of the time at `share`: with 0.5, a build of 60 ms
of CPU takes ~120 ms and the loop has the GIL to itself half of that. The thread's own
CPU clock (thread_time) is what counts, so time spent waiting for the GIL is not.

The flusher paces only while it keeps up (one batch waiting): behind, it builds at full
speed, so pacing never lets a backlog grow.
"""

from __future__ import annotations

import time

# CPU a building thread uses between two pauses (seconds): short enough that the hit
# loop never waits long for its turn, long enough that the pauses cost nothing.
SLICE_SECONDS = 0.002


class Pacer:
    """Make one thread's work take at most `share` of the time (1.0: no pacing). Create
    it in the thread that uses it: it reads that thread's CPU clock."""

    def __init__(self, share: float, slice_seconds: float = SLICE_SECONDS) -> None:
        self.share = share
        self.slice = slice_seconds
        self._since = time.thread_time()
        self.paused = 0.0  # seconds slept, for the flush's statistics

    def __call__(self) -> None:
        if self.share >= 1.0:
            return
        used = time.thread_time() - self._since
        if used >= self.slice:
            pause = used * (1.0 - self.share) / self.share
            time.sleep(pause)  # releases the GIL: the hit loop runs meanwhile
            self.paused += pause
            self._since = time.thread_time()


def no_pacing() -> None:
    """The pace of a build nothing waits for (tests, benchmarks, a backlog)."""
