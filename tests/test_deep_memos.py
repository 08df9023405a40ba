"""What the deep tag's counters make once (session 21): a track item's and a named
target's increments, per app and day (features/facts.py Memos, EventScope.memo, tracks.py,
clicks.py), a request's resource's increments of 1 and its last session id
(features/resources.py Resource, media.py, interactions.py).

The reference is a new DeepCounter for every event (so nothing is ever found again); the
counter under test is one, its requests' events sharing a scope as ingest's do. Each has
caps of its own with the same small limits, so values go to (other) partway through: each
event's facts (as the journal writes them) and the events counted as overflowing must agree.
"""

from __future__ import annotations

import random

import orjson

from collector.enrich.device import Device
from collector.enrich.geo import Region
from collector.features.deep import MEMOS_KEPT, DeepCounter
from collector.features.facts import MEMO_KEPT, DeepFacts
from collector.hit.caps import OTHER, CardinalityCaps
from collector.hit.protocol import PROGRESS_BOUNDARIES, validate_event
from collector.hit.record import Hit
from collector.store.aggregate import Aggregator

LIMITS = {"resource": 3, "label": 4, "session": 3, "target": 3, "component": 4}
BIG = {kind: 10**6 for kind in LIMITS}
VISITOR, MONTH_VISITOR = b"\x01" * 16, b"\x02" * 16
DAY = "2026-12-01"
# Hostile but valid values: the longest a field may be, markers, odd characters.
NAMES = ["a", "b", "c", "d", "(other)", "x" * 128, "\u00e9\u4e2d\U0001f600", " "]
TRACKS = ["t1", "t2", "t3", "(other)", "q" * 64, "#", "t1#1"]
POSITIONS = [0, 1, 2, 3, 9_999_999]


def event(rng: random.Random) -> dict:
    """A valid deep-tag event of any kind, its values drawn from small hostile sets."""
    kind = rng.choice(["click", "exposure", "pageview", "media", "interaction", "engagement"])
    if kind in ("click", "exposure"):
        ev: dict = {"k": "app", "t": kind, "n": rng.choice(NAMES)}
        if rng.random() < 0.6:
            ev.update(tr=rng.choice(TRACKS), pos=rng.choice(POSITIONS))
    elif kind == "pageview":
        ev = {"k": "app", "t": kind, "u": "https://x.cn/"}
        if rng.random() < 0.7:
            ev.update(etr=rng.choice(TRACKS), epos=rng.choice(POSITIONS))
    elif kind == "engagement":
        ev = {"k": "app", "t": kind, "et": 5}
    else:
        rid = rng.choice(["r1", "r2", "r3", "r4", "(other)", "r" * 128, ""])
        labels = {name: rng.choice(["a", "b", "c", "", "video", "(other)", "z" * 64])[: 16 if name == "rt" else 64]
                  for name in ("rt", "subj", "stage", "src") if rng.random() < 0.6}
        if kind == "media":
            action = rng.choice(["play", "pause", "seek", "progress", "ping", "ended", "read"])
            ev = {"k": "app", "t": kind, "n": action, "rid": rid, "ms": rng.choice(["m1", "m2", "m3", "(other)"]) + rid[:4],
                  "pos": rng.randrange(0, 100), "ws": rng.randrange(0, 100), "wt": rng.choice([0, 1, 86_400_000]),
                  **labels}
            if rng.random() < 0.8:
                ev["dur"] = 100
            if action == "progress":
                ev["pb"] = rng.choice(sorted(PROGRESS_BOUNDARIES))
        else:
            action = rng.choice(["rate", "like", "unlike", "share", "favorite", "unfavorite", "comment"])
            ev = {"k": "app", "t": kind, "n": action, "rid": rid, **labels}
            if action == "rate":
                ev["score"] = rng.randrange(1, 6)
            if action == "share" and rng.random() < 0.7:
                ev["ch"] = rng.choice(["wechat", "", "qq"])
    if ev.get("rid") == "":
        ev["rid"] = "r0"  # (required: an empty one is a problem)
    assert not validate_event(dict(ev)), ev
    return ev


def facts_json(counter: DeepCounter, ev: dict, visitor: bytes = VISITOR) -> object:
    facts = counter.facts(dict(ev), "app", DAY, visitor, MONTH_VISITOR, None)
    return facts.as_json() if facts is not None else None


def alone_json(caps: CardinalityCaps, ev: dict, visitor: bytes = VISITOR) -> object:
    """The reference: a new counter (no memos, no scope) with the caps."""
    return facts_json(DeepCounter(caps), ev, visitor)


