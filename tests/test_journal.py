"""The journal on its own: segments, replay, torn records, locking, and the flusher's use."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from collector.enrich.device import Device
from collector.enrich.geo import Region
from collector.features.deep import DeepFacts, Session
from collector.hit.record import Hit
from collector.store import journal as journal_module
from collector.store.aggregate import NO_VISIT, VISIT_SECOND_PAGE, VISIT_START, Aggregator
from collector.store.buckets import Calendar
from collector.store.flusher import FIRST_SEQ, Flusher
from collector.store.journal import (
    DECODERS,
    FORMAT_VERSION,
    HEADER,
    Interned,
    Journal,
    JournalLocked,
    Quarantine,
    Segment,
    encode_hit,
    encode_hits,
    encode_reject,
    replay,
)
from collector.store.rollup import RollupBuilder
from collector.web.appkeys import FLUSHER

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


def a_hit(app="a", page="https://e.edu/", visitor=b"\x01" * 8) -> Hit:
    return Hit(app=app, minute=29_000_000, etype="pageview", device=DEVICE, region=REGION, visitor=visitor,
               month_visitor=b"\x02" * 8, page=page, page_code="pc1", referrer="(direct)", visit_flag=1,
               first_party_id="vid1")


def test_replay_rebuilds_exactly_what_was_counted(tmp_path):
    journal = Journal(tmp_path)
    assert journal.open() == []
    journal.begin("w1", 1)
    direct = Aggregator()
    records = []
    for i in range(5):
        hit = a_hit(page=f"https://e.edu/{i % 2}", visitor=bytes([i]) * 8)
        direct.count(hit)
        records.append(encode_hit(hit))
    direct.reject("a", 29_000_000, "too_long:u")
    records.append(encode_reject("a", 29_000_000, "too_long:u"))
    journal.append(b"".join(records))
    segment = journal.seal("w1", 2)
    rebuilt = Aggregator()
    assert replay(segment.path, rebuilt) == 6
    a, b = direct.drain(), rebuilt.drain()
    assert a.cube == b.cube and a.visitors == b.visitors and a.first_party == b.first_party and a.rejected == b.rejected


def same_counts(a, b) -> bool:
    fields = ("cube", "visitors", "first_party", "rejected", "deep_incs", "deep_members", "sessions", "event_ids",
              "resent", "events")
    return all(getattr(a, name) == getattr(b, name) for name in fields)


def v1_records_counted() -> Aggregator:
    """An aggregator that counted the fixtures' records directly, as their replay must."""
    expected = Aggregator()
    for args in V1_COUNTS:
        expected.count(Hit(*args))
    for args in V1_REJECTS:
        expected.reject(*args)
    return expected


def test_a_segment_written_before_format_versions_replays_as_it_always_did():
    expected = v1_records_counted()
    rebuilt = Aggregator()
    assert replay(V1_SEGMENT, rebuilt) == len(V1_COUNTS) + len(V1_REJECTS)
    assert same_counts(rebuilt.drain(), expected.drain())


# tests/data/journal-v2/ holds a segment written by encode_count/encode_reject of the
# `layers` branch (commit afa9398), the last code to write format version 2 (a header,
# then positional records), from the same records as the v1 fixture. Never regenerate it.
V2_SEGMENT = Path(__file__).parent / "data" / "journal-v2" / "0a1b2c3d4e5f6071-000000000004.jnl"


def test_a_segment_of_format_version_2_replays_exactly():
    assert V2_SEGMENT.read_bytes().startswith(b'{"eb_journal":2}\n')
    expected = v1_records_counted()
    rebuilt = Aggregator()
    assert replay(V2_SEGMENT, rebuilt) == len(V1_COUNTS) + len(V1_REJECTS)
    assert same_counts(rebuilt.drain(), expected.drain())


