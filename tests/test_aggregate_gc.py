"""What the aggregator keeps per second stays out of the garbage collector's walks (issue
17, tail latency: generation-1 collections walking a second's cells stalled the hit loop)."""

from __future__ import annotations

import gc

from collector.enrich.device import Device
from collector.enrich.geo import Region
from collector.hit.record import Hit, named_audience, named_cell
from collector.store.aggregate import Aggregator

PHONE = Device("mobile", "WeChat", "Android")
HANGZHOU = Region("CN", "330000", "330100", "中国", "浙江省", "杭州市")


def a_hit(page: str, visitor: bytes, scroll: int = -1, engaged_ms: int = 0) -> Hit:
    return Hit(app="a", minute=29_000_000, etype="pageview", device=PHONE, region=HANGZHOU, visitor=visitor,
               month_visitor=visitor[::-1], page=page, scroll=scroll, engaged_ms=engaged_ms)


def counted() -> Aggregator:
    aggregator = Aggregator()
    for n in range(300):  # 30 pages, 100 visitors: cells and visitor entries seen many times
        aggregator.count(a_hit(f"https://e.edu/{n % 30}", bytes([n % 100]) * 8, scroll=n % 7, engaged_ms=n))
    return aggregator


def test_kept_cells_and_visitors_are_not_tracked_by_the_garbage_collector():
    snap = counted().drain()
    # A tuple whose values are all untracked is untracked by a collection it survives (by
    # the second at the latest: a collection may look at a key before its device's tuple).
    gc.collect()
    gc.collect()
    assert len(snap.cube) == 30 and len(snap.visitors) == 100
    tracked = [entry for entry in (*snap.cube, *snap.cube.values(), *snap.visitors) if gc.is_tracked(entry)]
    assert tracked == []
    # The Device and Region are kept as plain tuples, one object per value.
    assert {type(key[3]) for key in snap.cube} == {tuple} and len({id(key[3]) for key in snap.cube}) == 1


def test_counts_stay_exact_and_readers_get_devices_and_regions_back():
    snap = counted().drain()
    sums = {named_cell(key).page: list(value) for key, value in snap.cube.items()}
    # Page 0 is hit by n = 0, 30, ..., 270: 10 events, engaged n, scroll n % 7 each time.
    pages0 = range(0, 300, 30)
    assert sums["https://e.edu/0"] == [10, sum(pages0), sum(n % 7 for n in pages0), 10]
    assert sum(value[0] for value in sums.values()) == 300
    cell = named_cell(next(iter(snap.cube)))
    assert (cell.device, cell.region) == (PHONE, HANGZHOU) and cell.device.is_bot is False
    assert type(cell.device) is Device and type(cell.region) is Region
    seen = named_audience(next(iter(snap.visitors)))
    assert type(seen.device) is Device and seen.region.city_name == "杭州市"
