"""Do heavy reads stall hits? `python -m bench.read_stall [--pages 50000] [--readers 4] [--rounds 3]`

A real collector process (fast path, 127.0.0.1, so the read API is open) over a real
Redis holding one app with `--pages` distinct pages of about 2 KB each (long URLs, as
the protocol allows) in today's day bucket. One thread sends hits (GET /c) one after
another on a keep-alive connection and times each; meanwhile `--readers` threads ask
`/api/stats?breakdown=page` at once, `--rounds` times. Printed: hit latency p50/p99/max
with no reads and during the reads, the read answers' sizes and times, and the
collector's RSS before, at its peak (VmHWM) and after.
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from bench import procstat
from bench.servers import HOST, RedisServer, collector, free_port
from collector.store import keys
from collector.store.buckets import Calendar

APP = "readbench"
UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
PAGE_BYTES = 2000


def fill(redis: RedisServer, pages: int) -> None:
    calendar = Calendar("Asia/Shanghai")
    today = calendar.bucket_at("day", calendar.local(time.time())).id
    key = keys.dimension(APP, "day", today, "page")
    pad = "x" * PAGE_BYTES
    pipe = redis.client.pipeline(transaction=False)
    for i in range(pages):
        url = f"https://www.example.edu.cn/course/{i:06d}?ref={pad}"[:PAGE_BYTES]
        pipe.hset(key, url, 1 + i % 97)
        if i % 5000 == 4999:
            pipe.execute()
    pipe.sadd(keys.APPS, APP)
    pipe.execute()


class HitTimer(threading.Thread):
    """Sends hits back to back and records each one's latency (ms) and status."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.latencies: list[float] = []
        self.statuses: dict[int, int] = {}
        self.running = True
        self.lock = threading.Lock()

    def run(self) -> None:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=30)
        n = 0
        while self.running:
            n += 1
            start = time.perf_counter()
            conn.request("GET", f"/c?k={APP}&t=pageview&sn=1&u=https://www.example.edu.cn/hit/{n % 50}", headers={"User-Agent": UA})
            answer = conn.getresponse()
            answer.read()
            elapsed = (time.perf_counter() - start) * 1000
            with self.lock:
                self.latencies.append(elapsed)
                self.statuses[answer.status] = self.statuses.get(answer.status, 0) + 1
            time.sleep(0.002)

    def take(self) -> list[float]:
        with self.lock:
            taken, self.latencies = self.latencies, []
        return taken


def percentiles(ms: list[float]) -> str:
    if not ms:
        return "no hits"
    ordered = sorted(ms)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"{len(ms)} hits: p50 {statistics.median(ordered):.2f} ms, p99 {p99:.2f} ms, max {ordered[-1]:.2f} ms"


def read_once(url: str, out: list) -> None:
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=300) as answer:
            body = answer.read()
            out.append((answer.status, len(body), time.perf_counter() - start))
    except urllib.error.HTTPError as err:
        out.append((err.code, len(err.read()), time.perf_counter() - start))


def rss(pid: int) -> tuple[float, float]:
    kb = procstat.status_kb(pid)
    return kb["VmRSS"] / 1024, kb["VmHWM"] / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=50_000)
    parser.add_argument("--readers", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--query", default="breakdown=page", help="what the readers ask, besides app=")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        redis = RedisServer(work, cpus=None)
        server = collector(free_port(), 1, redis.url, None, work / "collector.log", work / "data")
        try:
            fill(redis, args.pages)
            server.start()
            pid = server.workers()[0]
            timer = HitTimer(server.port)
            timer.start()
            time.sleep(3)
            timer.take()  # warm-up
            time.sleep(5)
            print(f"no reads:        {percentiles(timer.take())}")
            before, _ = rss(pid)
            url = f"{server.url}/api/stats?app={APP}&{args.query}"
            answers: list = []
            for _ in range(args.rounds):
                readers = [threading.Thread(target=read_once, args=(url, answers)) for _ in range(args.readers)]
                for r in readers:
                    r.start()
                for r in readers:
                    r.join()
            during = timer.take()
            after, peak = rss(pid)
            timer.running = False
            timer.join()
            print(f"during reads:    {percentiles(during)}")
            sizes = sorted({(status, size) for status, size, _ in answers})
            print(f"reads: {len(answers)} ({args.readers} at once x {args.rounds}), answers (status, bytes) {sizes}, "
                  f"slowest {max(t for *_, t in answers):.2f} s")
            print(f"collector RSS: {before:.0f} MB before, peak {peak:.0f} MB, {after:.0f} MB after; hit statuses {timer.statuses}")
        finally:
            server.stop()
            redis.stop()


if __name__ == "__main__":
    main()