# Every field of a Hit set to something other than its default.
FULL_HIT = Hit(
    app="edu", minute=29_000_123, etype="engagement", device=Device("mobile", "WeChat", "Android"),
    region=Region("CN", "110000", "110100", "中国", "北京市", "北京市"), visitor=b"\x07" * 16, month_visitor=b"\x08" * 16,
    page="https://e.edu/#/course/1", page_code="course", referrer="www.baidu.com", visit_flag=VISIT_SECOND_PAGE,
    engaged_ms=12_345, scroll=75, first_party_id="vid-9", lang="zh", event_id="ev-1", resent=1,
    deep=DeepFacts([("m:resource", "watch_ms:r1", 30_000)], [("u:media", "01" * 8, "11" * 8)],
                   Session("ms1", 30, 120, 1, (("", ""), ("resource", "r1")))),
)


def test_a_requests_hits_are_one_line_and_replay_as_each_alone(tmp_path):
    """encode_hits writes a request's shared values once, in a line of its hits' rows: a
    new line where a hit does not share them (here 5 runs), and replay gives the very hits
    back, in order."""
    same_visitor = a_hit()
    hits = [FULL_HIT, a_hit(), same_visitor, same_visitor._replace(device=Device("mobile", "Chrome", "Android")),
            a_hit(visitor=b"\x03" * 8), FULL_HIT._replace(deep=None), FULL_HIT]
    lines = encode_hits(hits)
    assert len(lines) == 5 and all(line.count(b"\n") == 1 and line.endswith(b"\n") for line in lines)
    segment = write_segment(tmp_path, "w0-000000000001.jnl", HEADER, *lines)
    assert decoded_hits(segment) == hits
    assert encode_hits([]) == []
    assert encode_hits([FULL_HIT]) == [encode_hit(FULL_HIT)]


def _record_by_name(hit: Hit) -> bytes:
    """A version 3 record as the format says, field by field (what main d391407's
    store/records.py wrote): to build version 3 segments."""
    return orjson.dumps([_value(hit, name) for name in Hit._fields]) + b"\n"


def _value(hit: Hit, name: str):
    """A hit field's value in a record, as versions 3 and 4 write it."""
    field = getattr(hit, name)
    if name in ("device", "region"):
        return list(field)
    if name in ("visitor", "month_visitor"):
        return field.hex()
    if name == "deep" and field is not None:
        return field.as_json()
    return field


def _line_by_name(hits: list[Hit]) -> bytes:
    """A version 4 line as the format says, by the header's names (the specification of
    store/records.py, compiled, which reads the hits by position)."""
    header = orjson.loads(HEADER)
    return orjson.dumps([*(_value(hits[0], name) for name in header["request"]),
                         [[_value(hit, name) for name in header["hit"]] for hit in hits]]) + b"\n"


def test_a_line_holds_its_fields_in_the_headers_order():
    hits = [FULL_HIT, a_hit(), FULL_HIT._replace(deep=None), a_hit(page="https://e.edu/\u8bfe")]
    for hit in hits:
        assert encode_hit(hit) == _line_by_name([hit])
        assert encode_hits([hit]) == [_line_by_name([hit])]  # a GET's one hit
    assert encode_hits(hits) == [_line_by_name([hit]) for hit in hits]  # no two neighbours share their values
    assert encode_hits([FULL_HIT, FULL_HIT._replace(deep=None, etype="pageview")]) == [
        _line_by_name([FULL_HIT, FULL_HIT._replace(deep=None, etype="pageview")])
    ]


# FULL_HIT's record, as the Python encoder of main at 19440ce wrote it (journal.py) and
# format version 3 kept it: the file format, byte for byte.
FULL_HIT_RECORD = (
    '["edu",29000123,"engagement",["mobile","WeChat","Android"],["CN","110000","110100","中国","北京市","北京市"],'
    '"07070707070707070707070707070707","08080808080808080808080808080808","https://e.edu/#/course/1","course",'
    '"www.baidu.com",2,12345,75,"vid-9",[[["m:resource","watch_ms:r1",30000]],'
    '[["u:media","0101010101010101","1111111111111111"]],["ms1",30,120,1,[["",""],["resource","r1"]]]],'
    '"zh","ev-1",1]\n'
).encode()
# FULL_HIT twice, in format version 4: the request's values once, then two rows.
FULL_HIT_ROW = (
    '[29000123,"engagement","https://e.edu/#/course/1","course","www.baidu.com",2,12345,75,'
    '[[["m:resource","watch_ms:r1",30000]],[["u:media","0101010101010101","1111111111111111"]],'
    '["ms1",30,120,1,[["",""],["resource","r1"]]]],"zh","ev-1",1]'
)
FULL_HIT_TWICE_LINE = (
    '["edu",["mobile","WeChat","Android"],["CN","110000","110100","中国","北京市","北京市"],'
    '"07070707070707070707070707070707","08080808080808080808080808080808","vid-9",'
    f'[{FULL_HIT_ROW},{FULL_HIT_ROW}]]\n'
).encode()


