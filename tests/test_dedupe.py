"""Exactly once when a client re-sends (store/dedupe.py): two real collectors on one
Redis; an event one of them acknowledged and the client re-sent (re=1) to the other is
counted once, wherever and whenever each copy arrived."""

from __future__ import annotations

import time

import httputil as http
import pytest
from test_flush_bounds import MINUTE, a_hit
from test_ingest import DESKTOP

from collector.hit.record import Hit
from collector.store import dedupe, keys, redis_client
from collector.store.aggregate import Aggregator
from collector.store.buckets import Calendar
from collector.store.flusher import FIRST_SEQ, Flusher
from collector.store.journal import Journal, encode_hit
from collector.store.rollup import RollupBuilder

UA = {"User-Agent": DESKTOP}
CALENDAR = Calendar("Asia/Shanghai")
TTLS = {"minute": 0, "hour": 0, "day": 0, "month": 0}
MINUTE_ID = CALENDAR.buckets_of_minute(MINUTE)[0].id
# Small enough that a test's watermarks move in tenths of a second.
FAST = {"flush_interval": 0.2, "finality_interval": 0.1}


def pv(app: str, event_id: str, resent: bool = False) -> dict:
    event = {"k": app, "t": "pageview", "u": "https://www.example.edu/a", "id": event_id, "ts": int(time.time() * 1000)}
    return {**event, "re": 1} if resent else event


def send(collector, events: list[dict]) -> None:
    status, body = http.post(collector.base_url + "/c", events, UA)
    assert status == 204, body


def day_counters(rds, collector, app: str) -> dict[str, int]:
    day = collector.stats(app)["from"].replace("-", "")
    return {k.decode(): int(v) for k, v in rds.hgetall(keys.counters(app, "day", day)).items()}


def _idle(collector) -> bool:
    status, body = http.get_json(collector.base_url + "/api/collector")
    return status == 200 and body["pending_flushes"] == 0


@pytest.fixture
def pair(collector_factory, tmp_path):
    """Two collectors on one Redis, as two hosts: each its own data dir (journal)."""
    return (collector_factory(data_dir=tmp_path / "a", **FAST), collector_factory(data_dir=tmp_path / "b", **FAST))


def test_an_event_acknowledged_by_one_collector_and_re_sent_to_another_counts_once(pair, rds):
    a, b = pair
    # Originals and re-sends in the same instant: each re-send reaches B while A still
    # holds its original unflushed, so B must wait for A's watermark before it checks.
    originals = [pv("dd", f"e{i}") for i in range(40)]
    send(a, originals)
    send(b, [{**event, "re": 1} for event in originals])
    # Re-sends of events no collector ever received: each counts once, also when the
    # client re-sent it twice (to both collectors).
    lost = [pv("dd", f"lost{i}", resent=True) for i in range(10)]
    send(b, lost)
    send(a, lost[:5])
    a.wait_for(lambda: _idle(a) and _idle(b) and day_counters(rds, a, "dd").get("pv", 0) >= 50, timeout=20)
    time.sleep(0.5)  # whatever would count twice has had the time to
    counters = day_counters(rds, a, "dd")
    assert counters["pv"] == 50, counters
    assert counters["flagged:duplicate_resend"] == 45


def test_the_same_collector_counts_a_re_send_of_its_own_once(collector_factory, rds):
    a = collector_factory(**FAST)
    send(a, [pv("self", "x1")])
    send(a, [pv("self", "x1", resent=True), pv("self", "x1", resent=True)])
    send(a, [pv("self", "x2", resent=True), pv("self", "x2", resent=True)])  # its original was lost
    a.wait_for(lambda: _idle(a) and day_counters(rds, a, "self").get("flagged:duplicate_resend", 0) == 3, timeout=20)
    assert day_counters(rds, a, "self")["pv"] == 2


def test_with_dedupe_off_a_re_send_counts_again_and_no_id_is_kept(collector_factory, rds):
    a = collector_factory(dedupe_window=0, **FAST)
    send(a, [pv("off", "y1"), pv("off", "y1", resent=True)])
    a.wait_for(lambda: _idle(a) and day_counters(rds, a, "off").get("pv", 0) == 2, timeout=20)
    assert not rds.keys("*:id:*") and not rds.keys("*:ids:*")


def test_first_sends_are_recorded_as_members_of_one_set_per_app_day_and_minute(collector_factory, rds):
    a = collector_factory(dedupe_window=600, **FAST)
    send(a, [pv("sets", f"s{i}") for i in range(30)])
    a.wait_for(lambda: _idle(a) and day_counters(rds, a, "sets").get("pv", 0) == 30, timeout=20)
    day = a.stats("sets")["from"].replace("-", "")
    found = rds.keys(keys.first_send_ids("sets", day, 0).rsplit(":", 1)[0] + ":*")
    assert len(found) in (1, 2), found  # one slice, or two when the flushes straddled a minute
    members = set().union(*(rds.smembers(key) for key in found))
    assert members == {f"s{i}".encode() for i in range(30)}
    assert all(600 < rds.ttl(key) <= 600 + dedupe.ID_SLICE for key in found)
    assert not rds.keys("*:id:*")  # a first send's id is no key of its own


