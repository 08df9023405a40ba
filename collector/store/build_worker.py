"""A flush's build in a child process, so the hit loop keeps the GIL (issue 17, tail latency).

Once a second the flusher turns each part of its batch into packed Redis commands: fold,
encode, pack, some tens of milliseconds of CPU. In a thread of the collector that CPU
holds the GIL: every callback of the hit loop must win it back from the building thread
(up to the switch interval each time), which puts about 1 % of requests in the
several-millisecond range. Here the same pure function — part + refused values + the
batch's numbers -> packed commands (Flusher._built) — runs in one child process per
collector worker, which has a GIL of its own and runs at the SCHED_IDLE priority: the
kernel hands the core to the hit loop the moment it has work, the build takes what is
left. The collector keeps everything else (sealing, cap decisions, sending, retries,
journal): the child only computes.

The event loop itself talks to the child: it pickles the part down the child's stdin
in chunks of CHUNK_ENTRIES entries, yielding to the hits between two chunks (a pickle
call holds the GIL in one stretch: each stays well under a millisecond), and reads the
packed commands back from its stdout in messages of about ANSWER_BYTES. No thread of the
collector holds the GIL meanwhile, so the loop never waits to get it back.

The flush never waits on the child for long: until the child said it is ready, while it
is late (no answer within `timeout`: the cores are busy, it runs only on idle time) and
until it has caught up, and when it died or failed (replaced; the thread builds alone
for `retry_after` seconds), the part is built in the flusher's thread as before
(store/pacing.py). A child still not done LATE_MAX seconds later (stopped, stuck) is
replaced too. The child exits when its stdin reaches
EOF, which happens when the collector closes it or dies, even by SIGKILL (the pipe's
write end exists only in the collector: close-on-exec).

Commands of one part built by two different processes may come in another order (sets
iterate by their per-process string hashes): `builder` names who built them, and the
flusher resumes a part's partial send only with commands of the same builder.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import pickle
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import IO, TYPE_CHECKING, Any, cast

if TYPE_CHECKING:  # the child lowers its priority before it imports the build's modules
    from collector.store.aggregate import Snapshot
    from collector.store.capping import Refused
    from collector.store.packed_snapshot import PackedSnapshot

log = logging.getLogger(__name__)

# Snapshot entries pickled per message: a tenth to a third of a millisecond of GIL each
# (bench/build_worker_cost.py), the longest a request waits behind it.
CHUNK_ENTRIES = 500
# Packed commands per answer message (bytes, about). Small, so that reading one (the
# stream's buffer, its copy, the unpickled bytes) takes memory from the heap a message
# before freed rather than a fresh mapping: glibc maps every block of 128 KiB and more
# for itself (allocator.py), and the loop then faults in each of its pages, ~3 µs a page
# on a VM — 1 MiB messages made stalls of 2-5 ms on the hit loop at every flush
# (bench/RESULTS.md, session 17).
ANSWER_BYTES = 32 << 10
# Seconds the flusher's thread builds alone after a child failed (and was replaced).
RETRY_AFTER = 10.0
# Seconds a build not answered in time may still take in the background (a busy machine)
# before its child is taken for stopped or stuck, and replaced.
LATE_MAX = 30.0

_LENGTH = struct.Struct(">I")
_MAPPINGS = ("cube", "rejected")
_SETS = ("visitors", "first_party")
# An (app, minute)'s event ids go as one str, joined by this: pickled as one object rather
# than one per id (an id a POST event, ~60 % of a POST-50 part's packed bytes) and split in
# C, where a list of str cost ~0.12 µs a POST-50 event more to pack and unpack (the memo's
# entry and the opcode of each id: bench/RESULTS.md, session 24). An id may hold any
# character, this one too: a list whose join holds more separators than the gaps between
# its ids goes as the list it is (_joined_ids).
_ID_SEPARATOR = "\x00"

THREAD_BUILDER = 0  # the `builder` of commands built in the flusher's own thread (children: their pid)

# Why a part was built in the flusher's thread rather than by the child (FlushStats, /metrics):
# the writer far behind (more than flusher.CHILD_BUILDS_PENDING_MAX batches pending: the child, at idle priority, would be
# starved), the child still starting, still finishing a part it answered late, late with
# this one, or failed (replaced; the thread builds alone for retry_after).
THREAD_BUILD_REASONS = ("behind", "starting", "busy", "late", "failed")


@dataclass(frozen=True, slots=True)
class BuildConfig:
    """What a build reads besides the part, fixed for the collector's life: the child is
    given the collector's own values (Flusher.build_config)."""

    writer: str
    timezone: str
    ttls: dict[str, int]
    completed_percent: int
    record_touched: tuple[str, ...]
    dedupe_window: int


