"""store/spill.py: a batch queued behind another waits with its packed parts in a file beside
its journal segment, not in the heap (issue 17, peak RSS during POST runs). The segment stays
the batch's source of truth: a spill file that cannot be read back as written makes the
flusher rebuild the batch from its segment, and spill files a crash left are deleted at start
and the segments replayed — every hit counted once, whatever became of the spill files."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.store.aggregate import Aggregator
from collector.store.flusher import LIVE_CELL_BYTES, Flusher
from collector.store.journal import SPILL_SUFFIX, SUFFIX, Journal
from collector.store.packed_snapshot import PackedSnapshot, pack, unpack
from collector.store.spill import SpillLost, SpillWriter, restored
from tests.test_journal import a_hit, journaled_flusher, seal_distinct_hits

HITS_A_BATCH = 2_000  # distinct pages and visitors: ~4,000 entries, ~100 KB packed
# Room for the batch being applied and one sealed behind it, live, and a live room (a tenth)
# too small for a batch's part: those queued are packed — and spilled.
BUDGET = 10_000


def counted_pv(redis_server) -> int:
    sync = redis_server.client()
    return sum(int(sync.hget(key, "pv")) for key in sync.scan_iter("eb:{a|*}:day:*:c"))


async def queue_batches(aggregator, journal: Journal, flusher: Flusher, batches: int) -> int:
    """`batches` batches of HITS_A_BATCH hits sealed one after another without a flush (the
    first of the queue as if being applied), each packed before the next; the hits."""
    hits = 0
    for _ in range(batches):
        hits = await seal_distinct_hits(aggregator, journal, flusher, HITS_A_BATCH, hits)
    return hits


def files(directory: Path, suffix: str) -> list[Path]:
    return sorted(directory.glob("*" + suffix))


def test_a_spilled_part_reads_back_as_the_part_it_was(tmp_path):
    aggregator = Aggregator()
    for n in range(1_200):  # more than one chunk (build_worker.CHUNK_ENTRIES)
        aggregator.count(a_hit(page=f"https://e.edu/{n}", visitor=n.to_bytes(8, "big")))
    parts = aggregator.drain().split_by_app(600)
    packed = [pack(part) for part in parts]
    writer = SpillWriter(tmp_path / "b.spill")
    spilled = [writer.keep(part) for part in packed]
    spill = writer.close()
    assert spill is not None and spill.bytes == sum(part.size for part in packed) == (tmp_path / "b.spill").stat().st_size
    assert all(part.spilled is not None and part.chunks == [] and part.size == 0 for part in spilled)
    with pytest.raises(ValueError):  # never built from nothing
        unpack(spilled[0])
    back = restored(list(spilled), spill.path)
    assert [part.chunks for part in back] == [part.chunks for part in packed]  # type: ignore[union-attr]
    assert [part.apps for part in back] == [part.apps for part in packed]  # type: ignore[union-attr]
    assert [unpack(part).cells for part in back if isinstance(part, PackedSnapshot)] == [part.cells for part in parts]


def test_a_part_of_more_chunks_than_one_writev_takes_is_spilled_whole(tmp_path):
    # writev(2) takes at most IOV_MAX (1,024) buffers: a large part's chunks go in several calls.
    chunks = [n.to_bytes(4, "big") * (1 + n % 7) for n in range(2_500)]
    writer = SpillWriter(tmp_path / "b.spill")
    spilled = writer.keep(PackedSnapshot(list(chunks), [], 2_500, {"a"}))
    spill = writer.close()
    assert spilled.spilled is not None and spill is not None and spill.bytes == sum(map(len, chunks))
    (back,) = restored([spilled], spill.path)
    assert isinstance(back, PackedSnapshot) and back.chunks == chunks


@pytest.mark.parametrize("damage", ["short", "corrupt", "missing", "empty"])
def test_a_damaged_spill_file_is_never_read_as_a_part(tmp_path, damage):
    aggregator = Aggregator()
    for n in range(300):
        aggregator.count(a_hit(page=f"https://e.edu/{n}", visitor=n.to_bytes(8, "big")))
    writer = SpillWriter(tmp_path / "b.spill")
    spilled = writer.keep(pack(aggregator.drain()))
    spill = writer.close()
    assert spill is not None
    data = spill.path.read_bytes()
    if damage == "short":
        spill.path.write_bytes(data[:-1])
    elif damage == "corrupt":
        spill.path.write_bytes(data[:100] + bytes([data[100] ^ 1]) + data[101:])
    elif damage == "missing":
        spill.path.unlink()
    else:
        spill.path.write_bytes(b"")
    with pytest.raises(SpillLost):
        restored([spilled], spill.path)


def test_a_spill_file_that_cannot_be_written_leaves_the_part_in_memory(tmp_path):
    aggregator = Aggregator()
    aggregator.count(a_hit())
    part = pack(aggregator.drain())
    (tmp_path / "b.spill").mkdir()  # in the way: the open fails, as a full or broken disk would
    writer = SpillWriter(tmp_path / "b.spill")
    assert writer.keep(part) is part and writer.close() is None


async def test_queued_batches_wait_in_spill_files_counted_by_the_journal_not_the_memory_budget(
    tmp_path, redis_server, redis_url
):
    """Packed, the batches queued behind the first would spend the memory budget (their
    bytes: more than it holds, so the later ones would be replayed from the journal); spilled,
    each weighs what it keeps in memory, none waits on disk, and their files' bytes count in
    the journal's (its bound, its 503) until their segments go."""
    import redis.asyncio as aioredis

    client = aioredis.from_url(redis_url)
    aggregator, journal, flusher = journaled_flusher(tmp_path, client, batch_max_cells=10**6, memory_max_cells=BUDGET)
    hits = await queue_batches(aggregator, journal, flusher, 8)
    head, *queued = flusher.pending
    assert all(b.in_memory and b.packed is not None and b.packed.spill is not None for b in queued)
    spills = files(tmp_path, SPILL_SUFFIX)
    assert len(spills) == 7 and [b.spill_bytes for b in queued] == [path.stat().st_size for path in spills]
    assert head.cells + sum(b.spill_bytes for b in queued) // LIVE_CELL_BYTES > BUDGET  # packed in memory: not all
    assert flusher._held_cells() <= BUDGET
    on_disk = sum(path.stat().st_size for path in files(tmp_path, SUFFIX) + spills)
    assert journal.bytes == on_disk
    assert await flusher.flush()
    assert journal.bytes == 0 and files(tmp_path, SPILL_SUFFIX) == []
    stats = flusher.stats
    assert (stats.batches_spilled, stats.spills_lost, stats.batches_rebuilt) == (7, 0, 0)
    assert counted_pv(redis_server) == hits
    journal.close()
    await client.aclose()