def test_a_line_keeps_its_bytes():
    """The encoder writes the very bytes version 4 says (deep facts, session, device,
    region and visitor keys in hex included), and version 3's spec is the bytes it was."""
    assert encode_hits([FULL_HIT, FULL_HIT]) == [FULL_HIT_TWICE_LINE]
    assert _record_by_name(FULL_HIT) == FULL_HIT_RECORD


def test_a_hit_record_refuses_a_value_it_has_no_json_for():
    """Only the deep facts are turned into JSON: another object (here a dataclass, which
    orjson would otherwise write as an object) fails the write, it is not written wrong."""
    with pytest.raises(TypeError):
        encode_hit(FULL_HIT._replace(deep=Segment(Path("x"), "w", 1)))
    with pytest.raises(TypeError):
        encode_hits([a_hit(), a_hit()._replace(page_code=object())])


def decoded_hits(path: Path) -> list[Hit]:
    """The hits of a segment as its decoder reads them, after checking that replay counts
    exactly those."""
    lines = path.read_bytes().splitlines()
    header = orjson.loads(lines[0])
    decode = DECODERS[header["eb_journal"]](header)
    hits = [args[0] for line in lines[1:] for count, args in decode(orjson.loads(line), Interned())]
    expected, rebuilt = Aggregator(), Aggregator()
    for hit in hits:
        expected.count(hit)
    assert replay(path, rebuilt) == len(hits) and same_counts(rebuilt.drain(), expected.drain())
    return hits


def test_the_named_format_round_trips_a_hit_with_every_field_set(tmp_path):
    assert all(getattr(FULL_HIT, name) != default for name, default in Hit._field_defaults.items())
    segment = write_segment(tmp_path, "w0-000000000001.jnl", HEADER, encode_hit(FULL_HIT), encode_hit(a_hit()))
    assert decoded_hits(segment) == [FULL_HIT, a_hit()]


# tests/data/journal-v3/ holds a segment written by main d391407's Journal and encoders,
# the last code to write format version 3 (a line a hit), from the v1 fixture's records
# and two more hits with every field set. Never regenerate it.
V3_SEGMENT = Path(__file__).parent / "data" / "journal-v3" / "0a1b2c3d4e5f6071-000000000005.jnl"
V3_HITS = [Hit(*args) for args in V1_COUNTS] + [FULL_HIT, FULL_HIT._replace(etype="pageview", deep=None)]


def test_a_segment_of_format_version_3_replays_exactly():
    """A journal the previous release left behind replays after the upgrade."""
    lines = V3_SEGMENT.read_bytes().splitlines(keepends=True)
    assert lines[0].startswith(b'{"eb_journal":3,') and FULL_HIT_RECORD in lines
    assert lines[1:-2] == [_record_by_name(hit) for hit in V3_HITS]
    expected = Aggregator()
    for hit in V3_HITS:
        expected.count(hit)
    for args in V1_REJECTS:
        expected.reject(*args)
    rebuilt = Aggregator()
    assert replay(V3_SEGMENT, rebuilt) == len(V3_HITS) + len(V1_REJECTS)
    assert same_counts(rebuilt.drain(), expected.drain())
    assert decoded_hits(write_segment_like(V3_SEGMENT, lines[:-2])) == V3_HITS


def write_segment_like(segment: Path, lines: list[bytes]) -> Path:
    """A copy of some of a fixture's lines, next to nothing (a fixture is never written)."""
    import tempfile

    return write_segment(Path(tempfile.mkdtemp()), segment.name, *lines)