def test_the_memos_give_the_facts_of_each_event_made_alone():
    """Requests of 1 to 30 events (a new visitor key object each, of one of 3 visitors:
    another scope, the same memos). Fails when a memo entry is made of a value that went to (other) (tried:
    clicks.py keeping its target regardless): the later events naming it are no longer
    counted as overflowing."""
    rng = random.Random(21)
    reached = 0
    for batch in range(60):
        shared_caps, alone_caps = CardinalityCaps(dict(LIMITS)), CardinalityCaps(dict(LIMITS))
        shared = DeepCounter(shared_caps)
        for _ in range(4):
            visitor = bytes([rng.randrange(3)]) * 16  # a request's: one object for its events
            for ev in [event(rng) for _ in range(rng.randrange(1, 30))]:
                for _ in range(rng.randrange(1, 3)):  # runs of the same event, as batches have
                    assert facts_json(shared, ev, visitor) == alone_json(alone_caps, ev, visitor), (batch, ev)
        assert shared_caps.overflowed == alone_caps.overflowed, batch
        reached += shared_caps.overflowed["target"] > 0 and shared_caps.overflowed["component"] > 0
    assert reached > 30  # (other) was reached for both, in most batches


def test_the_requests_of_an_app_s_day_share_its_memos():
    counter = DeepCounter(CardinalityCaps(dict(BIG)))
    exposure = {"k": "app", "t": "exposure", "n": "e", "tr": "banner", "pos": 1}
    tables = []
    for app in ("app", "app", "app2"):
        counter.facts(dict(exposure), app, DAY, bytes(bytearray(VISITOR)), MONTH_VISITOR, None)
        scope = counter._scope
        assert scope is not None
        tables.append(scope.memo("exposures"))
    assert tables[0] is tables[1] and tables[2] is not tables[0]
    assert list(tables[0]) == ["banner"] and list(tables[2]) == ["banner"]


def test_a_counter_keeps_the_memos_of_a_bounded_number_of_apps_days():
    counter = DeepCounter(CardinalityCaps(dict(BIG)))
    for n in range(MEMOS_KEPT * 3):
        counter.facts({"k": f"a{n}", "t": "click", "n": "x"}, f"a{n}", DAY, VISITOR, MONTH_VISITOR, None)
        assert 0 < len(counter._memos) <= MEMOS_KEPT


def test_the_memos_are_emptied_when_the_caps_may_answer_otherwise():
    """A refusal learnt between two events of one scope (the caps' generation moves): the
    track, its item and the target named before now go to (other). Fails with the memos
    kept regardless (tried)."""
    caps = CardinalityCaps(dict(BIG))
    counter = DeepCounter(caps)
    click = {"k": "app", "t": "click", "n": "nav-home", "tr": "nav", "pos": 2}
    first = counter.facts(dict(click), "app", DAY, VISITOR, MONTH_VISITOR, None)
    assert first is not None and all(OTHER not in field for _, field, _ in first.incs)
    caps.learn("component", "app", DAY, {"nav", "nav#2"})
    caps.learn("target", "app", DAY, {"nav-home"})
    again = counter.facts(dict(click), "app", DAY, VISITOR, MONTH_VISITOR, None)
    assert again is not None and len(again.incs) == len(first.incs)
    assert not any("nav" in field for _, field, _ in again.incs)
    assert sum(OTHER in field for _, field, _ in again.incs) == 3  # the target, the track, the item


def test_another_app_or_day_has_memos_of_its_own():
    """Same visitor key objects (one request's), another app or day: its caps are its own,
    so a value admitted for the first app's day goes to (other) for another whose cap is
    full. Fails with one memo for all apps (tried)."""
    caps = CardinalityCaps({**BIG, "target": 1})
    counter = DeepCounter(caps)

    def target(app: str, day: str, name: str) -> str:
        facts = counter.facts({"k": app, "t": "exposure", "n": name}, app, day, VISITOR, MONTH_VISITOR, None)
        assert facts is not None
        return facts.incs[0][1]

    day2 = "2026-12-02"
    assert OTHER not in target("app2", DAY, "y")  # app2's one target of the day
    assert OTHER not in target("app", day2, "w")  # app's one of day 2
    assert OTHER not in target("app", DAY, "x") and OTHER not in target("app", DAY, "x")
    assert OTHER in target("app2", DAY, "x")
    assert OTHER in target("app", day2, "x")
    assert caps.overflowed["target"] == 2


def test_a_scopes_memos_hold_a_bounded_number_of_entries():
    """A request naming ever new items: the memos start afresh past MEMO_KEPT entries, and
    an item named again after that is counted as before."""
    counter = DeepCounter(CardinalityCaps(dict(BIG)))
    seen = []
    for n in range(MEMO_KEPT * 3):
        ev = {"k": "app", "t": "exposure", "n": "e", "tr": f"t{n % 7}", "pos": n}
        facts = counter.facts(ev, "app", DAY, VISITOR, MONTH_VISITOR, None)
        assert facts is not None
        seen.append(facts.as_json())
        scope = counter._scope
        assert scope is not None
        held = sum(len(of_track) for of_track in scope.memo("exposures").values())
        assert 0 < held <= MEMO_KEPT
    again = counter.facts({"k": "app", "t": "exposure", "n": "e", "tr": "t0", "pos": 0}, "app", DAY, VISITOR,
                          MONTH_VISITOR, None)
    assert again is not None and again.as_json() == seen[0]


