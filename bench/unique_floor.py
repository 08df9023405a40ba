"""Issue 17, "GET, every UA and IP unique": what a never-seen visitor's hit costs, split into
the dependencies' share (ua-parser-rs, the .mmdb reader) and ours — the floor of that target.

    python -m bench.unique_floor [--hits 4000] [--rounds 3] [--loops 5]

The hits are bench.hit_cpu's unique shape (traffic.unique, serials from 5,000,000: a warm-up
pass of other visitors, then `--rounds` timed passes of never-seen addresses and User-Agents).
Over the timed passes it counts, per hit: User-Agents parsed (the version memo's misses:
enrich/device.py), .mmdb reads (the network cache's misses: enrich/geo.py); and it times, in
tight loops over exactly those inputs (process_time, best of `--loops`), each native call a
parse or a lookup makes and the Python around them. Then the whole hit in process
(bench.hit_cpu's unique shape), the same hits with both enrichment caches already holding
their answers (what a new visitor costs beyond its User-Agent and address), and a warm
realistic GET hit. Prints a table of µs per hit; nothing is asserted.
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable, Iterable
from typing import Any

from .hit_cpu import _best_seconds, _connection, measured


def _timed(fn: Callable[[Any], Any], items: list, loops: int) -> float:
    """Best CPU µs per item of `fn` over `items`."""
    best = float("inf")
    for _ in range(loops):
        gc.collect()
        start = time.process_time()
        for x in items:
            fn(x)
        best = min(best, time.process_time() - start)
    return best / max(len(items), 1) * 1e6


def _hits(hits: int, passes: int) -> list[list[tuple[str, str, str | None, Any, Any, Any]]]:
    """(UA, address, Sec-CH-UA-Mobile, sw, sh, tp) of each hit of hit_cpu's unique passes."""
    from . import traffic
    from .ippool import load_pool

    reqs = traffic.unique(traffic.Population(load_pool(), 1000, seed=9), hits * passes, int(time.time() * 1000),
                          serial_start=5_000_000)
    rows = []
    for r in reqs:
        ev = r.events[0]
        rows.append((r.headers["User-Agent"], r.headers["X-Forwarded-For"], r.headers.get("Sec-CH-UA-Mobile"),
                     int(ev.get("sw", 0)), int(ev.get("sh", 0)), int(ev.get("tp", 0))))
    return [rows[i * hits:(i + 1) * hits] for i in range(passes)]


class _CountingReader:
    """A maxminddb reader that counts its lookups (for the counts only, never timed)."""

    def __init__(self, reader: Any, seen: list) -> None:
        self._reader, self._seen = reader, seen

    def get_with_prefix_len(self, addr: Any) -> Any:
        self._seen.append(addr)
        return self._reader.get_with_prefix_len(addr)


def _counts(warm: list, timed: list[list]) -> tuple[list[str], list[Any], int, int]:
    """Over the timed passes (after the warm-up): the User-Agents parsed (memo misses), the
    addresses read from the .mmdb files, the hits, the parses' and reads' counts."""
    from collector.enrich import device
    from collector.enrich.device import DeviceClassifier
    from collector.enrich.geo import GeoResolver

    from .hit_cpu import ROOT

    geo = GeoResolver([str(ROOT / "geo_data" / f"dbip-city-ipv{v}.mmdb") for v in (4, 6)])
    read: list = []
    geo._all_readers = [_CountingReader(r, read) for r in geo._all_readers]
    geo._v6_readers = [_CountingReader(r, read) for r in geo._v6_readers]
    classifier = DeviceClassifier()
    parsed: list[str] = []
    analyse = device._analyse
    classifier._memo._compute = lambda ua: (parsed.append(ua), analyse(ua))[1]
    for ua, ip, ch, sw, sh, tp in warm:
        classifier.classify(ua, ch, sw, sh, tp)
        geo.lookup(ip)
    parsed.clear()
    read.clear()
    lookups = 0
    for rows in timed:
        for ua, ip, ch, sw, sh, tp in rows:
            classifier.classify(ua, ch, sw, sh, tp)
            geo.lookup(ip)
            lookups += 1
    return parsed, read, lookups, len(geo._by_place)