@dataclass(frozen=True, slots=True)
class BuildJob:
    """What one part's build needs besides the part."""

    writer: str
    seq: int
    sha: str
    new_apps: set[str]
    refused: Refused
    now: float  # the collector's clock when the build was asked for (dedupe's record slice)


class WorkerFailed(Exception):
    """The child died, failed, or did not answer in time."""


# ---- the part on the wire ----------------------------------------------------------------


def part_messages(part: Snapshot) -> Iterator[tuple[Any, ...]]:
    """The entries the build reads, as plain data in chunks (Snapshot and Session are
    compiled classes, which pickle does not know). Re-sent hits and the event count are
    the collector's business, not the build's.

    A mapping's chunk is a dict and a deep tag's group that fits in a chunk goes whole (its
    dict or set): pickled as such, with no (key, value) tuple per entry to make, pickle
    and unpickle, and read back by one C update — where lists of pairs cost ~a third more
    of a POST-50 event's packing and unpacking (bench/RESULTS.md, session 22). An (app,
    minute)'s event ids go as one joined str (_joined_ids)."""
    for name in _MAPPINGS:
        for mapping in _dict_chunks(getattr(part, name)):
            yield (name, mapping)
    for mapping in _dict_chunks(part.event_ids):
        yield ("event_ids", _joined_ids(mapping))
    for name in _SETS:
        for chunk in _chunked(getattr(part, name)):
            yield (name, chunk)
    # The deep tag's entries are grouped by (app, minute) (store/aggregate.py Snapshot): sent
    # as groups, a chunk's groups holding CHUNK_ENTRIES entries at most in all.
    incs = (((key, suffix), names) for key, of_suffix in part.deep_incs.items() for suffix, names in of_suffix.items())
    for chunk in _grouped_chunks(incs):
        yield ("deep_incs", chunk)
    for chunk in _grouped_chunks(part.deep_members.items()):
        yield ("deep_members", chunk)
    # A session as its fields, its targets the tuple it holds: its JSON form (Session.as_json,
    # 8 lists made, pickled, unpickled, then turned into tuples by from_json) cost ~360
    # instructions a POST-50 event more to pack and unpack (bench/RESULTS.md, session 25).
    sessions = ((key, minute, s.ms, s.ws, s.dur, s.started, s.targets) for key, (minute, s) in part.sessions.items())
    for chunk in _chunked(sessions):
        yield ("sessions", chunk)


def _chunked(entries: Iterable[Any]) -> Iterator[list[Any]]:
    entries = iter(entries)
    while chunk := list(islice(entries, CHUNK_ENTRIES)):
        yield chunk


def _dict_chunks(entries: dict[Any, Any]) -> Iterator[dict[Any, Any]]:
    """`entries` in dicts of CHUNK_ENTRIES items at most, in their order (a small one as
    it is: the caller pickles it at once)."""
    if len(entries) <= CHUNK_ENTRIES:
        if entries:
            yield entries
        return
    items = iter(entries.items())
    while chunk := dict(islice(items, CHUNK_ENTRIES)):
        yield chunk