def test_a_resources_session_is_admitted_again_for_another_session_id():
    """The resource keeps the last session id admitted as itself: another id in the same
    request is admitted on its own, and once the cap is full goes to (other) at each of its
    events (each counted as overflowing)."""
    caps = CardinalityCaps({**BIG, "session": 2})
    counter = DeepCounter(caps)
    play = {"k": "app", "t": "media", "n": "play", "rid": "r1", "ws": 0, "wt": 0, "pos": 0, "rt": "video"}
    sessions = []
    for ms in ("s1", "s1", "s2", "s3", "s3", "s1", "s2", "s3"):
        facts = counter.facts({**play, "ms": ms}, "app", DAY, VISITOR, MONTH_VISITOR, None)
        assert facts is not None and facts.session is not None
        sessions.append(facts.session.ms)
    assert sessions == ["s1", "s1", "s2", OTHER, OTHER, "s1", "s2", OTHER]
    assert caps.overflowed["session"] == 3


def test_an_absent_label_and_an_empty_one_name_the_same_resource():
    counter = DeepCounter(CardinalityCaps(dict(BIG)))
    like = {"k": "app", "t": "interaction", "n": "like", "rid": "r1", "subj": "math"}
    out = []
    for ev in (like, {**like, "rt": ""}, {**like, "stage": ""}, {**like, "src": "s"}, like):
        facts = counter.facts(ev, "app", DAY, VISITOR, MONTH_VISITOR, None)
        assert facts is not None
        out.append(facts.as_json())
    assert out[0] == out[1] == out[2] == out[4] and out[3] != out[0]


def test_a_resource_the_requests_share_has_each_visitor_s_members():
    """The app's day's resources are its requests' (session 21), their media members the
    visitor's. Fails with the members of the resource's first request kept (tried)."""
    counter = DeepCounter(CardinalityCaps(dict(BIG)))
    play = {"k": "app", "t": "media", "n": "play", "rid": "r1", "ms": "s", "ws": 0, "wt": 0, "pos": 0, "subj": "math"}
    for visitor in (b"\x0a" * 16, b"\x0b" * 16, bytes(b"\x0a" * 16)):
        facts = counter.facts(dict(play), "app", DAY, visitor, MONTH_VISITOR, None)
        assert facts is not None
        viewers = {day_member for suffix, day_member, _ in facts.members if suffix != "rs" and not suffix.startswith("rs:")}
        assert viewers == {visitor.hex()}, facts.members


def test_the_aggregator_counts_the_shared_parts_as_the_journal_s_facts():
    """Facts that say which memo parts make up their increments (DeepFacts.shared, .scaled:
    a track item's, a resource's boundary, time and rating fields) count in an Aggregator as
    the journal's copy of each event's facts does, which has no parts (DeepFacts.from_json),
    caps overflowing partway, several visitors, minutes, drains and reads between. Fails when
    a media event's time is counted once instead of times its amount (tried), and when a
    read's time is said to be the watch_ms part (tried)."""
    rng = random.Random(25)
    live, replayed = Aggregator(), Aggregator()
    parts = scaled = 0
    for batch in range(40):
        counter = DeepCounter(CardinalityCaps(dict(LIMITS)))
        for request in range(5):
            visitor = bytes([rng.randrange(3)]) * 16
            minute = 29_000_000 + rng.randrange(3)
            for ev in [event(rng) for _ in range(rng.randrange(1, 30))]:
                facts = counter.facts(dict(ev), "app", DAY, visitor, MONTH_VISITOR, None)
                if facts is None:
                    continue
                parts += facts.shared is not None
                scaled += facts.scaled is not None
                own = DeepFacts.from_json(orjson.loads(orjson.dumps(facts.as_json())))
                assert own.shared is None and own.scaled is None
                live.count(_hit(minute, facts))
                replayed.count(_hit(minute, own))
            if request == 2:
                assert live.current().deep_incs == replayed.current().deep_incs  # a read in between
        if batch % 3 == 2:
            ours, theirs = live.drain(), replayed.drain()
            assert ours.deep_incs == theirs.deep_incs, batch
            assert ours.deep_members == theirs.deep_members and ours.sessions == theirs.sessions
            assert ours.cells == theirs.cells
    assert live.drain().deep_incs == replayed.drain().deep_incs
    assert parts > 300 and scaled > 100


def _hit(minute: int, facts: DeepFacts) -> Hit:
    return Hit(app="app", minute=minute, etype="media", device=Device("mobile", "WeChat", "Android"),
               region=Region("CN", "330000", "330100", "中国", "浙江省", "杭州市"), visitor=VISITOR,
               month_visitor=MONTH_VISITOR, page="", page_code="", referrer="(direct)", visit_flag=0, engaged_ms=0,
               scroll=-1, first_party_id="", deep=facts, lang="zh", event_id="")
