"""The flusher: every `flush_interval` seconds, drain the aggregator and apply the deltas.

Each flush gets a sequence number from this writer (one writer per process). Its writes
are grouped by hash slot and each group is applied by Lua calls that first check and
advance the writer's sequence marker in that slot — so re-sending a flush whose answer
was lost changes nothing. Flushes that fail stay queued, unchanged, and are retried
oldest first, which keeps every slot's sequence increasing.

With the journal (journal.py) a batch's events are also on disk, in a segment named
after (writer, seq): the segment is deleted once Redis has the batch; queued batches
behind the first wait packed (packed_snapshot.py), their packed parts' bytes in a spill
file beside the segment (spill.py), but for the parts that fit in live_queue_cells
entries, up to the memory of memory_max_cells live entries (a packed part weighs its
bytes in memory, a spilled one its apps), and beyond that or
behind a failing flush are rebuilt from their segment when their turn comes, so a long
Redis outage costs disk, not memory; and segments left by a crash are replayed at start
as the batches they were.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from collector import allocator
from collector.histogram import Histogram
from collector.hit.record import Hit
from collector.store import cluster_send, dedupe, keys, redis_client
from collector.store.aggregate import FLAGGED, Aggregator, Snapshot
from collector.store.build_worker import THREAD_BUILD_REASONS, THREAD_BUILDER, BuildConfig, BuildJob, BuildWorker
from collector.store.capping import CapKey, DeploymentCaps, Refused, Wanted
from collector.store.finality import Finality, touched_calls

# The script calls, compiled apart (flush_calls.py); CALL_ARGS, PARTS and session_arg are
# re-exported for the tests and benches that name them here.
from collector.store.flush_calls import (  # noqa: F401
    CALL_ARGS,
    PARTS,
    RESENT_CALLS,
    ScriptCall,
    encode_calls,
    session_arg,
)
from collector.store.flush_script import APPLY_FLUSH_LUA  # apply_flush.lua + features/media_sessions.lua
from collector.store.journal import Journal, Segment, remove_segment, replay
from collector.store.names import DUPLICATE_RESEND_FLAG
from collector.store.pacing import Pacer, no_pacing
from collector.store.packed_snapshot import PackedSnapshot, pack, unpack
from collector.store.periodic import Periodic
from collector.store.rollup import RollupBuilder, SlotWrites
from collector.store.spill import SpillFile, SpillLost, SpillWriter, restored

log = logging.getLogger(__name__)

MAX_BACKOFF = 5.0  # seconds between attempts while Redis fails: catch up soon after it returns

# A flush is applied in round trips of at most this many commands and bytes, each with
# its own deadline (round_trip_timeout). A script call with CALL_ARGS arguments is
# about 1 MB and runs for some milliseconds in Redis, so a round trip stays well under
# a second even when each command is that big — far from the timeout — whatever the
# size of the batch. Writing a whole batch of 90 000 apps at once is what timed out.
ROUND_TRIP_COMMANDS = 200
ROUND_TRIP_BYTES = 2 << 20
# Snapshot entries (Snapshot.cells) whose writes are built, encoded and packed at a time.
# The writes of one entry are some kilobytes packed, so a group costs some tens of MB at
# most, where a whole batch of a flood cost gigabytes.
GROUP_CELLS = 5_000
# The CPU the flusher's thread uses between two pauses while it splits a due batch and
# finds its caps' questions (_due), and its share of the time then (the smaller of it and
# flush_cpu_share; not paced when that is 1, or behind). Short slices and a small share:
# the hit loop, which needs ~60 % of its core at half of the peak rate, waits for the GIL
# and the core while the thread runs. A second's batch at that rate takes ~10 ms of the
# thread's CPU, so ~50 ms of the time (bench/RESULTS.md, session 12).
DUE_SLICE_SECONDS = 0.0005
DUE_CPU_SHARE = 0.2
# Entries of an applied part freed at a time between two rounds of hits (Snapshot.shed):
# a part of GROUP_CELLS entries freed at once held the hit loop 1-3 ms (its tuples and
# strings); this many take a few tenths of a millisecond (bench/RESULTS.md, session 17).
SHED_ENTRIES = 1_000
# A batch this large (entries, or events when rebuilt from the journal) leaves tens of MB
# freed in the allocator: after it, the heap is trimmed (a few ms, in a thread).
TRIM_AFTER_CELLS = 20_000
# What a snapshot entry takes in memory while live (tracemalloc, POST-50 batches:
# bench/RESULTS.md, "Session 8: a queued batch's memory"). memory_max_cells is a budget of
# that many live entries' bytes: a packed batch (packed_snapshot.py, ~30 bytes an entry)
# spends it by its size, so about five times as many of its entries fit as of live ones.
LIVE_CELL_BYTES = 145
# The share of memory_max_cells that the batches queued behind the one being applied may
# hold live, their other parts packed: 50,000 entries by default, half an early-sealed
# batch (batch_max_cells). Behind, every part is built in the flusher's thread, on the hit
# loop's core, and packing a part there only for its build to unpack it costs ~1.3 µs of
# a POST-50 event's ~3.9; a part kept live skips both, for ~115 bytes an entry more while
# it waits. A fifth (100,000) raised the POST-50 run's peak RSS by ~20 MB, to 197 of the
# 200 MB allowed (bench/RESULTS.md, session 19).
LIVE_QUEUE_SHARE = 0.1
# What a queued batch whose packed parts wait in a spill file (store/spill.py) still holds in
# memory, for memory_max_cells: its parts' objects and apps, its touched buckets' calls
# (tracemalloc, bench/RESULTS.md session 28: ~8 KB for a POST-50 batch of 4 apps, ~320 KB
# for one of 2,000 apps, ~160 bytes an app). Small, but never nothing: the budget still
# bounds how many batches wait, whatever their disk.
SPILLED_BATCH_BYTES = 8 << 10
SPILLED_APP_BYTES = 160
# How often the guard checks the live snapshot's size (seconds).
GUARD_INTERVAL = 0.1
# Seconds a part may take in the build process before the thread builds it: half the
# flush interval, at least this; some times what a part takes on a half-idle core.
MIN_BUILD_WAIT = 0.25
# The batches pending (the one being applied included) up to which the build process is
# still asked for the parts; past it, the flusher's thread builds them. At the GET peak a
# batch reaches batch_max_cells in under a second, so the batch being applied often has one
# or two sealed early behind it: built in the thread, their parts took 0.6-3.5 µs a hit of
# the hit loop's core (the build, and unpacking the parts queued packed), which the child
# does on the other core's idle time. A deep queue (a POST-50 backlog) stays with the
# thread: there a starved child drained it slower, one late part leaving it busy for the
# next (bench/RESULTS.md, sessions 15 and 28).
CHILD_BUILDS_PENDING_MAX = 3
# How often re-sent events waiting for the other writers' watermarks look again (seconds).
WATERMARK_POLL = 0.05


# A writer numbers its batches from here; the journal begins this one's segment at
# start (JournalKeeper.start), before the first hit is written.
FIRST_SEQ = 1


def new_writer_id() -> str:
    """A fresh writer id: one per process run, so no two runs share sequence markers."""
    return uuid.uuid4().hex[:16]


@dataclass(slots=True)
class FlushBatch:
    writer: str
    seq: int
    segment: Segment | None  # its journal segment, when journaling
    # What it counts; None: its `packed` parts, or rebuild from the segment, when due. A
    # flush empties it part by part as they are applied (_release): a batch owns it.
    snap: Snapshot | None = None
    # Queued behind another batch: its snapshot split into its parts (Snapshot.split_by_app),
    # each as bytes (packed_snapshot.py), a fifth of the memory — journaling, in a spill
    # file (spill.py), read back when due; `packing` is the thread making them, awaited
    # before the batch is built. Each part is unpacked only for its
    # build in the thread (the build process is sent its bytes), so at most one part of
    # the batch is live at a time (issue 17, RSS).
    packed: PackedParts | None = None
    packing: asyncio.Future[None] | None = None
    # Sealed behind another: of its entries, those that may wait live (the room left in
    # Flusher.live_queue_cells then; once packed, the entries of the parts that fit it, the
    # others packed). They stay live until built, counted in that room until applied (_apply).
    live_cells: int = 0
    # Its packed parts' spill file's bytes, counted in the journal's until its segment goes.
    spill_bytes: int = 0
    events: int = 0
    cells: int = 0  # snapshot entries when sealed: the memory it holds until built (journal off)
    queued_at: float = field(default_factory=time.time)  # sealed, or found in the journal at start
    # When it began to fill: none of its events arrived before (finality.py's watermark).
    # 0 for a batch an earlier run left in the journal: its events may be of any age.
    started_at: float = 0.0
    # Every event of it arrived before: sealed, or (left by an earlier run) this run's start.
    sealed_at: float = 0.0
    # Dedupe (store/dedupe.py): its first sends are all in Redis; its re-sent hits, taken
    # from its parts as they are applied, counted once their ids are checked.
    firsts_done: bool = False
    resent: list[Hit] = field(default_factory=list)
    # Once due: its snapshot split by app (Snapshot.split_by_app), a packed batch's parts
    # still packed but the first. A part leaves the queue once Redis acknowledged all of
    # its commands, and `done` counts those of the first part acknowledged so far: a retry
    # resumes right after the last acknowledged round trip.
    parts: deque[Snapshot | PackedSnapshot] | None = None
    done: int = 0
    # The deployment caps' refusals among all its parts' values (store/capping.py), asked
    # once for the whole batch when it is due: decisions are final, so a retry reuses them.
    refused: Refused | None = None
    # The calls that record the buckets it writes (finality.py), made from the whole
    # batch with its parts: sent once, with its last part, not once per part.
    touched: list[redis_client.Command] = field(default_factory=list)
    # Who built the commands `done` counts (store/build_worker.py): another builder may
    # order a part's commands otherwise, so a retry then resends the part from its start.
    built_by: int = THREAD_BUILDER

    @property
    def in_memory(self) -> bool:
        """Whether its counts are held in memory (live, packed, or split into parts), not
        left to its journal segment."""
        return self.snap is not None or self.packed is not None or self.parts is not None

    @property
    def held_cells(self) -> int:
        """What it holds in memory, in live entries (memory_max_cells' unit): its entries
        while live (still packing, or split into parts when due), its bytes once packed,
        nothing while its counts wait on disk."""
        if self.packed is not None:
            return -(-self.packed.size // LIVE_CELL_BYTES) + self.packed.live_cells
        if self.parts is not None:
            return sum(map(_held_cells, self.parts))
        return self.cells if self.in_memory else 0


@dataclass(slots=True)
class PackedParts:
    """A batch queued behind another, as it waits: its parts (Snapshot.split_by_app),
    packed but those its live_cells kept live, and what its turn needs of the whole batch,
    taken before it was packed."""

    parts: list[Snapshot | PackedSnapshot]
    touched: list[redis_client.Command]  # the calls that record its buckets (finality.py)
    caps_values: bytes  # DeploymentCaps.present of the batch, pickled (b"": no caps)
    spill: SpillFile | None = None  # where its packed parts' bytes wait, when journaling (store/spill.py)

    @property
    def size(self) -> int:
        """The bytes it holds in memory: its packed parts' (none for those spilled, but
        their apps), its caps' values."""
        size = len(self.caps_values)
        for part in self.parts:
            if isinstance(part, PackedSnapshot):
                size += SPILLED_APP_BYTES * len(part.apps) if part.spilled is not None else part.size
        return size + (SPILLED_BATCH_BYTES if self.spill is not None else 0)

    @property
    def live_cells(self) -> int:
        """The entries of its live parts."""
        return sum(part.cells for part in self.parts if isinstance(part, Snapshot))


