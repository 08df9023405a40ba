"""The aggregator's cube memo (issue 17 "POST events/s", session 21): a hit with the app and
the very Device and Region objects of the hit before finds its cell's sums by the rest of
its Cell, not by the whole nested key (Aggregator._sums_of). Each test here fails if the
memo hands out sums it must not: another snapshot's (across a drain), another app's,
minute's or event type's, or misses a cell an equal (not identical) device already has.
The random test counts the same hits as a reference built from hit/record.py's getters.
Session 23 put the last cell of each event type ahead of the memo (_last_cells): the same
tests hold it to the same answers."""

from __future__ import annotations

import random
from typing import Any

from collector.enrich.device import BOT, Device
from collector.enrich.geo import Region
from collector.features.facts import DeepFacts
from collector.hit.record import Hit, audience_of, cell_of, first_party_of
from collector.store.aggregate import Aggregator, Snapshot

PHONE = Device("mobile", "WeChat", "Android")
HANGZHOU = Region("CN", "330000", "330100", "中国", "浙江省", "杭州市")
MINUTE = 29_000_000


def a_hit(etype: str = "click", minute: int = MINUTE, app: str = "a", device: Device = PHONE,
          region: Region = HANGZHOU, visitor: bytes = b"v", **fields: Any) -> Hit:
    return Hit(app=app, minute=minute, etype=etype, device=device, region=region, visitor=visitor,
               month_visitor=b"m", **fields)


def events(snap: Snapshot) -> dict[Any, int]:
    """Events by cell; the keys are plain tuples, equal to the hits' cell_of."""
    return {key: sums[0] for key, sums in snap.cube.items()}


def test_a_drain_between_two_hits_of_one_request_gives_the_second_its_own_cell():
    """The memo holds the current snapshot's lists: a stale one would count the second hit
    into the drained snapshot (which the flusher is sending) and lose it from the next."""
    aggregator = Aggregator()
    hit = a_hit()
    aggregator.count(hit)
    aggregator.count(hit)
    first = aggregator.drain()
    aggregator.count(hit)
    second = aggregator.drain()
    assert events(first) == {cell_of(hit): 2}
    assert events(second) == {cell_of(hit): 1}


def test_a_drain_then_split_and_shed_leaves_the_new_snapshot_whole():
    """A drained snapshot is split and shed by the flusher while hits keep coming: they go
    to the new snapshot only, whatever happens to the old one's dicts."""
    aggregator = Aggregator()
    hits = [a_hit(app=app, minute=MINUTE + n % 2) for n, app in enumerate("aabbab")]
    for hit in hits:
        aggregator.count(hit)
    drained = aggregator.drain()
    parts = drained.split_by_app(max_cells=3)
    assert len(parts) == 2
    for part in parts:
        while not part.shed(1):
            pass
    for hit in hits:
        aggregator.count(hit)
    again = aggregator.drain()
    assert sum(events(again).values()) == len(hits) and again.events == len(hits)
    assert events(again) == {cell_of(hit): 2 if hit.minute == MINUTE and hit.app == "a" else 1 for hit in hits} | {
        cell_of(a_hit(app="b", minute=MINUTE + 1)): 2,
    }


def test_hits_of_one_device_and_region_in_other_apps_minutes_and_types_count_apart():
    """The same Device and Region objects throughout: only the app, minute, event type or a
    page view's fields tell the cells apart, and the memo must keep them apart."""
    aggregator = Aggregator()
    hits = [
        a_hit(), a_hit(app="b"), a_hit(minute=MINUTE + 1), a_hit("exposure"),
        a_hit("pageview", page="https://e.edu/1", visit_flag=1, lang="zh"),
        a_hit("pageview", page="https://e.edu/1", visit_flag=2, lang="zh"),
        a_hit("pageview", page="https://e.edu/1", visit_flag=1, lang="en"),
        a_hit("pageview", page="https://e.edu/2", visit_flag=1, lang="zh"),
        a_hit("pageview", page="https://e.edu/2", page_code="c", visit_flag=1, lang="zh"),
        a_hit("pageview", page="https://e.edu/2", referrer="(direct)", visit_flag=1, lang="zh"),
    ]
    for hit in hits + hits[::-1]:
        aggregator.count(hit)
    assert events(aggregator.drain()) == {cell_of(hit): 2 for hit in hits}


def test_an_equal_device_or_region_that_is_another_object_finds_the_same_cell():
    """The memo is keyed by the Device's and Region's identity: an equal one (another
    request's, a cache's) is looked up by value and counts into the cell already there."""
    aggregator = Aggregator()
    other_phone, other_region = Device(*PHONE), Region(*HANGZHOU)
    assert other_phone is not PHONE and other_region is not HANGZHOU
    for device, region in ((PHONE, HANGZHOU), (other_phone, HANGZHOU), (PHONE, other_region), (PHONE, HANGZHOU)):
        aggregator.count(a_hit(device=device, region=region))
        aggregator.count(a_hit(device=device, region=region))
    snap = aggregator.drain()
    assert events(snap) == {cell_of(a_hit()): 8}
    key = next(iter(snap.cube))
    assert type(key[3]) is tuple and type(key[4]) is tuple  # kept plain (hit/record.py)