def _grouped_chunks(groups: Iterable[tuple[Any, Collection[Any]]]) -> Iterator[list[tuple[Any, Collection[Any]]]]:
    """(key, entries) groups as chunks of (key, entries), CHUNK_ENTRIES entries a chunk at
    most: a group that fits in the chunk's room as it is (a dict, a set), one larger than
    that in pieces (lists of its items) over several."""
    chunk: list[tuple[Any, Collection[Any]]] = []
    room = CHUNK_ENTRIES
    for key, entries in groups:
        if len(entries) <= room:
            if entries:
                chunk.append((key, entries))
                room -= len(entries)
        else:
            items = iter(entries.items() if isinstance(entries, dict) else entries)
            while some := list(islice(items, room)):
                chunk.append((key, some))
                room -= len(some)
                if not room:
                    yield chunk
                    chunk, room = [], CHUNK_ENTRIES
        if not room:
            yield chunk
            chunk, room = [], CHUNK_ENTRIES
    if chunk:
        yield chunk


def _joined_ids(event_ids: dict[Any, list[str]]) -> dict[Any, str | list[str]]:
    """Each (app, minute)'s ids as one str (_ID_SEPARATOR says why), or as the list it is
    when an id holds the separator (the str could not be split back into the same ids):
    a join of n strings holds n - 1 separators exactly when none of them holds one."""
    out: dict[Any, str | list[str]] = {}
    for key, ids in event_ids.items():
        joined = _ID_SEPARATOR.join(ids)
        out[key] = joined if ids and joined.count(_ID_SEPARATOR) == len(ids) - 1 else ids
    return out


def _split_ids(ids: str | list[str]) -> list[str]:
    """The ids _joined_ids was given, in their order."""
    return ids.split(_ID_SEPARATOR) if isinstance(ids, str) else ids


def add_to_part(part: Snapshot, name: str, chunk: Any) -> None:
    """One message of part_messages into `part` (in the child). The build's modules are
    imported where a message needs them (the child imports them only once its priority is
    lowered), not at every message: two imports took ~7,000 instructions a call, ~60 a
    POST-50 event of an unpacked part (bench/RESULTS.md, session 25)."""
    if name in _MAPPINGS:
        getattr(part, name).update(chunk)
    elif name in _SETS:
        getattr(part, name).update(chunk)
    elif name == "event_ids":
        event_ids = part.event_ids
        for key, ids in chunk.items():
            event_ids[key] = _split_ids(ids)
    elif name == "deep_incs":
        for (key, suffix), names in chunk:
            of_suffix = part.deep_incs.get(key)
            if of_suffix is None:
                of_suffix = part.deep_incs[key] = {}
            found = of_suffix.get(suffix)
            if found is None:
                found = of_suffix[suffix] = {}
            found.update(names)
    elif name == "deep_members":
        from collector.untracked import untracked_set

        for key, members in chunk:
            found_members = part.deep_members.get(key)
            if found_members is None:
                found_members = part.deep_members[key] = untracked_set()
            found_members.update(members)
    elif name == "sessions":
        from collector.features.facts import Session

        for key, minute, ms, ws, dur, started, targets in chunk:
            part.sessions[key] = [minute, Session(ms, ws, dur, started, targets)]
    else:
        raise ValueError(f"unknown part entries {name!r}")


def answer_chunks(packed: list[bytes]) -> Iterator[list[bytes]]:
    chunk: list[bytes] = []
    size = 0
    for command in packed:
        chunk.append(command)
        size += len(command)
        if size >= ANSWER_BYTES:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


# ---- the collector's side ----------------------------------------------------------------