@pytest.mark.parametrize("damage", ["short", "corrupt", "missing"])
async def test_a_batch_whose_spill_file_is_damaged_is_rebuilt_from_its_segment(tmp_path, redis_server, redis_url, damage):
    import redis.asyncio as aioredis

    client = aioredis.from_url(redis_url)
    aggregator, journal, flusher = journaled_flusher(tmp_path, client, batch_max_cells=10**6, memory_max_cells=BUDGET)
    hits = await queue_batches(aggregator, journal, flusher, 3)
    damaged = files(tmp_path, SPILL_SUFFIX)[0]
    data = damaged.read_bytes()
    if damage == "short":
        damaged.write_bytes(data[: len(data) // 2])
    elif damage == "corrupt":
        damaged.write_bytes(data[:-10] + bytes([data[-10] ^ 0x40]) + data[-9:])
    else:
        damaged.unlink()
    assert await flusher.flush()
    stats = flusher.stats
    assert (stats.batches_spilled, stats.spills_lost, stats.batches_rebuilt, stats.events_rebuilt) == (
        2, 1, 1, HITS_A_BATCH)
    assert counted_pv(redis_server) == hits  # each hit once: the other spill read back, this one replayed
    assert journal.bytes == 0 and files(tmp_path, SPILL_SUFFIX) == []
    journal.close()
    await client.aclose()


async def test_spill_files_a_crash_left_are_deleted_and_their_segments_replayed(tmp_path, redis_server, redis_url):
    """The process stops with batches waiting in spill files (its journal closed, nothing
    flushed: the disk as a kill leaves it). The next start deletes the spill files, never
    reads them, and replays every segment once."""
    import redis.asyncio as aioredis

    client = aioredis.from_url(redis_url)
    aggregator, journal, flusher = journaled_flusher(tmp_path, client, batch_max_cells=10**6, memory_max_cells=BUDGET)
    hits = await queue_batches(aggregator, journal, flusher, 4)
    assert len(files(tmp_path, SPILL_SUFFIX)) == 3
    journal.close()

    aggregator, journal, flusher = journaled_flusher(tmp_path, client)  # the next start
    assert files(tmp_path, SPILL_SUFFIX) == []
    assert flusher.stats.batches_recovered == 4
    assert journal.bytes == sum(path.stat().st_size for path in files(tmp_path, SUFFIX))
    assert await flusher.flush()
    assert counted_pv(redis_server) == hits
    assert journal.bytes == 0
    journal.close()
    await client.aclose()


async def test_a_full_journal_takes_no_spill_file(tmp_path, redis_server, redis_url):
    """Spill files count in the journal's bound: once it is full (hits answered 503), a
    queued batch keeps its packed bytes in memory, within memory_max_cells, rather than
    grow the disk past the bound."""
    import redis.asyncio as aioredis

    client = aioredis.from_url(redis_url)
    aggregator, journal, flusher = journaled_flusher(tmp_path, client, batch_max_cells=10**6, memory_max_cells=BUDGET)
    journal.max_bytes = 1  # full from the first record
    hits = await queue_batches(aggregator, journal, flusher, 3)
    queued = list(flusher.pending)[1:]
    assert all(b.packed is not None and b.packed.spill is None and b.packed.size > 0 for b in queued)
    assert files(tmp_path, SPILL_SUFFIX) == [] and flusher.stats.batches_spilled == 0
    assert await flusher.flush()
    assert counted_pv(redis_server) == hits and journal.bytes == 0
    journal.close()
    await client.aclose()
