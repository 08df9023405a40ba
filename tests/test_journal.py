"""The journal on its own: segments, replay, torn records, locking, and the flusher's use."""

from __future__ import annotations

import pytest

from pathlib import Path

from collector.aggregate import NO_VISIT, VISIT_SECOND_PAGE, VISIT_START, Aggregator
from collector.buckets import Calendar
from collector.deep import DeepFacts, Session
from collector.device import Device
from collector.flusher import Flusher
from collector.geo import Region
from collector.journal import Journal, JournalLocked, encode_count, encode_reject, replay
from collector.rollup import RollupBuilder

DEVICE = Device("pc", "Chrome", "Windows")
REGION = Region("CN", "330000", "330100", "中国", "浙江省", "杭州市")


# tests/data/journal-v1/ holds a segment written by encode_count/encode_reject as they
# were at commit aa71f33, before segments carried a format header (format version 1),
# from exactly these records. Never regenerate it: it stands for a journal an older
# collector left behind, which a newer one must still replay.
V1_SEGMENT = Path(__file__).parent / "data" / "journal-v1" / "0a1b2c3d4e5f6071-000000000003.jnl"
V1_MINUTE = 29_000_000
V1_COUNTS = [
    ("edu", V1_MINUTE, "pageview", DEVICE, REGION, b"\x01" * 8, b"\x11" * 8, "https://e.edu/a", "pc1", "(direct)",
     VISIT_START, 0, -1, "vid1", None),
    ("edu", V1_MINUTE, "pageview", DEVICE, REGION, b"\x01" * 8, b"\x11" * 8, "https://e.edu/b", "", "https://e.edu/a",
     VISIT_SECOND_PAGE, 0, -1, "vid1",
     DeepFacts([("c", "pv_logged_in", 1)], [("u:users", "aa" * 8, "bb" * 8)])),
    ("edu", V1_MINUTE + 1, "engagement", Device("mobile", "WeChat", "Android"),
     Region("CN", "110000", "110100", "中国", "北京市", "北京市"), b"\x02" * 8, b"\x12" * 8, "", "", "",
     NO_VISIT, 15_000, 80, "", None),
    ("edu", V1_MINUTE + 1, "media", DEVICE, REGION, b"\x01" * 8, b"\x11" * 8, "", "", "", NO_VISIT, 0, -1, "vid1",
     DeepFacts([("m:resource", "watch_ms:r1", 30_000)], [("u:media", "01" * 8, "11" * 8)],
               Session("ms1", 30, 120, 1, (("", ""), ("resource", "r1"))))),
    ("edu", V1_MINUTE + 2, "pageview", Device("bot", "Baiduspider", "Other"), Region("", "", "", "", "", ""),
     b"\x03" * 8, b"\x13" * 8, "https://e.edu/a", "", "(direct)", NO_VISIT, 0, -1, "", None),
]
V1_REJECTS = [("edu", V1_MINUTE, "too_long:u"), ("edu", V1_MINUTE + 2, "invalid:t")]


def count_args(app="a", page="https://e.edu/", visitor=b"\x01" * 8):
    return (app, 29_000_000, "pageview", DEVICE, REGION, visitor, b"\x02" * 8, page, "pc1", "(direct)", 1, 0, -1, "vid1")


def test_replay_rebuilds_exactly_what_was_counted(tmp_path):
    journal = Journal(tmp_path)
    assert journal.open() == []
    journal.begin("w1", 1)
    direct = Aggregator()
    records = []
    for i in range(5):
        args = count_args(page=f"https://e.edu/{i % 2}", visitor=bytes([i]) * 8)
        direct.count(*args)
        records.append(encode_count(*args))
    direct.reject("a", 29_000_000, "too_long:u")
    records.append(encode_reject("a", 29_000_000, "too_long:u"))
    journal.append(b"".join(records))
    segment = journal.seal("w1", 2)
    rebuilt = Aggregator()
    assert replay(segment.path, rebuilt) == 6
    a, b = direct.drain(), rebuilt.drain()
    assert a.cube == b.cube and a.visitors == b.visitors and a.first_party == b.first_party and a.rejected == b.rejected


def same_counts(a, b) -> bool:
    return (a.cube, a.visitors, a.first_party, a.rejected, a.deep_incs, a.deep_members, a.sessions, a.events) == (
        b.cube, b.visitors, b.first_party, b.rejected, b.deep_incs, b.deep_members, b.sessions, b.events
    )


def test_a_segment_written_before_format_versions_replays_as_it_always_did():
    expected = Aggregator()
    for args in V1_COUNTS:
        expected.count(*args)
    for args in V1_REJECTS:
        expected.reject(*args)
    rebuilt = Aggregator()
    assert replay(V1_SEGMENT, rebuilt) == len(V1_COUNTS) + len(V1_REJECTS)
    assert same_counts(rebuilt.drain(), expected.drain())


def test_torn_last_record_is_skipped(tmp_path):
    journal = Journal(tmp_path)
    journal.open()
    journal.begin("w1", 1)
    journal.append(encode_count(*count_args()))
    journal.append(encode_count(*count_args())[:40])  # the process died mid-write
    segment = journal.seal("w1", 2)
    assert replay(segment.path, Aggregator()) == 1


def test_empty_segments_vanish_and_leftovers_are_listed_in_order(tmp_path):
    journal = Journal(tmp_path)
    journal.open()
    journal.begin("w1", 1)
    assert journal.seal("w1", 2) is None  # nothing written: no segment kept
    journal.append(encode_count(*count_args()))
    kept = journal.seal("w1", 3)
    journal.append(encode_count(*count_args()))
    journal.close()  # a crash would leave the same files
    again = Journal(tmp_path)
    leftovers = again.open()
    assert [s.seq for s in leftovers] == [2, 3] and leftovers[0] == kept
    assert again.bytes == sum(s.path.stat().st_size for s in leftovers)
    again.close()


def test_one_process_per_journal_directory(tmp_path):
    first = Journal(tmp_path)
    first.open()
    with pytest.raises(JournalLocked):
        Journal(tmp_path).open()
    first.close()
    Journal(tmp_path).open()


async def test_batches_behind_a_failing_one_wait_on_disk_not_in_memory(tmp_path, redis_server, redis_url):
    import redis.asyncio as aioredis

    client = aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)  # nobody there
    aggregator = Aggregator()
    journal = Journal(tmp_path)
    flusher = Flusher(client, aggregator, RollupBuilder(Calendar("Asia/Shanghai"), {}), 1.0, journal)
    flusher.recover()
    for round_ in range(3):
        args = count_args(visitor=bytes([round_]) * 8)
        journal.append(encode_count(*args))
        aggregator.count(*args)
        assert not await flusher.flush()
    assert [b.slots is not None or b.snap is not None for b in flusher.pending] == [True, False, False]
    assert [b.events for b in flusher.pending] == [1, 1, 1]
    assert journal.bytes > 0
    # Redis comes back (same writer, same batches): everything lands once, segments go.
    flusher.redis = aioredis.from_url(redis_url)
    assert await flusher.flush()
    # only the active segment remains, still empty
    assert journal.bytes == 0 and [p.stat().st_size for p in tmp_path.glob("*.jnl")] == [0]
    sync = redis_server.client()
    assert sum(int(sync.hget(k, "pv")) for k in sync.scan_iter("eb:{a|*}:day:*:c")) == 3
    journal.close()
    await client.aclose()
    await flusher.redis.aclose()