class BuildWorker:
    """The collector's handle on its child, used from the event loop: the loop pickles the
    part's chunks, one at a time, yielding between them, so no request waits behind more
    than one chunk; it never contends for the GIL with a building thread."""

    def __init__(self, config: BuildConfig, timeout: float, retry_after: float = RETRY_AFTER) -> None:
        self.config = config
        self.timeout = timeout  # seconds a part may take in the child before the thread builds it
        self.retry_after = retry_after
        self.failures = 0  # children that died, failed, or did not answer within LATE_MAX: replaced
        self.late = 0  # builds not answered within `timeout`: built in the thread meanwhile
        self.declined = ""  # why the last call of `packed` answered None (THREAD_BUILD_REASONS)
        self._late: asyncio.Future[None] | None = None
        self.starts = 0
        self._child: asyncio.subprocess.Process | None = None
        self._starting: asyncio.Task[None] | None = None
        self._ready = False
        self._late_part: Snapshot | PackedSnapshot | None = None  # what a late build reads
        self._failed_at = -math.inf  # monotonic: the child's last failure
        self._closed = False

    @property
    def pid(self) -> int | None:
        return self._child.pid if self._child else None

    def start(self) -> None:
        """Start the child (in the background: it is used once it said it is ready)."""
        if not self._closed and (self._starting is None or self._starting.done()):
            self._ready = False
            self._starting = asyncio.ensure_future(self._start())

    async def wait_until_ready(self, timeout: float) -> bool:
        """For tests and benchmarks: False when the child did not get ready in time."""
        give_up = time.monotonic() + timeout
        while not self._ready and time.monotonic() < give_up:
            if self._child is None and (self._starting is None or self._starting.done()):
                self.start()
            await asyncio.sleep(0.01)
        return self._ready

    async def close(self) -> None:
        self._closed = True
        if self._late is not None:
            self._late.cancel()
            await asyncio.gather(self._late, return_exceptions=True)
        if self._starting is not None:
            self._starting.cancel()
            await asyncio.gather(self._starting, return_exceptions=True)
        await self._stop(kill=False)

    async def packed(self, part: Snapshot | PackedSnapshot, job: BuildJob) -> tuple[list[bytes], int] | None:
        """The part's packed commands and the child's pid, or None: build it yourself.
        A packed part (packed_snapshot.py) is sent as it is, never unpacked here.

        A child that has not answered within `timeout` is left to finish in the
        background (its answer dropped) and used again once it has: it is slow because
        the cores are busy, which ends; one that does not finish within LATE_MAX is
        replaced, as is one that died or failed.
        """
        if not self._usable():
            self.declined = self._unusable_reason()
            return None
        child = self._child
        assert child is not None
        self._ready = False  # busy: one build at a time on the pipes
        exchange = asyncio.ensure_future(_exchange(child, part, job))
        try:
            done, _ = await asyncio.wait({exchange}, timeout=self.timeout)
        except BaseException:  # cancelled: what is in the pipes is unknown
            exchange.cancel()
            await self._replace()
            raise
        if not done:
            self.late += 1
            self.declined = "late"
            self._late_part = part
            self._late = asyncio.ensure_future(self._finish_late(exchange, child.pid))
            return None
        try:
            packed = exchange.result()
        except Exception as exc:  # the pipes, the child, or a bug: either way not this child again
            self.declined = "failed"
            await self._failed(child.pid, exc)
            return None
        self._ready = True
        return packed, child.pid

    def still_reading(self, part: Snapshot | PackedSnapshot) -> bool:
        """Whether a late build still reads `part` (its answer will be dropped): the part,
        built meanwhile in the thread and applied, must stay whole until then."""
        return self._late is not None and not self._late.done() and self._late_part is part

    async def _finish_late(self, exchange: asyncio.Future[list[bytes]], pid: int) -> None:
        # Any failure replaces the child: left "not ready" (session 17 saw a RuntimeError
        # do that), every later part was built in the thread for the collector's life.
        try:
            await asyncio.wait_for(exchange, LATE_MAX)
        except Exception as exc:  # TimeoutError, the pipes, the child, or a bug
            await self._failed(pid, exc)
            return
        finally:
            self._late_part = None
        self._ready = not self._closed

    async def _failed(self, pid: int, exc: BaseException) -> None:
        if self.pid != pid:
            return  # that child was seen dead and replaced already (_usable)
        self.failures += 1
        log.warning("flush build process %d: %s; parts are built in the thread", pid, str(exc) or repr(exc))
        self._failed_at = time.monotonic()
        await self._replace()

    # ---- lifecycle ----

    def _usable(self) -> bool:
        if self._closed or time.monotonic() < self._failed_at + self.retry_after:
            return False
        if self._child is not None and self._child.returncode is not None:
            self.failures += 1
            log.warning("flush build process %d exited (%s); starting another", self._child.pid, self._child.returncode)
            self._child = None
            self._failed_at = time.monotonic()  # one that dies at once is not restarted at every part
            self.start()
            return False
        return self._ready

    def _unusable_reason(self) -> str:
        if self._closed or time.monotonic() < self._failed_at + self.retry_after:
            return "failed"
        if self._late is not None and not self._late.done():
            return "busy"
        return "starting"

    async def _start(self) -> None:
        await self._stop(kill=True)
        try:
            child = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "collector.store.build_worker", stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                limit=ANSWER_BYTES,
            )
        except OSError as exc:  # out of processes or memory: the thread builds meanwhile
            log.warning("flush build process not started: %s", exc)
            self._failed_at = time.monotonic()
            return
        assert child.stdin is not None and child.stdout is not None
        self._child = child
        self.starts += 1
        try:
            _write(child.stdin, ("config", self.config))
            await child.stdin.drain()
            # As long as it takes: at idle priority, its imports wait for an idle core.
            self._ready = await _read(child.stdout) == ("ready",)
        except (OSError, EOFError, asyncio.IncompleteReadError, pickle.UnpicklingError) as exc:
            log.warning("flush build process %d did not start: %s", child.pid, exc)

    async def _replace(self) -> None:
        self._ready = False
        await self._stop(kill=True)
        self.start()  # it gets ready meanwhile, at idle priority

    async def _stop(self, kill: bool) -> None:
        child, self._child = self._child, None
        if child is None:
            return
        if kill and child.returncode is None:
            child.kill()
        if child.stdin is not None:
            child.stdin.close()  # EOF: the child exits
        try:
            await asyncio.wait_for(child.wait(), self.timeout)
        except TimeoutError:
            child.kill()
            await child.wait()  # reaped: no zombie


