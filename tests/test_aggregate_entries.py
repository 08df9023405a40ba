"""What the aggregator reads of a hit, per hit (issue 17 "POST", session 11): the entries
taken by position, the bot check without Device.is_bot, the media session it keeps."""

from __future__ import annotations

import random

import pytest

from collector.enrich.device import BOT, Device
from collector.enrich.geo import Region
from collector.features.facts import DeepFacts, Session, Shared, shared_facts
from collector.hit.record import Audience, Cell, Hit, audience_of, cell_of, first_party_of
from collector.store.aggregate import Aggregator, Snapshot

PHONE = Device("mobile", "WeChat", "Android")
CRAWLER = Device(BOT, "Baiduspider", "Other")
HANGZHOU = Region("CN", "330000", "330100", "中国", "浙江省", "杭州市")


def a_hit(device: Device = PHONE, session: Session | None = None) -> Hit:
    deep = DeepFacts([("c", "clicks", 1)], [("h:viewers", "76", "67")], session)
    return Hit(app="a", minute=29_000_000, etype="media", device=device, region=HANGZHOU, visitor=b"v",
               month_visitor=b"m", page="https://e.edu/1", page_code="pc", referrer="(direct)", visit_flag=1,
               engaged_ms=5, scroll=40, first_party_id="fp", deep=deep, lang="zh", event_id="e1")


def test_the_entries_taken_by_position_are_the_fields_by_name():
    hit = a_hit()
    assert cell_of(hit) == tuple(getattr(hit, name) for name in Cell._fields)
    assert audience_of(hit) == tuple(getattr(hit, name) for name in Audience._fields)
    assert first_party_of(hit) == ("a", 29_000_000, "fp")


@pytest.mark.parametrize("device", [PHONE, CRAWLER])
def test_a_bot_counts_its_event_and_nothing_of_its_visitor(device):
    aggregator = Aggregator()
    aggregator.count(a_hit(device))
    snap = aggregator.drain()
    assert snap.events == 1 and len(snap.cube) == 1
    counted = device.is_bot is False
    assert bool(snap.visitors) == bool(snap.first_party) == bool(snap.deep_incs) == bool(snap.deep_members) == counted


def test_the_session_kept_is_a_copy_that_later_events_merge_into():
    first, later = Session("s1", 10, 100, 1, (("", ""),)), Session("s1", 60, 100, 0, (("", ""),))
    copied = first.copy()
    assert copied == first and copied is not first
    aggregator = Aggregator()
    aggregator.count(a_hit(session=first))
    aggregator.count(a_hit(session=later))
    _, kept = aggregator.drain().sessions[("a", "s1")]
    assert (kept.ws, kept.started) == (60, 1)
    assert (first.ws, later.started) == (10, 0)  # the hits' own facts unchanged: the journal replays them


def test_event_ids_go_to_the_snapshot_current_when_counted():
    """The ids of a request's (app, minute) are appended to the list of the last hit's, kept
    across hits (Aggregator.count): a drain in between starts the new snapshot's own list,
    and a hit of another app or minute gets its own."""
    aggregator = Aggregator()
    aggregator.count(a_hit()._replace(event_id="e1"))
    aggregator.count(a_hit()._replace(event_id="e2"))
    first = aggregator.drain()
    aggregator.count(a_hit()._replace(event_id="e3"))
    aggregator.count(a_hit()._replace(event_id="e4", app="b"))
    aggregator.count(a_hit()._replace(event_id="e5", minute=29_000_001))
    aggregator.count(a_hit()._replace(event_id="e6"))
    second = aggregator.drain()
    assert first.event_ids == {("a", 29_000_000): ["e1", "e2"]}
    assert second.event_ids == {("a", 29_000_000): ["e3", "e6"], ("b", 29_000_000): ["e4"], ("a", 29_000_001): ["e5"]}


def test_deep_facts_go_to_the_snapshot_current_when_counted():
    """A deep event's increments and members go to its (app, minute)'s groups, which
    Aggregator._count_deep keeps across hits: a drain in between starts the new snapshot's
    own, another app or minute gets its own, and an (app, minute) is there only with
    entries of its kind."""
    aggregator = Aggregator()
    hit = a_hit()
    aggregator.count(hit)
    aggregator.count(hit._replace(deep=DeepFacts([("c", "clicks", 2), ("m:t", "clicks:x", 1)], [])))
    first = aggregator.drain()
    aggregator.count(hit)
    aggregator.count(hit._replace(app="b", deep=DeepFacts([], [("h:viewers", "1", "2")])))
    aggregator.count(hit._replace(minute=29_000_001, deep=DeepFacts([("c", "clicks", 1)], [])))
    aggregator.count(hit)
    second = aggregator.drain()
    assert first.deep_incs == {("a", 29_000_000): {"c": {"clicks": 3}, "m:t": {"clicks:x": 1}}}
    assert first.deep_members == {("a", 29_000_000): {("h:viewers", "76", "67")}}
    assert second.deep_incs == {("a", 29_000_000): {"c": {"clicks": 2}}, ("a", 29_000_001): {"c": {"clicks": 1}}}
    assert second.deep_members == {("a", 29_000_000): {("h:viewers", "76", "67")}, ("b", 29_000_000): {("h:viewers", "1", "2")}}
    # cube, visitors, first-party ids, deep increments, deep members, event ids
    assert (first.cells, second.cells) == (1 + 1 + 1 + 2 + 1 + 2, 3 + 3 + 3 + 2 + 2 + 4)


