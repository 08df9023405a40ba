"""GET /metrics (collector/web/metrics.py): Prometheus's text format, counts that add up
with several workers behind one port, labels from fixed sets only, and the read rule."""

from __future__ import annotations

import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

from prometheus_client.parser import text_string_to_metric_families

from collector.web.metrics import PUBLISH_EVERY
from tests import httputil as http

UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
PAGEVIEW = {"k": "app1", "t": "pageview", "u": "https://e.edu/", "sn": 1}


def parse(text: str) -> dict[str, list]:
    """{sample name: [(labels, value)]}; raises if the text is not clean exposition format."""
    samples: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        assert family.name.startswith("edubeacon_"), family.name
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def total(samples: dict[str, list], name: str, **match: str) -> float:
    return sum(value for labels, value in samples.get(name, []) if all(labels.get(k) == v for k, v in match.items()))


async def scrape(client, **headers) -> dict[str, list]:
    resp = await client.get("/metrics", headers=headers)
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return parse(await resp.text())


async def test_requests_events_and_reasons_are_counted(collector_client):
    client = await collector_client()
    headers = {"User-Agent": UA}
    for _ in range(3):
        assert (await client.post("/c", json=[PAGEVIEW, PAGEVIEW], headers=headers)).status == 204
    assert (await client.get("/c?" + urllib.parse.urlencode(PAGEVIEW), headers=headers)).status == 204
    # a bad event beside a good one: 400, one accepted, one rejected by its reason
    assert (await client.post("/c", json=[PAGEVIEW, {"k": "app1", "t": "nope"}], headers=headers)).status == 400
    assert (await client.post("/c", data=b"{not json", headers=headers)).status == 400
    # a client's own words never become a label value
    assert (await client.get("/c?k=app1&t=pageview&u=https://e.edu/&evil%22label=1", headers=headers)).status in (204, 400)

    samples = await scrape(client)
    assert total(samples, "edubeacon_hit_requests_total", outcome="ok", code="204") >= 4
    assert total(samples, "edubeacon_hit_requests_total", outcome="rejected") == 2
    assert total(samples, "edubeacon_hit_request_duration_seconds_count") == total(samples, "edubeacon_hit_requests_total")
    assert total(samples, "edubeacon_events_accepted_total") >= 8
    assert total(samples, "edubeacon_events_rejected_total", reason="malformed_json") == 1
    assert total(samples, "edubeacon_events_rejected_total") >= 2
    labels = {value for rows in samples.values() for row in rows for value in row[0].values()}
    assert not any('"' in value or "evil" in value for value in labels)
    assert {labels["worker"] for rows in samples.values() for labels, _ in rows} == {"1"}  # collector_client's first


async def test_flush_and_state_figures_are_there(collector_client):
    client = await collector_client()
    assert (await client.post("/c", json=[PAGEVIEW], headers={"User-Agent": UA})).status == 204
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        samples = await scrape(client)
        if total(samples, "edubeacon_flushes_total") >= 1:
            break
    assert total(samples, "edubeacon_events_flushed_total") == 1
    assert total(samples, "edubeacon_flush_duration_seconds_count") >= 1
    assert total(samples, "edubeacon_flush_last_success_timestamp_seconds") > time.time() - 60
    for name in ("edubeacon_flush_backlog_batches", "edubeacon_journal_bytes", "edubeacon_redis_errors_total",
                 "edubeacon_cache_entries", "edubeacon_state_entries", "edubeacon_http_connections_open",
                 "edubeacon_process_resident_memory_bytes"):
        assert name in samples, name
    assert total(samples, "edubeacon_cache_entries", cache="device") == 1
    assert total(samples, "edubeacon_cache_entries", cache="device_memo") == 1  # the version memo
    # Why parts were built in the flusher's thread, one sample per reason (store/build_worker.py).
    reasons = {labels["reason"] for labels, _ in samples["edubeacon_flush_thread_builds_total"]}
    assert reasons == {"behind", "starting", "busy", "late", "failed"}


async def test_metrics_are_closed_to_the_network_without_a_token(collector_client):
    client = await collector_client(host="0.0.0.0")
    assert (await client.get("/metrics")).status == 401
    tokened = await collector_client(host="0.0.0.0", api_token="s3cret")
    assert (await tokened.get("/metrics")).status == 401
    await scrape(tokened, Authorization="Bearer s3cret")


def test_two_workers_scrape_as_one_deployment(collector_factory):
    """Through the shared port, whichever worker answers: the counts of both, adding up
    to the hits sent, each worker's own series labelled — scraped during the traffic
    too, where every answer must parse and never count more than was sent."""
    collector = collector_factory(workers=2)
    try:
        _scrape_two_workers(collector)
    finally:
        # SIGTERM: the supervisor stops its workers (a SIGKILL would leave them running).
        collector.stop_cleanly()


