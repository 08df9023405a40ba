"""A request's hits counted together (Aggregator.count_request, issue 17 "POST"): their
deep facts are added up within the request first, and the snapshot holds exactly what
counting each hit alone (Aggregator.count, as a journal replay does) gives it."""

from __future__ import annotations

from collector.enrich.device import Device
from collector.enrich.geo import Region
from collector.features.facts import DeepFacts, Session
from collector.hit.record import Hit
from collector.store.aggregate import Aggregator, Snapshot

PHONE = Device("mobile", "WeChat", "Android")
CRAWLER = Device("bot", "Baiduspider", "Other")
HANGZHOU = Region("CN", "330000", "330100", "中国", "浙江省", "杭州市")
MINUTE = 29_000_000


def deep_hit(n: int, app: str = "a", minute: int = MINUTE, device: Device = PHONE, resent: int = 0) -> Hit:
    """A click or media event of a batch: the same fields and members again and again, as
    a page's events are, and now and then a session's progress or another visitor."""
    visitor = b"v%d" % (n % 3)
    incs = [("m:target", "clicks|nav", 1), ("c", "clicks", 1), ("m:resource", "views|r%d" % (n % 2), n % 4)]
    members = [("h:viewers", visitor.hex(), visitor.hex() + "m"), ("h:resources", "r%d" % (n % 5), "r%d" % (n % 5))]
    session = Session("s%d" % (n % 2), ws=n, dur=100, started=int(n == 6), targets=(("", ""),)) if n % 3 == 0 else None
    return Hit(app=app, minute=minute, etype="click", device=device, region=HANGZHOU, visitor=visitor,
               month_visitor=visitor[::-1], deep=DeepFacts(incs, members, session), event_id="e%d" % n, resent=resent)


def a_batch() -> list[Hit]:
    """50 events of one page, spread over two minutes and two apps, a crawler's and a
    re-sent one among them (neither counts deep facts)."""
    hits = [deep_hit(n, minute=MINUTE + (n >= 30)) for n in range(45)]
    hits += [deep_hit(45, app="b"), deep_hit(46), deep_hit(47, app="b", minute=MINUTE + 1)]
    hits += [deep_hit(48, device=CRAWLER), deep_hit(49, resent=1)]
    return hits


def snapshot_fields(snap: Snapshot) -> dict:
    return {
        "cube": snap.cube, "visitors": snap.visitors, "first_party": snap.first_party, "deep_incs": snap.deep_incs,
        "deep_members": snap.deep_members, "event_ids": snap.event_ids, "resent": snap.resent, "events": snap.events,
        "sessions": {key: (minute, session.as_json()) for key, (minute, session) in snap.sessions.items()},
    }


def test_a_request_counted_at_once_equals_its_hits_counted_one_by_one():
    one_by_one, at_once = Aggregator(), Aggregator()
    for _ in range(2):  # the second request adds to the first's entries
        for hit in a_batch():
            one_by_one.count(hit)
        at_once.count_request(a_batch())
    expected, got = snapshot_fields(one_by_one.drain()), snapshot_fields(at_once.drain())
    assert got == expected
    assert got["deep_incs"][("a", MINUTE, "c", "clicks")] == 2 * 31  # events 0-29 and 46, twice
    assert got["deep_incs"][("a", MINUTE + 1, "m:resource", "views|r1")] == 2 * sum(n % 4 for n in range(31, 45, 2))
    assert ("b", MINUTE + 1, "h:resources", "r2", "r2") in got["deep_members"]


def test_a_session_in_a_request_is_a_copy_merged_across_its_events():
    aggregator = Aggregator()
    hits = a_batch()
    aggregator.count_request(hits)
    snap = aggregator.drain()
    minute, session = snap.sessions[("a", "s0")]
    assert minute == MINUTE and session.ws == 42 and session.started == 1  # the best of events 0, 6, …, 42; 6 started it
    first = next(hit.deep.session for hit in hits if hit.deep and hit.deep.session and hit.deep.session.ms == "s0")
    assert session is not first and first.ws == 0  # the hit's own facts are left as they were (the journal has them)