def record_first_send(rds, hit: Hit, how: str) -> None:
    """Record `hit` as a counted first send: in its set (as now), or as a key of its own
    (as collectors before the sets did: a rolling upgrade)."""
    if how == "old key":
        rds.set(dedupe.id_key(CALENDAR, hit.app, hit.minute, hit.event_id), dedupe.FIRST_SEND, ex=3600)
        return
    for command in dedupe.first_send_commands(_first_sends(hit._replace(resent=0)), CALENDAR, 3600, time.time()):
        rds.execute_command(*command)


@pytest.mark.parametrize("recorded", ["set", "old key"])
async def test_a_batch_replayed_after_a_crash_counts_the_re_sends_it_had_admitted_once(
    tmp_path, redis_url, rds, recorded
):
    """The process died after the check admitted a re-send (its id holds the batch's
    token) and before its count landed: the replay admits it again and counts it once;
    a second replay of the same batch changes nothing."""
    resent = a_hit("crash", 1)._replace(event_id="z1", resent=1)
    duplicate = a_hit("crash", 2)._replace(event_id="z2", resent=1)
    record_first_send(rds, duplicate, recorded)  # its original counted
    client = redis_client.connect(redis_url)
    try:
        await dedupe.admit(client, [resent], "w-crashed:1", 86400, CALENDAR)  # the check, then the crash
        for attempt in range(2):
            directory = tmp_path / str(attempt)
            journal = Journal(directory)
            journal.open()
            journal.begin("w-crashed", FIRST_SEQ)
            journal.append(encode_hit(resent) + encode_hit(duplicate))
            journal.close()
            again = Journal(directory)
            leftovers = again.open()
            again.begin("w-next", FIRST_SEQ)
            flusher = Flusher(client, Aggregator(), RollupBuilder(CALENDAR, TTLS), 1.0, again, writer="w-next",
                              dedupe_window=86400)
            flusher.recover(leftovers)
            assert await flusher.flush()
            again.close()
            counters = {k.decode(): int(v) for k, v in rds.hgetall(keys.counters("crash", "minute", MINUTE_ID)).items()}
            assert counters["pv"] == 1 and counters["flagged:duplicate_resend"] == 1, (attempt, counters)
    finally:
        await client.aclose()


@pytest.mark.parametrize("recorded", ["set", "old key"])
async def test_a_re_send_of_a_recorded_first_send_is_dropped_whatever_minute_it_counts_in(redis_url, rds, recorded):
    """Sets are sliced by the time of the record, not by the event's minute: a re-send
    counted in another minute of the day (no ts, or a client clock judged otherwise)
    is still found."""
    original = a_hit("dup", 1)._replace(event_id="d1")
    record_first_send(rds, original, recorded)
    client = redis_client.connect(redis_url)
    try:
        for minute in (MINUTE, MINUTE + 7):
            resent = original._replace(minute=minute, resent=1)
            assert await dedupe.admit(client, [resent, resent], "w:1", 3600, CALENDAR) == []
        lost = a_hit("dup", 2)._replace(event_id="d2", resent=1)  # and re-sent twice, counted in two minutes
        twice = [lost, lost._replace(minute=MINUTE + 7)]
        assert await dedupe.admit(client, twice, "w:2", 3600, CALENDAR) == [lost._replace(resent=0)]
    finally:
        await client.aclose()


async def test_an_id_is_found_for_dedupe_window_after_its_record_and_then_forgotten(redis_url, rds):
    """The checks read the slices of `window` before their moment (and one more at each
    end): the id recorded at t is a duplicate until t + window, and new again after."""
    original = a_hit("span", 1)._replace(event_id="w1")
    recorded_at, window = 1_800_000_000.0, 600
    for command in dedupe.first_send_commands(_first_sends(original), CALENDAR, window, recorded_at):
        rds.execute_command(*command)
    resent = original._replace(resent=1)
    client = redis_client.connect(redis_url)
    try:
        for late in (0, window / 2, window):
            assert await dedupe.admit(client, [resent], f"w:{late}", window, CALENDAR, recorded_at + late) == []
        beyond = recorded_at + window + 3 * dedupe.ID_SLICE
        assert await dedupe.admit(client, [resent], "w:beyond", window, CALENDAR, beyond) == [original]
    finally:
        await client.aclose()


def _first_sends(hit: Hit):
    scratch = Aggregator()
    scratch.count(hit)
    return scratch.drain()


def test_every_first_sends_id_is_an_entry_of_the_batch_and_split_with_its_app():
    """Ids are kept per app and minute (a list: most of a batch of beacon events): each
    still counts as an entry (the early seal's measure, Snapshot.cells) and goes with its
    app's part."""
    plain, with_ids = Aggregator(), Aggregator()
    for n in range(30):
        hit = a_hit(f"app{n % 3}", n)
        plain.count(hit)
        with_ids.count(hit._replace(event_id=f"e{n % 25}"))  # five ids sent twice
    without, snap = plain.drain(), with_ids.drain()
    assert snap.cells == without.cells + 30
    parts = snap.split_by_app(1)
    assert len(parts) == 3 and sum(part.cells for part in parts) == snap.cells
    for part in parts:
        (app,) = part.apps()
        assert part.event_ids == {(app, MINUTE): [f"e{n % 25}" for n in range(30) if n % 3 == int(app[-1])]}
