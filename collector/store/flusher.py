"""The flusher: every `flush_interval` seconds, drain the aggregator and apply the deltas.

Each flush gets a sequence number from this writer (one writer per process). Its writes
are grouped by hash slot and each group is applied by Lua calls that first check and
advance the writer's sequence marker in that slot — so re-sending a flush whose answer
was lost changes nothing. Flushes that fail stay queued, unchanged, and are retried
oldest first, which keeps every slot's sequence increasing.

With the journal (journal.py) a batch's events are also on disk, in a segment named
after (writer, seq): the segment is deleted once Redis has the batch; queued batches
behind the first are not kept in memory but rebuilt from their segment when their turn
comes, so a long Redis outage costs disk, not memory; and segments left by a crash are
replayed at start as the batches they were.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from dataclasses import dataclass, field

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError, RedisError

import orjson

from collector.store import keys

from collector.store import redis_client
from collector.store.aggregate import Aggregator, Snapshot
from collector.store.flush_script import APPLY_FLUSH_LUA  # apply_flush.lua + features/media_sessions.lua
from collector.features.deep import Session
from collector.store.journal import Journal, Segment, replay
from collector.store.periodic import Periodic
from collector.store.rollup import RollupBuilder, SlotWrites

log = logging.getLogger(__name__)

MAX_BACKOFF = 5.0  # seconds between attempts while Redis fails: catch up soon after it returns

# Arguments per script call. A slot's writes are split into calls of about this size so
# no single call builds a huge request or blocks Redis for long.
CALL_ARGS = 20_000
# Calls of one flush are numbered flush_seq * PARTS + part: still increasing per slot.
PARTS = 100_000


def session_arg(prefixes: tuple[tuple[str, int], ...], session: Session, completed_percent: int) -> bytes:
    """One session's progress for the script: [ms, ws, dur, started, [[bucket prefix,
    expire-at], ...], [[metrics key suffix, value], ...], completed percent]."""
    targets = [[keys.metrics_suffix(dim) if dim else keys.COUNTERS, value] for dim, value in session.targets]
    return orjson.dumps([session.ms, session.ws, session.dur, session.started, prefixes, targets, completed_percent])


def encode_calls(
    writes: SlotWrites, writer: str, seq: int, completed_percent: int = 90
) -> list[tuple[list[str], list]]:
    """KEYS and ARGV of the APPLY_FLUSH_LUA calls that apply `writes`, in order."""
    marker = keys.flush_sequence(writes.tag, writer)
    calls: list[tuple[list[str], list]] = []
    script_keys: list[str] = []
    args: list = []

    def close_call() -> None:
        nonlocal script_keys, args
        if script_keys:
            calls.append(([marker, *script_keys], [seq * PARTS + len(calls) + 1, keys.SEQ_MARKER_TTL, *args]))
        script_keys, args = [], []

    def add(key: str, kind: str, items: list, width: int) -> None:
        # A key whose items overflow a call continues in the next one.
        step = max(CALL_ARGS // width, 1)
        for start in range(0, len(items), step):
            part = items[start : start + step]
            if len(args) + len(part) * width > CALL_ARGS:
                close_call()
            script_keys.append(key)
            args.extend((kind, writes.expire_at.get(key, 0), len(part)))
            for item in part:
                args.extend(item) if width == 2 else args.append(item)

    # Sorted, so a batch rebuilt from its journal segment splits into the very same calls
    # as the first attempt: a retry after a partial apply then skips exactly what landed.
    for key in sorted(writes.hashes):
        add(key, "h", sorted(writes.hashes[key].items()), 2)
    for key in sorted(writes.hlls):
        add(key, "p", sorted(writes.hlls[key]), 1)
    if writes.sessions:
        sessions = sorted(session_arg(prefixes, session, completed_percent) for prefixes, session in writes.sessions)
        add(keys.sessions(writes.tag), "s", sessions, 1)
    close_call()
    if len(calls) >= PARTS:
        raise ValueError("flush too large to number its calls")
    return calls


@dataclass(slots=True)
class FlushBatch:
    writer: str
    seq: int
    segment: Segment | None  # its journal segment, when journaling
    snap: Snapshot | None = None  # what it counts; None: rebuild from the segment when due
    slots: list[SlotWrites] | None = None  # its writes, once built
    apps: set[str] = field(default_factory=set)
    events: int = 0


@dataclass(slots=True)
class FlushStats:
    flushes: int = 0
    failures: int = 0  # failed attempts; each is retried
    events_flushed: int = 0
    batches_recovered: int = 0  # replayed from the journal at start
    last_success: float = 0.0
    last_duration_ms: float = 0.0


class Flusher:
    def __init__(
        self,
        redis: aioredis.Redis,
        aggregator: Aggregator,
        rollups: RollupBuilder,
        interval: float,
        journal: Journal | None = None,
        writer: str | None = None,
        completed_percent: int = 90,
    ) -> None:
        self.redis = redis
        self.completed_percent = completed_percent
        self.aggregator = aggregator
        self.rollups = rollups
        self.interval = interval
        self.journal = journal
        self.writer = writer or uuid.uuid4().hex[:16]
        self.pending: deque[FlushBatch] = deque()
        self.stats = FlushStats()
        self._seq = 1  # the batch being filled now
        self._sha: str | None = None
        self._known_apps: set[str] = set()
        self._loop = Periodic("flusher", self._tick, interval)
        self._backoff = interval
        self._lock = asyncio.Lock()

    # ---- lifecycle ----------------------------------------------------------------

    def recover(self) -> None:
        """Queue the batches a previous run left in the journal, and open this run's segment."""
        if not self.journal:
            return
        for segment in self.journal.open():
            self.pending.append(FlushBatch(segment.writer, segment.seq, segment))
            self.stats.batches_recovered += 1
        if self.pending:
            log.info("journal: %d batches (%d bytes) to replay from earlier runs", len(self.pending), self.journal.bytes)
        self.journal.begin(self.writer, self._seq)

    def start(self) -> None:
        self._loop.start()

    async def close(self, deadline: float = 3.0) -> None:
        """Stop the timer, then flush what is left, retrying until `deadline` seconds pass."""
        await self._loop.close()
        give_up = time.monotonic() + deadline
        while not await self.flush() and time.monotonic() < give_up:
            await asyncio.sleep(0.2)
        if self.pending:
            fate = "kept in the journal for the next start" if self.journal else "LOST: the journal is off"
            log.error("shutdown with %d flushes not applied (Redis unreachable): %s", len(self.pending), fate)

    async def _tick(self) -> float:
        ok = await self.flush()
        # Back off while Redis fails; the next flush that works carries everything.
        self._backoff = self.interval if ok else min(self._backoff * 2, MAX_BACKOFF)
        return self._backoff

    # ---- flushing -----------------------------------------------------------------

    def seal(self) -> None:
        """Turn what the aggregator holds into a numbered batch at the end of the queue."""
        snap = self.aggregator.drain()
        if not snap:
            return
        segment = self.journal.seal(self.writer, self._seq + 1) if self.journal else None
        batch = FlushBatch(self.writer, self._seq, segment)
        self._seq += 1
        self._describe(batch, snap)
        # Behind a failing batch, the writes wait on disk (rebuilt in _load), not in memory.
        if segment is None or not self.pending:
            batch.snap = snap
        self.pending.append(batch)

    @staticmethod
    def _describe(batch: FlushBatch, snap: Snapshot) -> None:
        batch.apps = {cell[0] for cell in snap.cube} | {key[0] for key in snap.rejected}
        batch.events = snap.events

    def _load(self, batch: FlushBatch) -> list[SlotWrites]:
        if batch.slots is None:
            snap = batch.snap
            if snap is None:
                scratch = Aggregator()
                replay(batch.segment.path, scratch, self.journal.quarantine)  # never raises for bad records
                snap = scratch.drain()
                self._describe(batch, snap)
            batch.slots = self.rollups.build(snap)
            batch.snap = None
        return batch.slots

    def _packed(self, batch: FlushBatch, sha: str, new_apps: set[str]) -> list[bytes]:
        commands = [
            redis_client.pack("EVALSHA", sha, len(script_keys), *script_keys, *args)
            for script_keys, args in self._encode(batch)
        ]
        if new_apps:
            commands.append(redis_client.pack("SADD", keys.APPS, *sorted(new_apps)))
        return commands

    def _encode(self, batch: FlushBatch) -> list[tuple[list[str], list]]:
        return [
            call
            for writes in self._load(batch)
            for call in encode_calls(writes, batch.writer, batch.seq, self.completed_percent)
        ]

    async def flush(self) -> bool:
        """Seal and apply every pending batch, oldest first. True when nothing is left."""
        async with self._lock:
            self.seal()
            while self.pending:
                batch = self.pending[0]
                started = time.perf_counter()
                try:
                    await self._apply(batch)
                except (RedisError, OSError) as exc:
                    self.stats.failures += 1
                    log.warning("flush %d failed (%d pending): %s", batch.seq, len(self.pending), exc)
                    return False
                self.pending.popleft()
                if batch.segment and self.journal:
                    self.journal.discard(batch.segment)
                self.stats.flushes += 1
                self.stats.events_flushed += batch.events
                self.stats.last_success = time.time()
                self.stats.last_duration_ms = (time.perf_counter() - started) * 1000
            return True

    async def _apply(self, batch: FlushBatch) -> None:
        if self._sha is None:
            self._sha = await self.redis.script_load(APPLY_FLUSH_LUA)
        # Building, encoding and packing a second's writes takes milliseconds of CPU: in a
        # thread, the event loop keeps answering hits meanwhile (the GIL is handed over
        # every millisecond between two script calls) instead of stalling every request
        # that arrives during a flush. The loop only writes the bytes and reads replies.
        new_apps = batch.apps - self._known_apps
        commands = await asyncio.to_thread(self._packed, batch, self._sha, new_apps)
        try:
            await redis_client.send_packed(self.redis, commands)
        except NoScriptError:
            # Redis restarted and lost its script cache. Re-sending the whole batch is
            # safe: slots that did apply it skip it by their sequence marker.
            self._sha = None
            raise
        self._known_apps |= new_apps