def _enrichment_warm(hits: int, rounds: int) -> float:
    """µs per never-seen-visitor hit whose User-Agent and address the enrichment caches
    already hold (fed once through another connection sharing the classifier and geo)."""
    from .hit_cpu import _unique_passes

    warm, *timed = _unique_passes(hits, rounds + 1)
    connection, aggregator = _connection(journal=True)
    ingest = connection.server.ingest
    for data in warm:
        connection.data_received(data)

    def prewarmed(passes: Iterable[list[bytes]]) -> Iterable[list[bytes]]:
        for fresh in passes:
            other, _ = _connection(journal=False)
            other_ingest = other.server.ingest
            other_ingest.geo, other_ingest.devices = ingest.geo, ingest.devices
            for data in fresh:
                other.data_received(data)
            yield fresh

    return _best_seconds(connection, aggregator, prewarmed(timed)) / hits * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="a unique hit's dependency floor")
    parser.add_argument("--hits", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--loops", type=int, default=5)
    parser.add_argument("--in-hit", action="store_true",
                        help="only the in-hit split: each native call timed inside whole unique hits")
    parser.add_argument("--npm-user-agents", metavar="JSON",
                        help="also compare with real UAs: dist/user-agents.json of `npm pack user-agents`")
    args = parser.parse_args(argv)
    if args.in_hit:
        in_hit(args.hits, args.rounds)
        return 0

    from collector.enrich import device
    from collector.enrich.device import DeviceClassifier
    from collector.enrich.geo import GeoResolver
    from collector.enrich.ua_versions import version_masked

    from .hit_cpu import ROOT, measured_unique

    warm, *timed = _hits(args.hits, args.rounds + 1)
    rows = [r for rs in timed for r in rs]
    n = len(rows)
    parsed, read, lookups, places = _counts(warm, timed)
    uas = [r[0] for r in rows]
    ips = [r[1] for r in rows]
    resolver, _ = device._get_resolver()
    per_hit = lambda us, k: us * k / n  # noqa: E731 - µs per call × calls → µs per hit
    out: list[tuple[str, float, float, float]] = []  # (what, calls per hit, µs per call, µs per hit)

    def row(what: str, calls: int, us_per_call: float) -> None:
        out.append((what, calls / n, us_per_call, per_hit(us_per_call, calls)))

    # --- the User-Agent --------------------------------------------------------------------
    row("version_masked (every new UA)", n, _timed(version_masked, uas, args.loops))
    row("ua-parser-rs UserAgentExtractor (per parse)", len(parsed), _timed(resolver.ua.extract, parsed, args.loops))
    row("ua-parser-rs OSExtractor", len(parsed), _timed(resolver.os.extract, parsed, args.loops))
    row("ua-parser-rs DeviceExtractor (8 families)", len(parsed), _timed(resolver.de.extract, parsed, args.loops))
    row("crawler list (ua-parser-rs engine)", len(parsed), _timed(device._crawlers.name, parsed, args.loops))
    low = [u.lower() for u in parsed]
    row("our bot-token table (native)", len(parsed), _timed(device._BOTS_THEN_DESKTOPS_MOZILLA.first, low, args.loops))
    row("our TV/console table (native)", len(parsed), _timed(device._TV_CONSOLE_SET.first, parsed, args.loops))
    row("_analyse, whole (per parse)", len(parsed), _timed(device._analyse, parsed, args.loops))

    def cold_classify(loops: int) -> float:
        best = float("inf")
        for _ in range(loops):
            c = DeviceClassifier()
            for ua, _ip, ch, sw, sh, tp in warm:
                c.classify(ua, ch, sw, sh, tp)
            gc.collect()
            start = time.process_time()
            for ua, _ip, ch, sw, sh, tp in rows:
                c.classify(ua, ch, sw, sh, tp)
            best = min(best, time.process_time() - start)
        return best / n * 1e6

    row("DeviceClassifier.classify, new UA (per hit)", n, cold_classify(args.loops))

    # --- the address -----------------------------------------------------------------------
    geo_paths = [str(ROOT / "geo_data" / f"dbip-city-ipv{v}.mmdb") for v in (4, 6)]
    g = GeoResolver(geo_paths)
    reader = g._all_readers[0]
    v6 = g._v6_readers[0]
    row("maxminddb get_with_prefix_len (per read)", len(read),
        _timed(lambda a: (v6 if ":" in a else reader).get_with_prefix_len(a), read, args.loops))

    def cold_geo(loops: int) -> float:
        best = float("inf")
        for _ in range(loops):
            fresh = GeoResolver(geo_paths)
            for _ua, ip, *_ in warm:
                fresh.lookup(ip)
            gc.collect()
            start = time.process_time()
            for ip in ips:
                fresh.lookup(ip)
            best = min(best, time.process_time() - start)
            fresh.close()
        return best / n * 1e6

    row("GeoResolver.lookup, new address (per hit)", n, cold_geo(args.loops))

    # --- whole hits in process -----------------------------------------------------------
    unique = measured_unique(args.hits, args.rounds)
    enriched = _enrichment_warm(args.hits, args.rounds)
    get = measured("get", args.hits, args.rounds)[0]

    print(f"{n} timed unique hits: {len(parsed)} User-Agents parsed ({len(parsed) / n:.1%}), "
          f"{len(read)} .mmdb reads ({len(read) / n:.1%}), {places} places")
    print(f"{'what':48s} {'calls/hit':>9s} {'µs/call':>8s} {'µs/hit':>7s}")
    for what, calls, us, hit in out:
        print(f"{what:48s} {calls:9.3f} {us:8.2f} {hit:7.2f}")
    print(f"{'whole unique hit, in process (hit_cpu unique)':48s} {'':9s} {'':8s} {unique:7.2f}")
    print(f"{'  the same hits, UA and address already cached':48s} {'':9s} {'':8s} {enriched:7.2f}")
    print(f"{'warm realistic GET hit (hit_cpu get)':48s} {'':9s} {'':8s} {get:7.2f}")
    _compare_sets(parsed, uas, args.npm_user_agents, args.loops)
    return 0


class _Clocked:
    """Wraps an object's method (or a function): adds each call's wall time to `totals[name]`."""

    def __init__(self, inner: Any, method: str | None, name: str, totals: dict[str, list[int]]) -> None:
        self._inner = inner
        self._call = getattr(inner, method) if method else inner
        self._sum = totals.setdefault(name, [0, 0])
        if method:
            setattr(self, method, self)

    def __getattr__(self, name: str) -> Any:
        """The wrapped object's other attributes (device._crawler_or_device reads resolver.de.parts)."""
        return getattr(self._inner, name)

    def __call__(self, *args: Any) -> Any:
        start = time.perf_counter_ns()
        try:
            return self._call(*args)
        finally:
            self._sum[0] += time.perf_counter_ns() - start
            self._sum[1] += 1


def in_hit(hits: int, rounds: int) -> None:
    """What each native call and our rules cost inside whole unique hits (not in a tight
    loop: there the dependency's tables stay in the CPU's caches). Each call is clocked
    (perf_counter, ~0.1 µs of overhead a call); the whole pass too, with the clocks in."""
    from collector.enrich import device

    from .hit_cpu import _unique_passes

    warm, *timed = _unique_passes(hits, rounds + 1)
    connection, aggregator = _connection(journal=True)
    ingest = connection.server.ingest
    for data in warm:
        connection.data_received(data)
    totals: dict[str, list[int]] = {}
    resolver, _ = device._get_resolver()
    resolver.ua = _Clocked(resolver.ua, "extract", "dep: ua-parser-rs UserAgentExtractor", totals)
    resolver.os = _Clocked(resolver.os, "extract", "dep: ua-parser-rs OSExtractor", totals)
    resolver.de = _Clocked(resolver.de, "extract", "dep: ua-parser-rs DeviceExtractor (8 families)", totals)
    device._crawlers._match = _Clocked(device._crawlers._match, None, "dep: crawler list (ua-parser-rs engine)", totals)
    # A parse asks the crawler list and the device families in one call (device._crawler_or_device).
    resolver.crawlers_then_devices = tuple(
        _Clocked(part, "extract", "dep: crawler list + device families (ua-parser-rs engine)", totals)
        for part in resolver.crawlers_then_devices
    )
    for name in ("_BOTS_THEN_DESKTOPS_MOZILLA", "_BOTS_THEN_DESKTOPS", "_BOT_TOKENS_IN_MOZILLA_SET", "_BOT_TOKENS_SET",
                 "_TV_CONSOLE_SET", "_ANDROID_DESKTOP_SET"):
        tokens = getattr(device, name)
        tokens._native = _Clocked(tokens._native, "extract", "ours: token tables (ua-parser-rs engine)", totals)
    for reader_list in (ingest.geo._all_readers, ingest.geo._v6_readers):
        reader_list[:] = [_Clocked(r, "get_with_prefix_len", "dep: maxminddb get_with_prefix_len", totals)
                          for r in reader_list]
    device.version_masked = _Clocked(device.version_masked, None, "ours: version_masked", totals)
    unclocked = [
        name for owner, attr, name in (
            (ingest.devices._memo, "_compute", "all: _analyse (a parse, natives included)"),
            (ingest.devices, "classify", "all: DeviceClassifier.classify"),
            (ingest.geo, "lookup", "all: GeoResolver.lookup"),
        ) if not _clock_attribute(owner, attr, name, totals)
    ]
    passes = [[data for fresh in timed for data in fresh]]  # one pass: the clocks' sums are its
    n = len(passes[0])
    wall = _best_seconds(connection, aggregator, passes, clock=time.perf_counter) * 1e9
    print(f"{n} unique hits, in process, clocks in: {wall / n / 1e3:.2f} µs a hit (wall)")
    print(f"{'inside them':52s} {'calls/hit':>9s} {'µs/call':>8s} {'µs/hit':>7s} {'share':>6s}")
    for name, (ns, calls) in totals.items():
        print(f"{name:52s} {calls / n:9.3f} {ns / max(calls, 1) / 1e3:8.2f} {ns / n / 1e3:7.2f} {ns / wall:6.1%}")
    for name in unclocked:
        print(f"{name:52s} not clocked: a compiled class's method cannot be replaced")


def _clock_attribute(owner: Any, attr: str, name: str, totals: dict[str, list[int]]) -> bool:
    """Clock owner.attr in place; False when it cannot be replaced (a mypyc-compiled class's
    attributes and methods are read-only: the compiled install had made --in-hit fail)."""
    clocked = _Clocked(getattr(owner, attr), None, name, totals)
    try:
        setattr(owner, attr, clocked)
    except (AttributeError, TypeError):
        del totals[name]
        return False
    return True


def _keys_and_parse_cost(uas: list[str], loops: int) -> tuple[int, int, float]:
    """(distinct UAs, version memo keys among them, µs per parse of one of them)."""
    from collector.enrich import device
    from collector.enrich.ua_versions import version_masked

    distinct = list(dict.fromkeys(uas))
    return len(distinct), len({version_masked(u) for u in distinct}), _timed(device._analyse, distinct, loops)


def _compare_sets(parsed: list[str], uas: list[str], npm_json: str | None, loops: int) -> None:
    """The bench's User-Agents against real ones: how many distinct UAs share a memo key (the
    share a memo answers, first come first kept), and what a parse costs."""
    from tests.ua_samples import UA_TABLE

    from .ua_corpus import load_corpus, load_npm_user_agents

    sets = {
        "bench unique hits (timed passes)": uas,
        "  of them parsed (memo misses)": parsed,
        "tests/ua_samples.py (the bench's base UAs)": [row[0] for row in UA_TABLE],
        "labelled corpus (bench/ua_corpus.py)": [e.ua for e in load_corpus()],
    }
    if npm_json:
        sets["npm user-agents (real, distinct)"] = [e.ua for e in load_npm_user_agents(npm_json)]
    print(f"{'User-Agents':48s} {'distinct':>8s} {'keys':>7s} {'memo':>6s} {'µs/parse':>8s}")
    for name, group in sets.items():
        distinct, keys, us = _keys_and_parse_cost(group, loops)
        print(f"{name:48s} {distinct:8d} {keys:7d} {1 - keys / distinct:6.1%} {us:8.2f}")


if __name__ == "__main__":
    raise SystemExit(main())