def test_the_kept_entries_hold_the_hits_minute_object_and_one_device_tuple():
    """The snapshot's entries are made from the hit's own objects (aggregate.py _MINUTE)
    and one plain tuple per device and region value, whether made through the memo or not."""
    minute = int("29000000")  # an int object of its own, as hit/ingest.py's _minute_object
    aggregator = Aggregator()
    for etype in ("click", "exposure", "click", "media"):
        aggregator.count(a_hit(etype, minute=minute, first_party_id="fp"))
    aggregator.count(a_hit(device=Device(*PHONE), minute=minute, page="x"))
    snap = aggregator.drain()
    entries = [*snap.cube, *snap.visitors, *snap.first_party]
    assert len(snap.cube) == 4 and all(entry[1] is minute for entry in entries)
    assert len({id(key[3]) for key in snap.cube}) == len({id(key[4]) for key in snap.cube}) == 1
    assert {id(entry[2]) for entry in snap.visitors} == {id(key[3]) for key in snap.cube}


def test_a_type_s_last_cell_of_another_request_s_device_counts_the_visitor_under_its_own():
    """A hit without a page takes its type's last cell when it holds that cell's objects
    (Aggregator._last_cells), even when hits of another device came between: its cell is
    right, and so must be its visitor entry, which is made of the memo's plain Device
    (_plain_device): a last cell taken while the memo stood for the other device would put
    the visitor under that one."""
    desktop = Device("desktop", "Chrome", "Windows")
    aggregator = Aggregator()
    hits = [a_hit("exposure"), a_hit("exposure"), a_hit("click", device=desktop), a_hit("exposure", visitor=b"w")]
    for hit in hits:
        aggregator.count(hit)
    snap = aggregator.drain()
    assert events(snap) == {cell_of(hits[0]): 3, cell_of(hits[2]): 1}
    assert snap.visitors == {audience_of(hit) for hit in hits}


def _reference(hits: list[Hit]) -> tuple[dict[Any, list[int]], set[Any], set[Any]]:
    """What the hits count into a snapshot, by hit/record.py's getters: no memo, no reuse."""
    cube: dict[Any, list[int]] = {}
    visitors, first_party = set(), set()
    for hit in hits:
        if hit.resent:
            continue
        sums = cube.setdefault(cell_of(hit), [0, 0, 0, 0])
        sums[0] += 1
        sums[1] += hit.engaged_ms
        if hit.scroll >= 0:
            sums[2] += hit.scroll
            sums[3] += 1
        if hit.device.device_class != BOT:
            visitors.add(audience_of(hit))
            if hit.first_party_id:
                first_party.add(first_party_of(hit))
    return cube, visitors, first_party


def test_random_hits_count_as_the_reference_does():
    """Hits drawn from few apps, minutes, types, pages, visitors and devices, the Device and
    Region objects shared in runs (as a request's events) or made anew (equal, not the
    same), with drains at random: each snapshot is what the reference counts."""
    rng = random.Random(21)
    # One int object per minute, as hit/ingest.py's _minute_object gives: the hits then hold
    # the very objects the aggregator's last cells (_LastCell) compare by identity.
    minutes = [int(str(MINUTE + n)) for n in range(3)]
    devices = [PHONE, Device("desktop", "Chrome", "Windows"), Device(BOT, "Baiduspider", "Other")]
    regions = [HANGZHOU, Region("CN", "110000", "110100", "中国", "北京市", "北京市")]
    for _ in range(30):
        aggregator = Aggregator()
        pending: list[Hit] = []
        device, region, app = PHONE, HANGZHOU, "a"
        for _ in range(400):
            if rng.random() < 0.2:  # another request: other objects, maybe other values
                device, region = rng.choice(devices), rng.choice(regions)
                if rng.random() < 0.5:
                    device, region = Device(*device), Region(*region)
                app = rng.choice("ab")
            etype = rng.choice(("pageview", "click", "exposure", "engagement"))
            hit = a_hit(
                etype, minute=rng.choice(minutes), app=app if rng.random() < 0.9 else "c", device=device,
                region=region, page=rng.choice(("", "https://e.edu/1", "https://e.edu/2")),
                visit_flag=rng.randrange(3), lang=rng.choice(("", "zh")), engaged_ms=rng.randrange(3) * 100,
                scroll=rng.randrange(-1, 3) * 25, first_party_id=rng.choice(("", "fp1", "fp2")),
                visitor=rng.choice((b"v1", b"v2")),
                deep=DeepFacts([("c", "clicks", 1)], []) if rng.random() < 0.3 else None,
            )
            aggregator.count(hit)
            pending.append(hit)
            if rng.random() < 0.02:
                snap = aggregator.drain()
                assert (snap.cube, snap.visitors, snap.first_party) == _reference(pending)
                assert snap.events == len(pending)
                pending = []
        snap = aggregator.drain()
        assert (snap.cube, snap.visitors, snap.first_party) == _reference(pending)