def scaled_facts(boundary: Shared | None, played: Shared, amount: int) -> DeepFacts:
    """A media event's facts as features/media.py makes them: per target its time, then its
    boundary's increment of 1 (boundary None: no progress)."""
    incs: list[tuple[str, str, int]] = []
    for at, (suffix, field, _) in enumerate(played.incs):
        incs.append((suffix, field, amount))
        if boundary is not None:
            incs.append(boundary.incs[at])
    return DeepFacts(incs, [], None, boundary, played, amount)


def test_shared_facts_count_as_each_event_s_own_facts_would():
    """Facts a memo hands to many events (DeepFacts.shared, features/tracks.py), and facts
    made of memo parts, one of them times an amount (DeepFacts.scaled, features/media.py),
    are counted by how often and how much they were met and added at the drain or before a
    read (Aggregator.current): across groups, drains, reads between two hits, members and
    sessions of the same events, the snapshots are those of the same facts unshared, each
    event's own (the journal's replay). Fails when a scaled part is counted once, not times
    its amount (tried)."""
    rng = random.Random(17)
    shared = [shared_facts([("c", "track_exposures", 1), ("m:track", f"exposures:t{n}", 1), ("m:item", f"e:t#{n}", 1)])
              for n in range(4)]
    shared.append(shared_facts([("m:target", "clicks:x", 1)]))
    played = Shared([("c", "watch_ms", 1), ("m:resource", "watch_ms:r1", 1), ("m:rtype", "watch_ms:video", 1)])
    boundaries = [Shared([("c", f"p{pb}", 1), ("m:resource", f"p{pb}:r1", 1), ("m:rtype", f"p{pb}:video", 1)])
                  for pb in (10, 50)]
    hits = []
    for _ in range(900):
        luck = rng.random()
        if luck < 0.5:
            deep = rng.choice(shared)
        elif luck < 0.75:
            deep = scaled_facts(rng.choice([None, *boundaries]), played, rng.randrange(1, 30_000))
        else:
            deep = DeepFacts([("c", "clicks", rng.randrange(1, 4))], [("u:m", "v", "w")])
        hits.append(a_hit()._replace(app=rng.choice("ab"), minute=29_000_000 + rng.randrange(3), deep=deep))
    live, alone = Aggregator(), Aggregator()
    snaps: list[tuple[Snapshot, Snapshot]] = []
    for at, hit in enumerate(hits):
        live.count(hit)
        facts = hit.deep
        assert facts is not None
        alone.count(hit._replace(deep=DeepFacts(list(facts.incs), list(facts.members), facts.session)))
        if at % 97 == 96:
            snaps.append((live.drain(), alone.drain()))
        elif at % 31 == 30:
            assert live.current().deep_incs == alone.current().deep_incs  # a read in between
    snaps.append((live.drain(), alone.drain()))
    for ours, theirs in snaps:
        assert ours.deep_incs == theirs.deep_incs and ours.deep_members == theirs.deep_members
        assert ours.cells == theirs.cells
    assert sum(n for ours, _ in snaps for g in ours.deep_incs.values() for n in g.get("c", {}).values()) > 900


def test_a_visitor_seen_again_goes_to_the_snapshot_current_when_counted():
    """A hit whose visitor and first-party entries are the hit before's skips adding them
    (Aggregator._same_visitor): a drain in between starts the new snapshot's own, and a hit
    with another language or first-party id adds its own."""
    aggregator = Aggregator()
    hit = a_hit()
    english = hit._replace(lang="en")
    aggregator.count(hit)
    aggregator.count(hit._replace(event_id="e2"))
    first = aggregator.drain()
    aggregator.count(hit)
    second = aggregator.drain()
    aggregator.count(hit)
    aggregator.count(english)
    third = aggregator.drain()
    aggregator.count(hit)
    aggregator.count(hit._replace(first_party_id="fp2"))
    fourth = aggregator.drain()
    assert first.visitors == second.visitors == fourth.visitors == {audience_of(hit)}
    assert first.first_party == second.first_party == third.first_party == {first_party_of(hit)}
    assert third.visitors == {audience_of(hit), audience_of(english)}
    assert fourth.first_party == {first_party_of(hit), ("a", 29_000_000, "fp2")}