async def _exchange(child: asyncio.subprocess.Process, part: Snapshot | PackedSnapshot, job: BuildJob) -> list[bytes]:
    """Send one part's build to the child and read its packed commands back."""
    assert child.stdin is not None and child.stdout is not None
    _write(child.stdin, ("job", job))
    for payload in _part_payloads(part):
        _write_framed(child.stdin, payload)
        await child.stdin.drain()
        await asyncio.sleep(0)  # the hit loop's turn between two chunks
    _write(child.stdin, ("end",))
    await child.stdin.drain()
    return await _answer(child.stdout)


def _part_payloads(part: Snapshot | PackedSnapshot) -> Iterator[bytes]:
    """The part's messages (part_messages), pickled. A packed part's chunks already are
    those very pickles (packed_snapshot.pack): they go to the child as they are, where
    unpacking the part and pickling it again made the same bytes for ~0.9 µs of the
    collector's CPU per POST-50 event, and a thread hop (bench/RESULTS.md session 11)."""
    from collector.store.packed_snapshot import PackedSnapshot  # it imports this module

    if isinstance(part, PackedSnapshot):
        if part.spilled is not None:
            raise ValueError("a spilled part is read back (spill.restored) before it is built")
        return iter(part.chunks)
    return pickled_messages(part)


def pickled_messages(part: Snapshot) -> Iterator[bytes]:
    """part_messages, each pickled: what the child is sent, and what packed_snapshot keeps."""
    for message in part_messages(part):
        yield pickle.dumps(message, pickle.HIGHEST_PROTOCOL)


def _write(stream: IO[bytes] | asyncio.StreamWriter, message: tuple[Any, ...]) -> None:
    """One framed message: its length, then its pickle (one GIL stretch, a chunk at most)."""
    _write_framed(stream, pickle.dumps(message, pickle.HIGHEST_PROTOCOL))


