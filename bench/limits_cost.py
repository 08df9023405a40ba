"""What the rate limits and the UV guard (hit/ratelimit.py, hit/uvguard.py) add to a hit.

    .venv/bin/python -m bench.limits_cost

In process, on the bench's realistic traffic (60 000 visitors, bench/traffic.py): each
added step of Ingest as a GET page view takes it, in CPU µs per hit (process time, so
that a busy machine's waiting is not counted; the best of several rounds), with limits
high enough that nothing is refused — the path every real hit takes.
"""

from __future__ import annotations

import os
import time

from . import traffic
from .ippool import load_pool
from .stages import GEO_DB

HITS = 20_000


def per_hit(fn, items: list, rounds: int = 9) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        for item in items:
            fn(*item)
        best = min(best, time.process_time() - started)
    return best / len(items) * 1e6


def main() -> None:
    from collector.enrich.device import DeviceClassifier
    from collector.enrich.geo import GeoResolver
    from collector.hit.ingest import Ingest
    from collector.hit.protocol import decode_query, from_query
    from collector.hit.visitors import VisitorHasher
    from collector.settings import Settings
    from collector.store.aggregate import Aggregator
    from collector.store.buckets import Calendar

    settings = Settings(trusted_proxies=("127.0.0.1/32",), registry="open", rate_client=1e9, rate_address=1e9, rate_app=1e9)
    calendar = Calendar(settings.timezone)
    hasher = VisitorHasher()
    for granularity in ("day", "month"):
        hasher.set_salt(calendar.bucket_at(granularity, calendar.local(time.time())).id, os.urandom(32))
    ingest = Ingest(settings, Aggregator(), GeoResolver(GEO_DB), DeviceClassifier(), hasher, calendar, time.time)
    requests = traffic.realistic(traffic.Population(load_pool(), 60000, seed=1), HITS, "get", int(time.time() * 1000))
    hits = []
    for request in requests:
        event = from_query(decode_query(request.path.partition("?")[2]))[0]
        event.pop("img", None)
        ip = ingest.ips.client_ip("127.0.0.1", request.headers.get("X-Forwarded-For"))
        hits.append((event, ip, request.headers.get("User-Agent", "")))
    minute = int(time.time() // 60)
    ingest.uv_guard.at(minute)
    keys = [ingest._visitor_keys(minute, ip, ua, None) for event, ip, ua in hits]

    def client(event, ip, ua):
        ingest._client_limited(ip, ua, time.time())

    def app(event, ip, ua):
        ingest._app_limited([event], time.time(), minute)

    guarded = [(event["k"], ip, key, event.get("vid", ""), event.get("uid")) for (event, ip, _), key in zip(hits, keys, strict=True)]

    def guard(app_key, ip, key, vid, uid):
        ingest._guarded(app_key, minute, ip, key, vid, uid, None, [])

    def nothing(*_):
        pass

    baseline = per_hit(nothing, hits)
    first = per_hit(guard, guarded, rounds=1) - baseline
    steps = {
        "per client and per address (before the request is read)": per_hit(client, hits) - baseline,
        "per app key (the request's events)": per_hit(app, hits) - baseline,
        "UV guard, an identity seen this minute": per_hit(guard, guarded) - baseline,
        "UV guard, first sight (new visitor and vid)": first,
    }
    print(f"{HITS} GET page views from {len({ip for _, ip, _ in hits})} addresses; "
          f"{sum(1 for e, _, _ in hits if e.get('vid')) / HITS:.0%} carry a vid")
    for name, us in steps.items():
        print(f"  {name}: {us:.2f} µs/hit")
    total = sum(us for name, us in steps.items() if "first sight" not in name)
    print(f"  added to a hit (limits + guard, identity seen): {total:.2f} µs/hit")
    print(f"  refused: {dict(ingest.limits.refused)}, suspect: {dict(ingest.uv_guard.suspect)}")


if __name__ == "__main__":
    main()
