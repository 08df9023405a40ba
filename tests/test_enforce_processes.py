"""The registry enforced in real collector processes sharing one real Redis."""

from __future__ import annotations

import asyncio
import http.client
import json
import secrets
import time
import urllib.parse

import httputil as http_util
import pytest
from test_enforce import PAGE, register
from test_registry_http import admin_token, call

pytestmark = pytest.mark.slow

DESKTOP = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"


def hit(collector, key: str, **headers) -> tuple[int, dict | None]:
    return http_util.post(collector.base_url + "/c", [{"k": key, "t": "pageview", "sn": 1, "u": PAGE}],
                          {"User-Agent": DESKTOP, **headers})


def test_a_key_revoked_through_one_collector_stops_counting_on_both_within_5_s(collector_factory, redis_url, tmp_path):
    key = asyncio.run(register(redis_url, "zjer", "activate"))[1]
    first, second = (collector_factory(registry="enforce", data_dir=tmp_path / name) for name in ("first", "second"))
    assert hit(first, key)[0] == 204 and hit(second, key)[0] == 204
    token = admin_token(redis_url)

    status, _, revoked = call(first, "POST", "/api/admin/platforms/zjer/revoke", {"note": "停止服务"}, token=token)
    assert status == 200 and revoked["state"] == "revoked"
    started = time.monotonic()
    pending = {first.base_url: first, second.base_url: second}
    took = {}
    while pending and time.monotonic() - started < 5:
        for url, collector in list(pending.items()):
            status, body = hit(collector, key)
            if status == 400:
                assert [e["reason"] for e in body["errors"]] == ["revoked_app"]
                took[url] = time.monotonic() - started
                del pending[url]
        time.sleep(0.05)
    assert not pending, f"still counting a revoked key after 5 s: {list(pending)}"
    # Revoked stays revoked: no later hit of either process counts it.
    assert hit(first, key)[0] == 400 and hit(second, key)[0] == 400
    print(f"\nrevocation reached the hit path after {took}")


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def send_random_keys(collector, count: int) -> None:
    """`count` hits, each with its own random app key: POST batches of 100 and GET pixels."""
    connection = http.client.HTTPConnection("127.0.0.1", collector.port, timeout=10)
    headers = {"User-Agent": DESKTOP, "Content-Type": "text/plain"}
    posted = count // 2
    for start in range(0, posted, 100):
        batch = [{"k": secrets.token_urlsafe(24), "t": "pageview", "sn": 1, "u": PAGE} for _ in range(min(100, posted - start))]
        connection.request("POST", "/c", json.dumps(batch), headers)
        answer = connection.getresponse()
        body = json.loads(answer.read())
        assert answer.status == 400 and {e["reason"] for e in body["errors"]} == {"unknown_app"}
    for _ in range(count - posted):
        query = urllib.parse.urlencode({"k": secrets.token_urlsafe(24), "t": "pageview", "u": PAGE})
        connection.request("GET", "/c?" + query, headers=headers)
        answer = connection.getresponse()
        answer.read()
        assert answer.status == 400
    connection.close()


def settled_key_count(rds, collector) -> int:
    """Redis's key count once this collector's flusher has written everything."""
    time.sleep(0.6)  # three flush intervals
    return rds.dbsize()


def test_random_app_keys_leave_memory_and_redis_flat(collector_factory, redis_url, rds):
    collector = collector_factory(registry="enforce")
    pid = collector.proc.pid
    send_random_keys(collector, 2_000)  # warm up: caches, the (unregistered) buckets, the sample
    keys_before, rss_before = settled_key_count(rds, collector), rss_kb(pid)

    send_random_keys(collector, 10_000)
    keys_after, rss_after = settled_key_count(rds, collector), rss_kb(pid)

    # At most a new minute's (and hour's) bucket of (unregistered) and its sequence markers.
    assert keys_after - keys_before <= 6, (keys_before, keys_after)
    assert rss_after - rss_before < 4096, f"RSS grew {rss_after - rss_before} KB for 10,000 random keys"
    totals = collector.stats("(unregistered)")["totals"]
    assert totals["rejected"] == {"unknown_app": 12_000} and totals["pv"] == 0
    status, apps = http_util.get_json(collector.base_url + "/api/apps")
    assert status == 200 and apps == {"apps": []}
    print(f"\nkeys {keys_before} -> {keys_after}; RSS {rss_before} -> {rss_after} KB")
