"""The fold's deltas by (app, minute) (store/rollup.py, session 26): it keeps the last (app,
minute) asked and hands out its deltas again while the entries stay in that app and minute.
Entries of several apps and minutes, interleaved, with minutes that are equal ints but not
the same objects (as an unpacked part's are), must each land in their own app's minute: the
whole snapshot's fold is, (app, minute) by (app, minute), the fold of that pair's entries
alone."""

from __future__ import annotations

import random
from typing import Any

from collector.enrich.device import Device
from collector.enrich.geo import Region
from collector.features.facts import DeepFacts, Session
from collector.hit.record import Hit
from collector.store.aggregate import Aggregator, Snapshot
from collector.store.buckets import Calendar
from collector.store.rollup import RollupBuilder

MINUTE = 29_000_000
DEVICES = [Device("mobile", "WeChat", "Android"), Device("desktop", "Chrome", "Windows")]
REGIONS = [Region("CN", "330000", "330100", "中国", "浙江省", "杭州市"), Region("CN", "110000", "110100", "中国", "北京市", "北京市")]


def _random_snapshot(rng: random.Random) -> Snapshot:
    """Hits of 3 apps and 3 minutes in random order, each hit's minute its own int object."""
    aggregator = Aggregator()
    for n in range(300):
        app, minute = rng.choice("abc"), int(str(MINUTE + rng.randrange(3)))
        deep = None
        if rng.random() < 0.4:
            members = [("u:c", f"d{n % 7}", f"m{n % 7}")]
            session = Session(f"ms{n % 5}", rng.randrange(1, 60), 120, 1, (("r", "x"),)) if rng.random() < 0.3 else None
            deep = DeepFacts([("c", "clicks", 1), ("m:item", f"i{n % 4}", 2)], members, session=session)
        aggregator.count(Hit(
            app=app, minute=minute, etype=rng.choice(("pageview", "click", "engagement")), device=rng.choice(DEVICES),
            region=rng.choice(REGIONS), visitor=f"v{n % 9}".encode(), month_visitor=f"mv{n % 9}".encode(),
            page=rng.choice(("", "https://e.edu/1")), engaged_ms=rng.randrange(3) * 100, scroll=rng.randrange(-1, 3) * 25,
            first_party_id=rng.choice(("", "fp1")), deep=deep,
        ))
        if rng.random() < 0.1:
            aggregator.reject(app, minute, rng.choice(("bad_type", "flagged:foreign_origin")))
    return aggregator.drain()


def _only(snap: Snapshot, app: str, minute: int) -> Snapshot:
    """The entries of `snap` of one app and minute, as a snapshot of their own."""
    def ours(key: Any) -> bool:
        return key[0] == app and key[1] == minute

    return Snapshot(
        cube={key: sums for key, sums in snap.cube.items() if ours(key)},
        visitors={entry for entry in snap.visitors if ours(entry)},
        first_party={entry for entry in snap.first_party if ours(entry)},
        rejected={key: n for key, n in snap.rejected.items() if ours(key)},
        deep_incs={key: incs for key, incs in snap.deep_incs.items() if ours(key)},
        deep_members={key: members for key, members in snap.deep_members.items() if ours(key)},
        sessions={key: entry for key, entry in snap.sessions.items() if key[0] == app and entry[0] == minute},
    )


def _as_data(deltas: Any) -> tuple[Any, ...]:
    return deltas.fields, deltas.day_members, deltas.month_members, [s.as_json() for s in deltas.sessions]


def test_each_entry_is_folded_into_its_own_app_and_minute():
    builder = RollupBuilder(Calendar("Asia/Shanghai"), {})
    rng = random.Random(26)
    for _ in range(10):
        snap = _random_snapshot(rng)
        whole = builder._fold(snap)
        assert len(whole) > 3  # several apps' minutes, interleaved in every collection
        for (app, minute), deltas in whole.items():
            alone = builder._fold(_only(snap, app, minute))
            assert list(alone) == [(app, minute)]
            assert _as_data(deltas) == _as_data(alone[(app, minute)])