def test_a_named_segment_without_a_later_field_replays_with_its_default(tmp_path):
    """A segment written before a field was added to Hit: its header does not name it."""
    header = orjson.loads(HEADER)
    names = [name for name in header["hit"] if name not in ("page_code", "deep")]
    line = orjson.loads(encode_hit(FULL_HIT))
    row = [value for name, value in zip(header["hit"], line[-1][0], strict=True) if name in names]
    segment = write_segment(tmp_path, "w0-000000000001.jnl", orjson.dumps(header | {"hit": names}) + b"\n",
                            orjson.dumps([*line[:-1], [row]]) + b"\n")
    assert decoded_hits(segment) == [FULL_HIT._replace(page_code="", deep=None)]


def test_a_named_segment_with_an_unknown_field_is_quarantined_not_miscounted(tmp_path):
    """A newer collector's field this one cannot count: its records are set aside whole."""
    header = orjson.loads(HEADER)
    segment = write_segment(tmp_path, "w0-000000000001.jnl",
                            orjson.dumps(header | {"hit": [*header["hit"], "shoe_size"]}) + b"\n",
                            encode_hit(a_hit())[:-4] + b',"42"]]]\n')
    quarantine = Quarantine(tmp_path / "quarantine.jsonl")
    assert replay(segment, Aggregator(), quarantine) == 0
    assert quarantine.records == 1 and "shoe_size" in quarantined(quarantine.path)[0]["reason"]


def test_torn_last_record_is_skipped(tmp_path):
    journal = Journal(tmp_path)
    journal.open()
    journal.begin("w1", 1)
    journal.append(encode_hit(a_hit()))
    journal.append(encode_hit(a_hit())[:40])  # the process died mid-write
    segment = journal.seal("w1", 2)
    assert replay(segment.path, Aggregator()) == 1


def test_a_request_torn_anywhere_replays_none_of_its_hits(tmp_path):
    """A line holds a whole request: cut anywhere before its newline (the process died in
    the write, nothing of it acknowledged), none of its hits replays; the whole requests
    written before it, in the same write or earlier ones, replay in full."""
    before = encode_hits([a_hit(page=f"https://e.edu/{i}") for i in range(3)])
    request = encode_hits([a_hit(page=f"https://e.edu/{i}", visitor=b"\x05" * 8) for i in range(50)])
    assert len(before) == 1 and len(request) == 1
    for cut in range(0, len(request[0]), 97):
        segment = write_segment(tmp_path / str(cut), "w0-000000000001.jnl", HEADER, *before, request[0][:cut])
        quarantine = Quarantine(tmp_path / str(cut) / "quarantine.jsonl")
        rebuilt = Aggregator()
        assert replay(segment, rebuilt, quarantine) == 3 and rebuilt.drain().events == 3
        assert quarantine.records == 0


def test_a_request_line_is_counted_whole_or_set_aside_whole(tmp_path):
    """One bad hit row sets its whole line (its request) aside: none of its hits is
    counted, so a replay of a repaired line would not count one twice."""
    good = a_hit()
    line = encode_hits([good, good._replace(page="https://e.edu/2")])[0]
    bad = line.replace(b'"https://e.edu/2"', b"17")
    segment = write_segment(tmp_path, "w0-000000000001.jnl", HEADER, bad, GOOD)
    quarantine = Quarantine(tmp_path / "quarantine.jsonl")
    rebuilt = Aggregator()
    assert replay(segment, rebuilt, quarantine) == 1 and rebuilt.drain().events == 1
    assert quarantine.records == 1 and quarantined(quarantine.path)[0]["record"].encode() + b"\n" == bad


def test_empty_segments_vanish_and_leftovers_are_listed_in_order(tmp_path):
    journal = Journal(tmp_path)
    journal.open()
    journal.begin("w1", 1)
    assert journal.seal("w1", 2) is None  # nothing written: no segment kept
    journal.append(encode_hit(a_hit()))
    kept = journal.seal("w1", 3)
    journal.append(encode_hit(a_hit()))
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


def journaled_flusher(tmp_path: Path, client, **bounds) -> tuple[Aggregator, Journal, Flusher]:
    """A flusher over a fresh journal in tmp_path, writing to `client`, ready to take hits."""
    aggregator = Aggregator()
    journal = Journal(tmp_path)
    flusher = Flusher(client, aggregator, RollupBuilder(Calendar("Asia/Shanghai"), {}), 1.0, journal, **bounds)
    flusher.recover(journal.open())
    journal.begin(flusher.writer, FIRST_SEQ)
    return aggregator, journal, flusher