def _pack_all_but_first(parts: deque[Snapshot | PackedSnapshot], pace: Callable[[], None]) -> None:
    """A due batch's parts but the first packed (packed_snapshot.py), as a queued batch's
    are: they wait for their turn in a fifth of the memory (issue 17: in the run of 10⁶
    distinct visitors the whole batch being applied stayed live beside the one filling and
    the first part's build; bench/RESULTS.md session 14). A part the build process builds
    is sent its bytes as they are, the pickling it needed anyway; one the thread builds
    is unpacked for it (~0.3 µs an entry). Packed before any of them is built, so every
    build of a part reads the same entries in the same order (FlushBatch.built_by)."""
    for i in range(1, len(parts)):
        part = parts[i]
        if isinstance(part, Snapshot):
            parts[i] = pack(part, pace)


def _held_cells(part: Snapshot | PackedSnapshot) -> int:
    """A part's memory in live entries: its entries while live, its bytes once packed."""
    if isinstance(part, PackedSnapshot):
        return -(-part.size // LIVE_CELL_BYTES)
    return part.cells


@dataclass(slots=True)
class FlushStats:
    flushes: int = 0
    failures: int = 0  # failed attempts; each is retried
    events_flushed: int = 0
    batches_recovered: int = 0  # replayed from the journal at start
    # This run's batches left to their journal segment when sealed (past the memory bound,
    # or behind a failing flush) and rebuilt from it when due, and their events.
    batches_rebuilt: int = 0
    events_rebuilt: int = 0
    # This run's batches whose packed parts waited in a spill file (store/spill.py), and of
    # them those whose file could not be read back (rebuilt from the journal: batches_rebuilt).
    batches_spilled: int = 0
    spills_lost: int = 0
    # The entries of this run's batches sealed behind another, and of them those allowed to
    # wait live (live_queue_cells), the rest packed (packed_snapshot.py).
    queued_cells: int = 0
    queued_cells_live: int = 0
    early_seals: int = 0  # batches sealed before their interval because they grew past batch_max_cells
    round_trips: int = 0
    resent_admitted: int = 0  # re-sent events counted (their first send was not)
    resent_duplicates: int = 0  # re-sent events dropped: their first send was counted
    resent_unchecked_waits: int = 0  # times the other writers did not catch up within dedupe_hold_max
    paced_seconds: float = 0.0  # builds and splits slept so the hit loop kept the CPU (store/pacing.py)
    parts_built_apart: int = 0  # parts built by the build process (store/build_worker.py)
    parts_built_in_thread: int = 0  # parts built in the flusher's thread
    # Of those, while a build process runs: why not by it (build_worker.THREAD_BUILD_REASONS).
    thread_builds: dict[str, int] = field(default_factory=lambda: dict.fromkeys(THREAD_BUILD_REASONS, 0))
    last_success: float = 0.0
    last_duration_ms: float = 0.0
    durations: Histogram = field(default_factory=Histogram)  # seconds per applied batch (GET /metrics)


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
        round_trip_timeout: float = 3.0,
        batch_max_cells: int = 100_000,
        memory_max_cells: int = 500_000,
        clock: Callable[[], float] = time.time,
        record_touched: tuple[str, ...] = (),
        finality: Finality | None = None,
        dedupe_window: int = 0,
        dedupe_hold_max: float = 30.0,
        wait_replicas: int = 1,
        caps: DeploymentCaps | None = None,
        flush_cpu_share: float = 1.0,
        build_process: bool = False,
    ) -> None:
        self.redis = redis
        # A Redis Cluster gets the flush through cluster_send.py, which waits for
        # `wait_replicas` replicas of each master to confirm before a batch is done.
        self.cluster = redis_client.is_cluster(redis)
        self.cluster_sender = cluster_send.ClusterSender(cast(RedisCluster, redis), wait_replicas) if self.cluster else None
        self.completed_percent = completed_percent
        self.aggregator = aggregator
        self.rollups = rollups
        self.interval = interval
        self.journal = journal
        self.writer = writer or new_writer_id()
        self.round_trip_timeout = round_trip_timeout
        self.batch_max_cells = batch_max_cells
        self.memory_max_cells = memory_max_cells
        # Of it, what the batches queued behind the one being applied may hold live (seal).
        self.live_queue_cells = int(memory_max_cells * LIVE_QUEUE_SHARE)
        self.caps = caps  # the deployment-wide cardinality caps (None: the workers' own only)
        self.flush_cpu_share = flush_cpu_share  # of the time a build may use while it keeps up (store/pacing.py)
        self.pending: deque[FlushBatch] = deque()
        self.stats = FlushStats()
        self._seq = FIRST_SEQ  # the batch being filled now
        self._sha: str | None = None
        self._known_apps: set[str] = set()
        self._loop = Periodic("flusher", self._tick, interval)
        self._guard = Periodic("flush-guard", self._guard_tick, GUARD_INTERVAL)
        self._backoff = interval
        self._lock = asyncio.Lock()
        self._stop_by: float | None = None  # at shutdown: no round trip starts after this (monotonic)
        self.clock = clock  # the clock ingest stamps arrivals with
        self.record_touched = record_touched  # granularities of the buckets each batch writes, recorded (finality.py)
        self._filling_since = clock()  # the live snapshot holds nothing that arrived before
        self._started = self._filling_since  # batches earlier runs left were all sealed before
        self.finality = finality  # the watermarks re-sent events wait for (dedupe.py)
        self.dedupe_window = dedupe_window
        self.dedupe_hold_max = dedupe_hold_max
        self._others_lagging = False  # the last wait for the other writers gave up
        self._head_failed = False  # the oldest batch's last attempt failed: those sealed now wait on disk
        # Builds parts in a child process while this writer keeps up (store/build_worker.py).
        # A cluster's commands are routed before they are packed: built in the thread.
        self.build_worker = (
            BuildWorker(self.build_config(), max(interval / 2, MIN_BUILD_WAIT)) if build_process and not self.cluster else None
        )

    # ---- lifecycle ----------------------------------------------------------------

    def recover(self, leftovers: list[Segment]) -> None:
        """Queue the batches earlier runs left in the journal (JournalKeeper.start found
        them): they are flushed before anything this run counts."""
        for segment in leftovers:
            self.pending.append(FlushBatch(segment.writer, segment.seq, segment, sealed_at=self._started))
            self.stats.batches_recovered += 1
        if self.pending and self.journal:
            log.info("journal: %d batches (%d bytes) to replay from earlier runs", len(self.pending), self.journal.bytes)

    def build_config(self) -> BuildConfig:
        """What a build reads besides its part (the build process gets the same)."""
        return BuildConfig(
            self.writer, self.rollups.calendar.tz.key, dict(self.rollups.ttls), self.completed_percent, self.record_touched,
            self.dedupe_window,
        )

    def start(self) -> None:
        if self.build_worker:
            self.build_worker.start()
        self._loop.start()
        self._guard.start()

    async def close(self, deadline: float = 3.0) -> None:
        """Stop the timers, then flush what is left, retrying until `deadline` seconds pass."""
        await self._guard.close()
        await self._loop.close()
        give_up = self._stop_by = time.monotonic() + deadline
        while not await self.flush() and time.monotonic() < give_up:
            await asyncio.sleep(0.2)
        packing = [batch.packing for batch in self.pending if batch.packing is not None]
        if packing:  # let the packing threads end before the loop does
            await asyncio.wait(packing)
        if self.pending:
            fate = "kept in the journal for the next start" if self.journal else "LOST: the journal is off"
            log.error("shutdown with %d flushes not applied (Redis unreachable): %s", len(self.pending), fate)
        if self.build_worker:
            await self.build_worker.close()

    async def _tick(self) -> float:
        ok = await self.flush()
        # Back off while Redis fails; the next flush that works carries everything.
        self._backoff = self.interval if ok else min(self._backoff * 2, MAX_BACKOFF)
        return self._backoff

    async def _guard_tick(self) -> float:
        self.seal_if_large()
        return GUARD_INTERVAL

    # ---- bounds -------------------------------------------------------------------

    def seal_if_large(self) -> None:
        """Seal the live snapshot early once it holds `batch_max_cells` entries.

        While a flush is slow (Redis lags, or a flood of distinct apps), hits keep
        coming: sealed, the excess becomes further batches, kept in memory up to
        `memory_max_cells` entries and beyond that left to the journal on disk
        (_waits_on_disk), not one snapshot growing without bound. Checked from a timer, so the hit path pays nothing for it.
        """
        if self.aggregator.pending_cells >= self.batch_max_cells:
            self.stats.early_seals += 1
            self.seal()
        self._update_memory_bound()

    def _update_memory_bound(self) -> None:
        """Journal off, queued batches live in memory: past `memory_max_cells` entries
        (the live snapshot and every unapplied batch, packed ones by their bytes), hits are
        refused with a 503."""
        if self.journal is None:
            self.aggregator.refusing = self.aggregator.pending_cells + self._held_cells() >= self.memory_max_cells

    def watermark(self) -> float:
        """Everything this writer acknowledged before this instant is in Redis: the
        start of the oldest batch not applied yet, else of the one being filled."""
        return self.pending[0].started_at if self.pending else self._filling_since

    def firsts_watermark(self) -> float:
        """The same for first sends: a batch whose re-sent events wait for their check
        (dedupe.py) holds back `watermark` but not this, so writers waiting for each
        other's first sends never wait in a circle."""
        for batch in self.pending:
            if not batch.firsts_done:
                return batch.started_at
        return self._filling_since

    def backlog_age(self, now: float | None = None) -> float:
        """Seconds the oldest unapplied batch has waited (0: nothing waits)."""
        if not self.pending:
            return 0.0
        return max((now or time.time()) - self.pending[0].queued_at, 0.0)

    # ---- flushing -----------------------------------------------------------------

    def seal(self) -> None:
        """Turn what the aggregator holds into a numbered batch at the end of the queue."""
        started_at, self._filling_since = self._filling_since, self.clock()
        snap = self.aggregator.drain()
        if not snap:
            return
        segment = self.journal.seal(self.writer, self._seq + 1) if self.journal else None
        batch = FlushBatch(
            self.writer, self._seq, segment, events=snap.events, cells=snap.cells, started_at=started_at,
            sealed_at=self._filling_since,
        )
        self._seq += 1
        if segment is None or not self._waits_on_disk(batch.cells):
            batch.snap = snap
            if self.pending:  # behind another batch: it waits a while, packed but what the room keeps live
                batch.live_cells = min(batch.cells, max(self.live_queue_cells - self._live_queued_cells(), 0))
                self.stats.queued_cells += batch.cells
                self.stats.queued_cells_live += batch.live_cells
                self._pack_soon(batch)
        self.pending.append(batch)

    def _live_queued_cells(self) -> int:
        """The entries the queued batches keep live, the one being applied included: its
        live parts stay live until built (seal)."""
        return sum(batch.live_cells for batch in self.pending)

    def _pack_soon(self, batch: FlushBatch) -> None:
        """Pack the batch's parts in a thread (packed_snapshot.py): it waits behind
        another for some seconds, in a fifth of the memory. Sealed outside an event loop
        (tools, tests), it keeps its snapshot."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        batch.packing = loop.create_task(self._pack(batch))

    async def _pack(self, batch: FlushBatch) -> None:
        snap = batch.snap
        if snap is None:
            return
        # Journaling, its packed parts wait in a spill file beside its segment, not in the
        # heap (store/spill.py) — while the journal has room for them: they count in it.
        spill_to = None
        if self.journal is not None and batch.segment is not None and not self.journal.full:
            spill_to = batch.segment.spill_path
        try:
            packed = await asyncio.to_thread(self._packed_parts, snap, batch.live_cells, spill_to)
        except Exception:  # noqa: BLE001 — never lose the batch: it keeps its snapshot
            log.exception("flush %d: packing its snapshot failed; kept as it is", batch.seq)
            return
        if packed.spill is not None and self.journal is not None:
            batch.spill_bytes = packed.spill.bytes
            self.journal.spilled(batch.spill_bytes)
            self.stats.batches_spilled += 1
        batch.packed, batch.snap = packed, None
        # The room its parts took (those that did not fit were packed): the rest is left to
        # the batches sealed after it.
        self.stats.queued_cells_live -= batch.live_cells - packed.live_cells
        batch.live_cells = packed.live_cells

    def _packed_parts(self, snap: Snapshot, live_cells: int = 0, spill_to: Path | None = None) -> PackedParts:
        """`snap` split by app as it will be flushed (_parts), each part packed but those
        whose entries fit in what is left of `live_cells`, in order (they wait as they are),
        the packed ones' bytes written to `spill_to` as they are made (store/spill.py); its
        touched buckets and capped values taken now, so that its parts need not be
        unpacked for them when it is due (each is then unpacked once, for a build in the
        thread; the build process is sent its bytes as they are)."""
        touched = touched_calls(snap, self.rollups.calendar, self.record_touched) if self.record_touched else []
        caps_values = pickle.dumps(self.caps.present(snap), pickle.HIGHEST_PROTOCOL) if self.caps is not None else b""
        # Each part dropped once packed: the split's tables (a few MB at 100,000 entries of
        # several apps) are not all held beside the snapshot until the last part is packed.
        parts = snap.split_by_app(GROUP_CELLS)
        parts.reverse()
        spill = SpillWriter(spill_to) if spill_to is not None else None
        packed: list[Snapshot | PackedSnapshot] = []
        while parts:
            part = parts.pop()
            # The first parts that fit stay live, not only those before the first that does
            # not: an app is never split, so a batch of a few large apps has parts of tens
            # of thousands of entries, and its first (the largest app) seldom fit the room
            # left — which then kept none of the batch live (bench/RESULTS.md, session 23).
            if part.cells <= live_cells:
                live_cells -= part.cells
                packed.append(part)
            elif spill is not None:
                packed.append(spill.keep(pack(part)))
            else:
                packed.append(pack(part))
        return PackedParts(packed, touched, caps_values, spill.close() if spill is not None else None)

    def _waits_on_disk(self, cells: int) -> bool:
        """Whether a batch sealed now leaves its writes to its journal segment, to be
        rebuilt (replayed, in _parts) when its turn comes, rather than keep its snapshot.

        Replaying costs more CPU than taking the events did (the segment's JSON decoded
        and every record counted again: ~23 µs per event of 50-event POSTs, against ~15 µs
        to take them, bench/RESULTS.md session 7), so a flush that merely runs long (a large batch, a busy core) must
        not send the batches sealed meanwhile through it: at POST-50 rates that made every
        flush slower than the one before, and the backlog never drained while the load
        lasted (issue 17). Behind a failing batch (Redis away), or once the batches held
        for the queue reach memory_max_cells live entries' memory, the writes wait on disk.
        The batch sealed now counts as live (it is, until packed); those packed count their
        bytes: counted as live entries, a POST-50 queue reached the bound at a fifth of the
        memory it allows, and its later batches were replayed (bench/RESULTS.md session 9)."""
        if not self.pending:
            return False
        if self._head_failed:
            return True
        return self._held_cells() + cells > self.memory_max_cells

    def _held_cells(self) -> int:
        """The memory the queued batches hold, in live entries (FlushBatch.held_cells)."""
        return sum(batch.held_cells for batch in self.pending)

    def _share(self) -> float:
        """The share of the time the flusher's thread may take now (store/pacing.py):
        flush_cpu_share while this writer keeps up (one batch waiting); behind, all."""
        return self.flush_cpu_share if len(self.pending) <= 1 else 1.0

    def _due(
        self, batch: FlushBatch, share: float = 1.0, pack_later: bool = True
    ) -> tuple[deque[Snapshot | PackedSnapshot], Questions]:
        """In the flusher's thread: the batch's parts (made once), and the caps' values
        not decided yet among all of them (the parts hold distinct apps, and the caps'
        keys begin with the app, so merging their questions loses none).

        Paced at `share` in slices of DUE_SLICE_SECONDS (DUE_CPU_SHARE while this writer
        keeps up): at half of the peak GET rate a second's batch takes ~10 ms of this
        thread's CPU to split and question, and unpaced the hit loop, on the same core,
        waited for the GIL and the core through most of it — the cause of about two thirds
        of the requests over 5 ms (bench/RESULTS.md, session 12). A batch made into parts
        now has its parts but the first packed unless `pack_later` is false."""
        pace = Pacer(share, DUE_SLICE_SECONDS)  # made in the thread: it reads the thread's CPU clock
        try:
            return self._due_paced(batch, pace, pack_later)
        finally:
            self.stats.paced_seconds += pace.paused

    def _due_paced(
        self, batch: FlushBatch, pace: Pacer, pack_later: bool = True
    ) -> tuple[deque[Snapshot | PackedSnapshot], Questions]:
        made_now = batch.parts is None  # a retry's parts were made, and packed, before
        if batch.parts is not None:
            parts = batch.parts
        elif batch.packed is not None and self._read_back(batch, batch.packed):
            return self._packed_due(batch, batch.packed, pace, pack_later)
        else:
            # Rebuilt from its segment (its spill file lost: _read_back), none of it was kept
            # live, whatever room it had: its parts but the first are packed like a new batch's.
            pack_later = pack_later or batch.snap is None
            parts = self._parts(batch, pace)
        wanted: Wanted = {}
        present: dict[CapKey, set[str]] = {}
        if self.caps is not None:
            for part in parts:  # packed ones: a retry's, the caps' round trip having failed
                self._add_questions(unpack(part) if isinstance(part, PackedSnapshot) else part, wanted, present, pace)
        if made_now and pack_later:
            _pack_all_but_first(parts, pace)
        return parts, (wanted, present)

    def _read_back(self, batch: FlushBatch, packed: PackedParts) -> bool:
        """A packed batch's spilled parts read back into `packed` (store/spill.py). False
        when they could not be: the batch then waits on its segment, rebuilt from it (_parts),
        like a batch that waited on disk — never lost, never counted twice."""
        if packed.spill is None:
            return True
        try:
            packed.parts = restored(packed.parts, packed.spill.path)
        except SpillLost as exc:
            log.warning("flush %d: its spill file is unreadable (%s); rebuilt from its journal segment", batch.seq, exc)
            self.stats.spills_lost += 1
            batch.packed, batch.live_cells = None, 0
            return False
        return True

    def _packed_due(
        self, batch: FlushBatch, packed: PackedParts, pace: Callable[[], None] = no_pacing, pack_later: bool = True
    ) -> tuple[deque[Snapshot | PackedSnapshot], Questions]:
        """_due for a packed batch: its parts left packed until their build, so the
        batch's live snapshot never exists whole (issue 17, RSS during POST runs) — and
        the build process is sent a part's bytes as they are, so a part it builds is never
        unpacked in the collector (_commands); its caps' questions from the values taken
        at packing. Its live parts but the first are packed now unless `pack_later` is
        false (built in this thread, they would only be unpacked again)."""
        parts: deque[Snapshot | PackedSnapshot] = deque(packed.parts)
        batch.packed, batch.touched = None, packed.touched
        if pack_later:
            _pack_all_but_first(parts, pace)
        if self.caps is None:
            return parts, ({}, {})
        return parts, self.caps.undecided_of(pickle.loads(packed.caps_values))

    def _add_questions(
        self, part: Snapshot, wanted: Wanted, present: dict[CapKey, set[str]], pace: Callable[[], None] = no_pacing
    ) -> None:
        """The caps' questions of `part` added to the batch's (its apps are its own)."""
        assert self.caps is not None
        part_wanted, part_present = self.caps.undecided(part, pace)
        wanted.update(part_wanted)
        present.update(part_present)

    async def _decided(self, questions: Questions) -> Refused:
        """The caps' refusals among the values asked about in `questions` (one round trip
        when some are not decided yet)."""
        if self.caps is None:
            return {}
        wanted, present = questions
        return await self.caps.decide(self.redis, wanted, present, self.round_trip_timeout)

    def _parts(self, batch: FlushBatch, pace: Callable[[], None] = no_pacing) -> deque[Snapshot | PackedSnapshot]:
        """The batch's snapshot (rebuilt from its segment, if need be), split by app."""
        snap = batch.snap
        if snap is None:
            # Only a journaled batch is ever without its snapshot (seal keeps it otherwise).
            assert batch.segment is not None and self.journal is not None
            scratch = Aggregator()
            replay(batch.segment.path, scratch, self.journal.quarantine)  # never raises for bad records
            snap = scratch.drain()
            batch.events = snap.events
            if batch.writer == self.writer:  # not one an earlier run left (batches_recovered)
                self.stats.batches_rebuilt += 1
                self.stats.events_rebuilt += snap.events
        batch.snap = None
        if self.record_touched:
            batch.touched = touched_calls(snap, self.rollups.calendar, self.record_touched)
            pace()
        return deque[Snapshot | PackedSnapshot](snap.split_by_app(GROUP_CELLS, pace))

    def _packed(
        self, part: Snapshot, batch: FlushBatch, sha: str, new_apps: set[str], pace: Callable[[], None] = no_pacing
    ) -> list[Prepared]:
        """The commands that apply one part: its script calls (each slot's also records the
        ids of its first sends, dedupe.py), then the new apps' SADD. `pace` is called at
        each step of the work (store/pacing.py)."""
        first_sends: dict[str, dedupe.FirstSends] = {}
        if part.event_ids and self.dedupe_window:
            first_sends = dedupe.first_sends_by_slot(part, self.rollups.calendar, self.dedupe_window, self.clock())
        slots = deque(self.rollups.build(part, pace))
        slots += [SlotWrites(tag) for tag in sorted(first_sends.keys() - {writes.tag for writes in slots})]  # ids alone
        # Each script call is packed as soon as it is complete, and each slot's writes are
        # dropped once encoded: the arguments of a whole part (~18 MB for 59,000 entries
        # of POST-10 traffic, against 3 MB packed) never exist at once (issue 17, RSS
        # during POST runs; bench/RESULTS.md session 9).
        packed: list[Prepared] = []

        def add(call: ScriptCall) -> None:
            script_keys, args = call
            pace()
            packed.append(self._prepared_one(("EVALSHA", sha, len(script_keys), *script_keys, *args)))

        while slots:
            writes = slots.popleft()
            encode_calls(
                writes, batch.writer, batch.seq, self.completed_percent, pace=pace, first_sends=first_sends.get(writes.tag),
                sink=add,
            )
        commands: list[redis_client.Command] = []
        if new_apps:
            commands.append(("SADD", keys.APPS, *sorted(new_apps)))
        if first_sends and batch.writer != self.writer:
            # Left in the journal by an earlier run — maybe a collector that recorded the
            # ids apart, after its script calls: those calls that landed are skipped now,
            # so the ids are sent apart too (idempotent; only batches found at start).
            commands += dedupe.first_send_commands(part, self.rollups.calendar, self.dedupe_window, self.clock())
        return packed + self._prepared(commands, pace)

    def _prepared(self, commands: list[redis_client.Command], pace: Callable[[], None] = no_pacing) -> list[Prepared]:
        """Packed for a single Redis (here, often in the flusher's thread); as they are
        for a cluster, whose client packs them per node once it has routed them."""
        if self.cluster:
            return list(commands)  # (as the wider list type)
        packed: list[Prepared] = []
        for command in commands:
            pace()
            packed.append(redis_client.pack(*command))
        return packed

    def _prepared_one(self, command: redis_client.Command) -> Prepared:
        """One command as _prepared makes it: packed, or as it is for a cluster."""
        return command if self.cluster else redis_client.pack(*command)

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
                    self._head_failed = True
                    log.warning("flush %d failed (%d pending): %s", batch.seq, len(self.pending), exc)
                    return False
                self.pending.popleft()
                self._head_failed = False
                if batch.segment and self.journal:
                    # Unlinking takes milliseconds (journal.remove_segment): in a thread.
                    # Should this process die first, the segment's replay is skipped by
                    # the slots' sequence markers, as after any crash past the apply.
                    # Its spill file goes with it (the bytes counted when it was written).
                    self.journal.discarded(await asyncio.to_thread(remove_segment, batch.segment) + batch.spill_bytes)
                if max(batch.cells, batch.events) >= TRIM_AFTER_CELLS:
                    # The build threads' garbage, handed back (collector/allocator.py).
                    await asyncio.to_thread(allocator.trim)
                self._update_memory_bound()
                self.stats.flushes += 1
                self.stats.events_flushed += batch.events
                self.stats.last_success = time.time()
                took = time.perf_counter() - started
                self.stats.last_duration_ms = took * 1000
                self.stats.durations.observe(took)
            return True

    async def _apply(self, batch: FlushBatch) -> None:
        """Apply the batch part by part, each in bounded round trips, resuming after
        `batch.done`. A round trip whose answer is lost (a timeout) is sent again on the
        retry: the slots that did apply it skip it by their sequence marker, so nothing
        counts twice.

        Replaying a segment, splitting, building, encoding and packing take CPU: in a
        thread, the event loop keeps answering hits meanwhile (the GIL is handed over
        every few milliseconds) instead of stalling every request that arrives during a
        flush. The loop only writes the bytes and reads replies. The next part is built
        while Redis applies this one (Redis is another process): a batch of many apps
        drains in about the time of the slower of the two, not their sum. So at most two
        parts' writes exist at a time, whatever the size of the batch.
        """
        if batch.parts is None or batch.refused is None:
            if batch.packing is not None:
                # Still packing (or never done: cancelled, failed): either way the batch
                # then has its snapshot or its bytes. wait() neither raises nor cancels it.
                await asyncio.wait((batch.packing,))
                batch.packing = None
            # One thread hop and one caps round trip per batch, not per part: while the
            # hit loop is saturated every hop waits for a whole loop iteration (~50 ms of
            # requests), and per part they made a POST-50 batch take longer to apply than
            # the next took to fill (bench/RESULTS.md session 8).
            share = self._share()  # 1: not paced (behind, or flush_cpu_share 1)
            # Queued with room to wait live: its live parts stay live until built, within
            # live_queue_cells (_live_queued_cells counts them until applied). Packed when
            # due alone, they were mostly unpacked again by the thread: at saturation the
            # next batch is sealed behind it before its later parts are built (session 23).
            # A batch never queued has its parts but the first packed (_pack_all_but_first):
            # its whole snapshot is not live beside the next one filling (session 14), and
            # the build process, keeping up, is sent the bytes made here.
            pack_later = batch.live_cells == 0
            parts, questions = await asyncio.to_thread(
                self._due, batch, share if share >= 1.0 else min(share, DUE_CPU_SHARE), pack_later
            )
            batch.parts = parts
            batch.refused = await self._decided(questions)
        else:
            parts = batch.parts
        sha = self._sha
        if sha is None:
            sha = self._sha = await self.redis.script_load(APPLY_FLUSH_LUA)
        upcoming = self._build(batch, parts[0], sha) if parts else None
        try:
            while upcoming is not None:
                commands, new_apps, built_by = await upcoming
                if built_by != batch.built_by:  # ordered otherwise, maybe: resend from the part's start
                    batch.done, batch.built_by = 0, built_by
                upcoming = self._build(batch, parts[1], sha) if len(parts) > 1 else None
                if upcoming is None:  # the last part: the batch's touched buckets go with it
                    commands += self._prepared(batch.touched)
                await self._send(batch, commands)
                self._known_apps |= new_apps
                applied = parts.popleft()
                if isinstance(applied, Snapshot) and batch.live_cells:  # its room goes to those sealed next
                    batch.live_cells = max(batch.live_cells - applied.cells, 0)
                batch.resent += applied.resent
                batch.done = 0
                if self.build_worker is None or not self.build_worker.still_reading(applied):
                    await _release(applied)  # else freed whole once the late build let it go
        finally:
            if upcoming is not None:  # a round trip failed: let the thread end, drop its work
                await asyncio.gather(upcoming, return_exceptions=True)
        batch.firsts_done = True
        if batch.resent:
            await self._apply_resent(batch, sha)

    async def _apply_resent(self, batch: FlushBatch, sha: str) -> None:
        """Count the batch's re-sent events whose first send was not counted (dedupe.py).

        Sent again whole on a retry: the check admits this batch's own re-sends again
        (by its token) and the per-slot markers skip the calls that landed.
        """
        await self._wait_for_other_writers(batch.sealed_at)
        admitted = batch.resent
        if self.dedupe_window:
            token = f"{batch.writer}:{batch.seq}"
            admitted = await dedupe.admit(
                self.redis, batch.resent, token, self.dedupe_window, self.rollups.calendar, self.clock()
            )
        scratch = Aggregator()
        to_count = {(hit.app, hit.minute, hit.event_id) for hit in admitted}
        for hit in batch.resent:  # each admitted id counts once; every other copy is a duplicate
            key = (hit.app, hit.minute, hit.event_id)
            if key in to_count:
                to_count.discard(key)
                scratch.count(hit._replace(event_id="", resent=0))
            else:
                scratch.reject(hit.app, hit.minute, FLAGGED + DUPLICATE_RESEND_FLAG)
        snap = scratch.drain()
        if self.caps is not None:  # capped like first sends (the decisions are final: a retry is the same)
            snap = self.caps.rewritten(snap, await self._refusals(snap))
        commands: list[redis_client.Command] = [
            ("EVALSHA", sha, len(script_keys), *script_keys, *args)
            for writes in self.rollups.build(snap)
            for script_keys, args in encode_calls(writes, batch.writer, batch.seq, self.completed_percent, RESENT_CALLS)
        ]
        if self.record_touched:
            commands += touched_calls(snap, self.rollups.calendar, self.record_touched)
        for chunk in redis_client.chunks(self._prepared(commands), ROUND_TRIP_COMMANDS, ROUND_TRIP_BYTES, size=prepared_size):
            await self._round_trip(chunk)
        self.stats.resent_admitted += len(admitted)
        self.stats.resent_duplicates += len(batch.resent) - len(admitted)
        batch.resent = []

    async def _wait_for_other_writers(self, arrived_by: float) -> None:
        """Until every other live writer's first sends that arrived before `arrived_by`
        are in Redis (their watermark, finality.py), or dedupe_hold_max passes."""
        if self.finality is None:
            return
        await self.finality.heartbeat(self.watermark(), self.firsts_watermark())  # others may wait for us
        # A writer far behind (replaying a long journal) is waited for once, not for
        # every batch: until it has caught up, the check is made at once.
        give_up = time.monotonic() + (0.0 if self._others_lagging else self.dedupe_hold_max)
        while True:
            others = await self.finality.others_firsts()
            if others is None or others >= arrived_by:
                self._others_lagging = False
                return
            self._check_stop_deadline()  # shutting down: the journal keeps them for the next start
            if time.monotonic() >= give_up:
                self.stats.resent_unchecked_waits += 1
                if not self._others_lagging:
                    log.warning("re-sent events checked without waiting for a writer %.1f s behind", arrived_by - others)
                self._others_lagging = True
                return
            await asyncio.sleep(WATERMARK_POLL)

    def _build(
        self, batch: FlushBatch, part: Snapshot | PackedSnapshot, sha: str
    ) -> asyncio.Future[tuple[list[Prepared], set[str], int]]:
        """Start making the commands of `part` (one of `batch.parts`): (commands, new apps, builder)."""
        apps = part.apps if isinstance(part, PackedSnapshot) else part_apps(part)
        assert batch.refused is not None  # decided with the parts (_apply)
        refused = {key: values for key, values in batch.refused.items() if key[0] in apps}
        return asyncio.ensure_future(self._commands(batch, part, sha, apps - self._known_apps, refused))

    async def _commands(
        self, batch: FlushBatch, part: Snapshot | PackedSnapshot, sha: str, new_apps: set[str], refused: Refused
    ) -> tuple[list[Prepared], set[str], int]:
        """The part's commands packed in a thread or by the build process, the values the
        deployment's caps refused (`refused`, store/capping.py) counted as (other). A
        packed part stays packed in `batch.parts`: the thread unpacks it for its build
        only, the build process is sent its bytes."""
        share = self._share()
        # Far behind, the build process (idle priority) would be starved by the hit loop.
        if self.build_worker is not None and len(self.pending) > CHILD_BUILDS_PENDING_MAX:
            self.stats.thread_builds["behind"] += 1
        elif self.build_worker is not None:
            # A packed part goes to the child as its bytes (build_worker._part_payloads).
            built = await self.build_worker.packed(part, BuildJob(batch.writer, batch.seq, sha, new_apps, refused, self.clock()))
            if built is not None:
                self.stats.parts_built_apart += 1
                return cast("list[Prepared]", built[0]), new_apps, built[1]
            self.stats.thread_builds[self.build_worker.declined] += 1

        def build() -> list[Prepared]:
            pace = Pacer(share)  # made in the thread: it reads the thread's CPU clock
            live = unpack(part) if isinstance(part, PackedSnapshot) else part
            packed = self._built(live, batch, sha, new_apps, refused, pace)
            self.stats.paced_seconds += pace.paused
            return packed

        self.stats.parts_built_in_thread += 1
        return await asyncio.to_thread(build), new_apps, THREAD_BUILDER

    def _built(
        self, part: Snapshot, batch: FlushBatch, sha: str, new_apps: set[str], refused: Refused,
        pace: Callable[[], None] = no_pacing,
    ) -> list[Prepared]:
        """The part's commands, its refused values counted as (other). No I/O: runs in the
        flusher's thread or in the build process (build_worker.py)."""
        capped = self.caps.rewritten(part, refused) if self.caps is not None else part
        return self._packed(capped, batch, sha, new_apps, pace)

    async def _refusals(self, snap: Snapshot) -> Refused:
        """The values of `snap` the deployment's caps refuse (store/capping.py)."""
        if self.caps is None:
            return {}
        return await self._decided(await asyncio.to_thread(self.caps.undecided, snap))

    async def _send(self, batch: FlushBatch, commands: list[Prepared]) -> None:
        """The first part's commands from `batch.done` on, in bounded round trips."""
        for chunk in redis_client.chunks(commands[batch.done :], ROUND_TRIP_COMMANDS, ROUND_TRIP_BYTES, size=prepared_size):
            await self._round_trip(chunk)
            batch.done += len(chunk)

    async def _round_trip(self, chunk: list[Prepared]) -> None:
        self._check_stop_deadline()
        try:
            await self._send_round_trip(chunk)
        except NoScriptError:
            # Redis restarted, or a replica took over a master's slots: either has no
            # script cache (it is not replicated). Load the script (its SHA, in the
            # packed commands, is the same) and resend this round trip at once: the
            # slots that applied it skip it by their markers.
            self._sha = await self.redis.script_load(APPLY_FLUSH_LUA)
            await self._send_round_trip(chunk)
        self.stats.round_trips += 1

    async def _send_round_trip(self, chunk: list[Prepared]) -> None:
        if self.cluster_sender:
            await self.cluster_sender.send(cast("list[redis_client.Command]", chunk), self.round_trip_timeout)
        else:
            await redis_client.send_packed(self.redis, cast("list[bytes]", chunk), self.round_trip_timeout)

    def _check_stop_deadline(self) -> None:
        if self._stop_by is not None and time.monotonic() > self._stop_by:
            # Shutting down with a long backlog: stop between round trips; the
            # journal keeps the rest for the next start.
            raise RedisTimeoutError("shutdown deadline passed with the batch part applied")


async def _release(part: Snapshot | PackedSnapshot) -> None:
    """Free an applied part's entries a slice at a time, the hits answered between two
    (SHED_ENTRIES says why). Nothing refers to it any more: it was built and sent."""
    if isinstance(part, Snapshot):
        while not part.shed(SHED_ENTRIES):
            await asyncio.sleep(0)


# What a batch asks the deployment's caps (DeploymentCaps.undecided): the values not
# decided yet, and every capped value present.
Questions = tuple[Wanted, dict[CapKey, set[str]]]
# A command ready to send: packed (single Redis) or its arguments (cluster, routed first).
Prepared = bytes | redis_client.Command


def prepared_size(command: Prepared) -> int:
    if isinstance(command, bytes):
        return len(command)
    return sum(len(arg) if isinstance(arg, str | bytes) else 8 for arg in command)


def part_apps(snap: Snapshot) -> set[str]:
    return snap.apps()
