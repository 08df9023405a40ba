"""The bench waits for a collector's queued batches before it measures the next run.

Session 15's full run read `stored` 1.04 for a run that followed the warm-up: settling
waited only for Redis's count to stand still for 1.3 s, and a batch still queued behind a
slow flush landed inside the measured run. Here a real collector (two workers) answers
hits while Redis refuses writes for a few seconds (CLIENT PAUSE WRITE): the count stands
still at 0 with every batch queued, and settling must outlast the pause."""

from __future__ import annotations

import shutil
import socket
import time

import pytest

from bench import runner, servers, traffic
from bench.ippool import load_pool

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")

PAUSE_S = 4


def _send(port: int, requests: list[bytes]) -> None:
    with socket.create_connection((servers.HOST, port)) as conn:
        for data in requests:
            conn.sendall(data)
            answer = b""
            while b"\r\n\r\n" not in answer:
                answer += conn.recv(65536)
            assert answer.startswith(b"HTTP/1.1 2"), answer[:200]


def test_settling_waits_for_batches_queued_behind_a_stalled_flush(tmp_path):
    bench = runner.Bench(runner.MODES["smoke"], tmp_path)
    bench.redis = servers.RedisServer(tmp_path, cpus=None)
    collector = bench.server("collector", workers=2)
    collector.start()
    try:
        hits = [traffic.http_bytes(r) for r in
                traffic.realistic(traffic.Population(load_pool(), 200, seed=3), 60, "get", int(time.time() * 1000))]
        bench.redis.client.execute_command("CLIENT", "PAUSE", PAUSE_S * 1000, "WRITE")
        paused_at = time.monotonic()
        for start in range(0, len(hits), 6):  # new connections: both workers answer some
            _send(collector.port, hits[start:start + 6])
        stored = bench.settle(collector, 0, limit=30)
        assert time.monotonic() - paused_at >= PAUSE_S
        assert stored == runner.count_events(bench.redis) == len(hits)
    finally:
        collector.stop()
        bench.close()