async def seal_distinct_hits(aggregator: Aggregator, journal: Journal, flusher: Flusher, n: int, first: int = 0) -> int:
    """`n` journaled hits of distinct pages and visitors (numbered from `first`) sealed as a
    batch, packed before this returns if it is queued behind another; the next number."""
    for number in range(first, first + n):
        hit = a_hit(page=f"https://e.edu/{number}", visitor=number.to_bytes(8, "big"))
        journal.append(encode_hit(hit))
        aggregator.count(hit)
    flusher.seal()
    packing = [b.packing for b in flusher.pending if b.packing]
    if packing:
        await asyncio.wait(packing)
    return first + n


async def test_batches_behind_a_failing_one_wait_on_disk_not_in_memory(tmp_path, redis_server, redis_url):
    import redis.asyncio as aioredis

    client = aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)  # nobody there
    aggregator, journal, flusher = journaled_flusher(tmp_path, client)
    for round_ in range(3):
        hit = a_hit(visitor=bytes([round_]) * 8)
        journal.append(encode_hit(hit))
        aggregator.count(hit)
        assert not await flusher.flush()
    assert [b.in_memory for b in flusher.pending] == [True, False, False]
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


async def test_a_flushed_batchs_segment_is_removed_off_the_event_loop(tmp_path, redis_server, redis_url, monkeypatch):
    """Unlinking a segment of megabytes takes milliseconds on ext4: the flusher removes it
    in a thread, never on the loop that answers hits (issue 17), and the journal's byte
    count still drops by the segment's size."""
    import threading

    import redis.asyncio as aioredis

    from collector.store import flusher as flusher_module

    removed_on: list[int] = []

    def remove_segment(segment):
        removed_on.append(threading.get_ident())
        return journal_module.remove_segment(segment)

    monkeypatch.setattr(flusher_module, "remove_segment", remove_segment)
    client = aioredis.from_url(redis_url)
    aggregator, journal, flusher = journaled_flusher(tmp_path, client)
    hit = a_hit()
    journal.append(encode_hit(hit))
    aggregator.count(hit)
    segment_path = tmp_path / f"{flusher.writer}-{FIRST_SEQ:012d}.jnl"
    assert segment_path.stat().st_size > 0
    assert await flusher.flush()
    assert removed_on and threading.get_ident() not in removed_on
    assert not segment_path.exists() and journal.bytes == 0
    journal.close()
    await client.aclose()


async def test_batches_sealed_while_one_is_applied_keep_their_snapshot_up_to_memory_max_cells(tmp_path, redis_server, redis_url):
    """A flush that only runs long (no failure) must not send the batches sealed meanwhile
    through a replay of their segments, which costs more CPU than counting them did
    (issue 17); past memory_max_cells entries they wait on disk all the same."""
    import redis.asyncio as aioredis

    client = aioredis.from_url(redis_url)
    aggregator, journal, flusher = journaled_flusher(tmp_path, client, batch_max_cells=3, memory_max_cells=9)
    for round_ in range(4):  # the first batch is queued (its flush under way), three more are sealed behind it
        hit = a_hit(visitor=bytes([round_]) * 8)
        journal.append(encode_hit(hit))
        aggregator.count(hit)
        flusher.seal()
    assert [b.cells for b in flusher.pending] == [3, 3, 3, 3]
    assert [b.in_memory for b in flusher.pending] == [True, True, True, False]  # 9 cells kept, then disk
    await asyncio.wait([b.packing for b in flusher.pending if b.packing])
    # Those behind the first wait packed (packed_snapshot.py), the first as it is.
    assert [(b.snap is not None, b.packed is not None) for b in flusher.pending] == [
        (True, False), (False, True), (False, True), (False, False)]
    assert await flusher.flush()
    assert journal.bytes == 0
    sync = redis_server.client()
    assert sum(int(sync.hget(k, "pv")) for k in sync.scan_iter("eb:{a|*}:day:*:c")) == 4
    journal.close()
    await client.aclose()