def _scrape_two_workers(collector) -> None:
    started = [0]  # events whose request has started: an upper bound at any moment
    lock = threading.Lock()

    def send(i: int) -> int:
        with lock:
            started[0] += 5
        status, _ = http.post(collector.base_url + "/c", [PAGEVIEW] * 5,
                              {"User-Agent": UA, "X-Forwarded-For": f"100.64.9.{i % 250}"})
        assert status == 204
        return 5

    def scraped() -> dict[str, list]:
        status, _, body = http.request("GET", collector.base_url + "/metrics")
        assert status == 200
        return parse(body.decode())

    # Both workers up (each has published its snapshot) before the traffic, so the
    # kernel can spread it over both.
    collector.wait_for(lambda: len(scraped()["edubeacon_metrics_snapshot_age_seconds"]) == 2, timeout=20)
    during: list[float] = []
    sending = threading.Event()
    sending.set()

    def scrape_while_sending() -> None:
        while sending.is_set():
            accepted = total(scraped(), "edubeacon_events_accepted_total")
            with lock:
                assert accepted <= started[0]
            during.append(accepted)

    scraper = threading.Thread(target=scrape_while_sending)
    scraper.start()
    try:
        with ThreadPoolExecutor(8) as pool:  # short connections: the kernel spreads them over both workers
            sent = sum(pool.map(send, range(160)))
    finally:
        sending.clear()
        scraper.join(30)
    assert during, "no scrape ran during the traffic"

    # The other worker's figures are as of its last snapshot (at most PUBLISH_EVERY old):
    # a second after the traffic, every scrape — whichever worker answers — has them all.
    collector.wait_for(lambda: all(total(scraped(), "edubeacon_events_accepted_total") == sent for _ in range(4)),
                       timeout=20)
    time.sleep(PUBLISH_EVERY)
    for _ in range(6):  # new connections: answered by either worker, the same totals
        samples = scraped()
        assert total(samples, "edubeacon_events_accepted_total") == sent
        assert total(samples, "edubeacon_hit_requests_total", code="204") == sent // 5
        workers = {labels["worker"] for labels, _ in samples["edubeacon_events_accepted_total"]}
        assert workers == {"0", "1"}, (samples["edubeacon_metrics_snapshot_age_seconds"], collector.log()[-3000:])
        assert all(value > 0 for _, value in samples["edubeacon_events_accepted_total"]), collector.log()[-3000:]


async def test_the_guards_figures_show_their_state_and_refusals(collector_client):
    # Limits on (conftest turns them off): one client past its burst, one address's visitors past the guard.
    client = await collector_client(rate_client=1.0, rate_client_burst=2, uv_guard_per_minute=2)
    flooder = {"User-Agent": UA, "X-Forwarded-For": "203.0.113.9"}
    codes = [(await client.get("/c?" + urllib.parse.urlencode(PAGEVIEW), headers=flooder)).status for _ in range(5)]
    assert codes.count(429) == 3
    for n in range(4):  # four User-Agents behind one address: two visitors judged new, two suspect
        headers = {"User-Agent": f"{UA} v{n}", "X-Forwarded-For": "198.51.100.7"}
        assert (await client.get("/c?" + urllib.parse.urlencode(PAGEVIEW), headers=headers)).status == 204
    samples = await scrape(client)
    assert total(samples, "edubeacon_guard_entries", guard="rate_limit_client") == 5  # 1 flooder + 4 UAs
    assert total(samples, "edubeacon_guard_entries", guard="uv_guard") >= 2
    assert total(samples, "edubeacon_events_rejected_total", reason="rate_limited_client") == 3
    assert total(samples, "edubeacon_events_flagged_total", reason="suspect_visitor") == 2
    assert total(samples, "edubeacon_resent_events_total", outcome="duplicate") == 0


async def test_the_snapshot_file_is_written_off_the_event_loop(collector_client):
    """Writing the snapshot and renaming it over the last one took milliseconds of the hit
    loop each second (issue 17): the figures are read on the loop, the file is written in
    a thread, and it holds them."""
    import orjson

    from collector.web.appkeys import METRICS_BOARD

    client = await collector_client()
    board = client.server.app[METRICS_BOARD]
    written_on: list[int] = []
    write = board._write

    def noting_write(body: bytes) -> None:
        written_on.append(threading.get_ident())
        write(body)

    board._write = noting_write
    await board._publish()
    assert written_on and threading.get_ident() not in written_on
    published = orjson.loads(board._path(board.worker).read_bytes())
    assert published["at"] > time.time() - 60 and published["families"]
