"""Issue 17: every per-visitor table of a worker stays within its setting, however many
distinct visitors come (bench/visitors_rss.py measures what they cost)."""

from __future__ import annotations

from collector.settings import Settings
from collector.web.appkeys import INGEST

DESKTOP = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
BOUNDS = {
    "rate_limit_clients": 100,
    "uv_guard_identities": 150,
    "visit_tracker_visitors": 80,
    "recent_event_ids": 60,
    "ua_cache_size": 64,
    "ua_memo_size": 48,
    "geo_cache_size": 64,
}
VISITORS = 1200
# The shipped limits and UV guard (the test settings turn them off).
LIMITS = {name: getattr(Settings(), name) for name in ("rate_client", "rate_address", "rate_app", "uv_guard_per_minute")}


def tables(ingest) -> dict[str, int]:
    """Entries of each table, by the setting that bounds it."""
    limits = ingest.limits
    return {
        "rate_limit_clients": max(len(limits.client), len(limits.address), len(limits.app)),
        "uv_guard_identities": len(ingest.uv_guard),
        "visit_tracker_visitors": len(ingest.visits),
        "recent_event_ids": len(ingest.recent_ids),
        "ua_cache_size": ingest.devices.cache_info().currsize,
        "ua_memo_size": ingest.devices.memo_info().currsize,
        "geo_cache_size": max(ingest.geo.cache_info().currsize, len(ingest.ips._kind)),
    }


async def test_per_visitor_tables_stay_within_their_settings(collector_client):
    client = await collector_client(**LIMITS, **BOUNDS)
    ingest = client.server.app[INGEST]
    most = dict.fromkeys(BOUNDS, 0)
    for i in range(VISITORS):  # each a new address and User-Agent: a bare pixel (no sn) with an event id
        event = {"k": f"app{i % 3}", "t": "pageview", "u": "https://www.example.edu/course/1", "id": f"ev-{i}"}
        headers = {"User-Agent": f"{DESKTOP} n/{i}", "X-Forwarded-For": f"203.0.{i >> 8}.{i & 255}"}
        resp = await client.get("/c", params=event, headers=headers)
        assert resp.status == 204, await resp.text()
        most = {name: max(most[name], entries) for name, entries in tables(ingest).items()}
    assert all(most[name] <= BOUNDS[name] for name in BOUNDS), most
    assert all(most[name] >= BOUNDS[name] // 2 for name in BOUNDS), f"a table never filled: {most}"