async def test_packed_batches_spend_memory_max_cells_by_their_bytes(tmp_path, redis_server, redis_url):
    """Batches waiting packed (~30 bytes an entry) weigh their bytes against memory_max_cells,
    a budget of live entries (~145 bytes each): many more of them stay in memory than the
    budget has entries, so a POST-50 queue is not replayed from the journal (issue 17).
    A batch sealed beyond the budget still waits on disk, and every hit counts once.
    (Their spill files cannot be written here — a directory is in the way — so their bytes
    stay in memory: tests/test_spill.py has the batches that spill.)"""
    import redis.asyncio as aioredis

    client = aioredis.from_url(redis_url)
    aggregator, journal, flusher = journaled_flusher(tmp_path, client, batch_max_cells=600, memory_max_cells=1800)
    for seq in range(FIRST_SEQ, FIRST_SEQ + 20):
        Segment(tmp_path / f"{flusher.writer}-{seq:012d}.jnl", flusher.writer, seq).spill_path.mkdir()
    hits = 0
    while not flusher.pending or flusher.pending[-1].in_memory:
        hits = await seal_distinct_hits(aggregator, journal, flusher, 200, hits)  # 200 pages, 200 visitors
        assert len(flusher.pending) < 20
    kept = [b for b in flusher.pending if b.in_memory]
    cells = flusher.pending[0].cells  # ~400: the batches are alike
    assert {b.cells for b in flusher.pending} == {cells}
    # Counted as entries, 1800 // cells batches stayed in memory; by their bytes, twice as many.
    assert len(kept) >= 2 * (1800 // cells), [b.held_cells for b in flusher.pending]
    assert sum(b.held_cells for b in kept) <= 1800 < sum(b.cells for b in kept)
    on_disk = flusher.pending[-1]
    assert await flusher.flush()
    assert journal.bytes == 0
    assert (flusher.stats.batches_rebuilt, flusher.stats.events_rebuilt) == (1, on_disk.events) == (1, 200)
    assert flusher.stats.batches_spilled == 0
    sync = redis_server.client()
    assert sum(int(sync.hget(k, "pv")) for k in sync.scan_iter("eb:{a|*}:day:*:c")) == hits
    journal.close()
    await client.aclose()


# ---- records that cannot be decoded ------------------------------------------------------

GOOD = encode_hit(a_hit())
# Well-formed JSON of the wrong shape or types, as an older or newer collector or a
# corrupted disk could leave: each must be set aside, never stop the flush.
WRONG = [
    b'["a",1]\n',  # too few fields
    b'[1,2,3,4]\n',  # neither a count nor a reject
    b'{"app":"a","minute":29000000}\n',  # not a list at all
    b'"a string"\n',
    GOOD.replace(b"29000000", b'"29000000"'),  # a string where the minute goes
    GOOD.replace(b'"pageview"', b"true"),  # a boolean where a string goes
    GOOD.replace(b"0101010101010101", b"not hex at all!!"),  # a visitor key that is no key
    GOOD.replace(b"29000000", b"99999999999999"),  # a minute no calendar can place
    GOOD.replace(b"null", b'[[["c","pv",1]],[["u"]],null]'),  # deep facts (GOOD's only null) of the wrong shape
    GOOD.replace(b',0]]]', b"]]]"),  # a hit row one value short
    GOOD[: GOOD.index(b"[[")] + b"[]]\n",  # a request line without hits
    GOOD[: GOOD.index(b"[[")] + b'"x"]\n',  # a request line whose hits are not a list
    b'["a","29000000","too_long:u"]\n',  # a reject with a string minute
    b'["a",29000000,"too_long:u"\n',  # a line that is not JSON (a torn write, later resumed)
]


def write_segment(directory: Path, name: str, *lines: bytes) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(b"".join(lines))
    return path


def quarantined(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []


def test_records_that_cannot_be_decoded_are_quarantined_and_the_rest_is_counted(tmp_path):
    segment = write_segment(tmp_path, "w0-000000000001.jnl", HEADER, GOOD, *WRONG, GOOD, GOOD[:30])  # torn last line
    quarantine = Quarantine(tmp_path / "quarantine.jsonl")
    rebuilt = Aggregator()
    assert replay(segment, rebuilt, quarantine) == 2
    assert rebuilt.drain().events == 2
    assert quarantine.records == len(WRONG)
    kept = quarantined(quarantine.path)
    assert [entry["record"].encode() + b"\n" for entry in kept] == WRONG  # the torn last line is not among them
    assert {entry["segment"] for entry in kept} == {segment.name} and all(entry["reason"] for entry in kept)


def test_a_segment_of_an_unknown_format_version_is_quarantined_whole(tmp_path):
    segment = write_segment(tmp_path, "w0-000000000001.jnl", b'{"eb_journal":99}\n', GOOD, GOOD)
    quarantine = Quarantine(tmp_path / "quarantine.jsonl")
    assert replay(segment, Aggregator(), quarantine) == 0
    assert quarantine.records == 2
    assert all("99" in entry["reason"] for entry in quarantined(quarantine.path))


def test_the_quarantine_file_stops_growing_at_its_cap_but_the_count_goes_on(tmp_path):
    segment = write_segment(tmp_path, "w0-000000000001.jnl", *[b'["a",1]\n'] * 100)
    quarantine = Quarantine(tmp_path / "quarantine.jsonl", max_bytes=1000)
    assert replay(segment, Aggregator(), quarantine) == 0
    assert quarantine.records == 100
    assert 0 < quarantine.path.stat().st_size <= 1000
    # A restart finds the file at its cap: nothing more is written.
    again = Quarantine(tmp_path / "quarantine.jsonl", max_bytes=1000)
    size = quarantine.path.stat().st_size
    replay(segment, Aggregator(), again)
    assert again.records == 100 and quarantine.path.stat().st_size == size


def test_new_segments_say_their_format_version_and_replay(tmp_path):
    journal = Journal(tmp_path)
    journal.open()
    journal.begin("w1", 1)
    journal.append(GOOD)
    segment = journal.seal("w1", 2)
    first_line = segment.path.read_bytes().split(b"\n")[0]
    header = orjson.loads(first_line)
    assert header["eb_journal"] == FORMAT_VERSION and sorted(header["request"] + header["hit"]) == sorted(Hit._fields)
    assert replay(segment.path, Aggregator(), journal.quarantine) == 1 and journal.quarantine.records == 0
    journal.close()


def test_a_segment_with_only_its_header_counts_as_empty(tmp_path):
    journal = Journal(tmp_path)
    journal.open()
    journal.begin("w1", 1)
    assert journal.seal("w1", 2) is None and journal.bytes == 0
    journal.close()
    write_segment(tmp_path, "w1-000000000007.jnl", orjson.dumps({"eb_journal": FORMAT_VERSION}) + b"\n")
    again = Journal(tmp_path)
    assert again.open() == [] and again.bytes == 0 and not list(tmp_path.glob("*.jnl"))
    again.close()


async def test_a_leftover_segment_with_undecodable_records_does_not_stop_the_flush(collector_client, rds, tmp_path):
    journal_dir = tmp_path / "data" / "journal" / "w1"  # the first app of a test is worker 1
    leftover = write_segment(journal_dir, "0123456789abcdef-000000000004.jnl", HEADER, encode_hit(a_hit(app="old")), *WRONG)
    client = await collector_client()
    for _ in range(3):
        events = orjson.dumps([{"k": "new", "t": "pageview", "u": "https://e.edu/"}])
        firefox = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"}
        assert (await client.post("/c", data=events, headers=firefox)).status == 204
    assert await client.server.app[FLUSHER].flush()
    assert day_pv(rds, "old") == 1 and day_pv(rds, "new") == 3
    assert not leftover.exists()
    kept = quarantined(journal_dir / "quarantine.jsonl")
    assert len(kept) == len(WRONG) and {entry["segment"] for entry in kept} == {leftover.name}
    assert (await (await client.get("/api/collector")).json())["records_quarantined"] == len(WRONG)


def day_pv(rds, app: str) -> int:
    return sum(int(rds.hget(key, "pv") or 0) for key in rds.scan_iter(f"eb:{{{app}|*}}:day:*:c"))