def _write_framed(stream: IO[bytes] | asyncio.StreamWriter, payload: bytes) -> None:
    """A pickle already made, framed by its length."""
    stream.write(_LENGTH.pack(len(payload)) + payload)


async def _read(stream: asyncio.StreamReader) -> Any:
    (size,) = _LENGTH.unpack(await stream.readexactly(_LENGTH.size))
    return pickle.loads(await stream.readexactly(size))


async def _answer(stream: asyncio.StreamReader) -> list[bytes]:
    packed: list[bytes] = []
    while True:
        message = await _read(stream)
        if message[0] == "packed":
            packed += message[1]
        elif message[0] == "done":
            return packed
        else:
            raise WorkerFailed(f"build failed: {message[1]}")


# ---- the child ---------------------------------------------------------------------------


def _read_blocking(stream: IO[bytes]) -> Any:
    header = stream.read(_LENGTH.size)
    if len(header) < _LENGTH.size:
        raise EOFError
    (size,) = _LENGTH.unpack(header)
    payload = stream.read(size)
    if len(payload) < size:
        raise EOFError
    return pickle.loads(payload)


def _serve(requests: IO[bytes], answers: IO[bytes]) -> None:
    import redis.asyncio as aioredis

    from collector.store.aggregate import Aggregator, Snapshot
    from collector.store.buckets import Calendar
    from collector.store.capping import DeploymentCaps
    from collector.store.flusher import FlushBatch, Flusher
    from collector.store.rollup import RollupBuilder

    kind, config = _read_blocking(requests)
    assert kind == "config"
    calendar = Calendar(config.timezone)
    now = [0.0]
    # A flusher that only builds: no Redis, no journal; the collector's writer id (a batch
    # of its own is built unlike one an earlier run left); its clock is the collector's at
    # the time the build was asked for.
    flusher = Flusher(
        cast("aioredis.Redis", None), Aggregator(), RollupBuilder(calendar, config.ttls), 1.0,
        completed_percent=config.completed_percent, record_touched=config.record_touched,
        dedupe_window=config.dedupe_window, clock=lambda: now[0], writer=config.writer,
        caps=DeploymentCaps({}, calendar),  # its rewrite reads only the calendar and the refused values
    )
    _write(answers, ("ready",))
    answers.flush()
    while True:
        kind, job = _read_blocking(requests)
        assert kind == "job"
        part = Snapshot()
        while (message := _read_blocking(requests))[0] != "end":
            add_to_part(part, *message)
        now[0] = job.now
        try:
            packed = flusher._built(part, FlushBatch(job.writer, job.seq, None), job.sha, job.new_apps, job.refused)
        except Exception as exc:  # reported: the collector builds this part itself
            log.exception("flush build failed")
            _write(answers, ("error", repr(exc)))
        else:
            for chunk in answer_chunks([bytes(command) for command in packed if isinstance(command, bytes)]):
                _write(answers, ("packed", chunk))
            _write(answers, ("done",))
        answers.flush()


def _any_core() -> None:
    """Run on any core the machine allows, not only the collector's: a worker pinned to a
    core (taskset) leaves the others' idle time to its build, which takes nothing from
    anyone at idle priority. (In a cpuset, the kernel keeps it within the cpuset.)"""
    if hasattr(os, "sched_setaffinity") and os.cpu_count():
        try:
            os.sched_setaffinity(0, range(os.cpu_count() or 1))
        except OSError:
            pass  # kept where the collector runs: it works there too


def main() -> None:
    if hasattr(os, "SCHED_IDLE"):  # Linux: any task that wants the core preempts this one
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    else:
        os.nice(19)
    _any_core()
    # Its life is the collector's (EOF on stdin): a Ctrl-C to the terminal's process group
    # must not end it before the collector's last flush.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s build-worker %(levelname)s %(message)s")
    requests = os.fdopen(0, "rb")
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print goes to stderr, never into the answers
    try:
        _serve(requests, answers)
    except (EOFError, BrokenPipeError):
        pass  # the collector closed the pipes, or is gone


if __name__ == "__main__":
    main()
