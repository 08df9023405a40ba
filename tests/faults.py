"""Tools of the fault suite: a referee that counts acknowledgements, a Redis proxy."""

from __future__ import annotations

import asyncio
import http.client
import itertools
import json
import threading
import time
from dataclasses import dataclass, field

from conftest import free_port

UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"


@dataclass
class Tally:
    acked: int = 0  # events answered 2xx: each must be counted exactly once
    in_doubt: int = 0  # events sent whose answer never came (the process died meanwhile)
    refused: int = 0  # events answered 503 or never sent (connection refused)
    visitors: set = field(default_factory=set)  # IPs with at least one acknowledged event
    ids: set = field(default_factory=set)


class Referee:
    """Threads POSTing batches with known event ids to one or more collectors.

    It only counts what it can prove: 2xx answers are acknowledged; a request whose
    connection broke after it was sent is "in doubt" (the collector may or may not have
    journaled it before dying); a refused connection or a 503 is not acknowledged.
    """

    def __init__(self, ports: list[int], app: str = "ref", threads: int = 3, batch: int = 5, visitors: int = 40) -> None:
        self.ports = ports
        self.app = app
        self.batch = batch
        self.visitor_pool = [f"100.64.{i // 250}.{i % 250 + 1}" for i in range(visitors)]
        self.tally = Tally()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ids = itertools.count()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]

    def start(self) -> Referee:
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> Tally:
        self._stop.set()
        for t in self._threads:
            t.join(30)
        return self.tally

    def _run(self, index: int) -> None:
        conn = None
        port = self.ports[index % len(self.ports)]
        n = 0
        while not self._stop.is_set():
            n += 1
            ip = self.visitor_pool[(index * 7919 + n) % len(self.visitor_pool)]
            ids = [f"{index}-{next(self._ids)}" for _ in range(self.batch)]
            body = json.dumps([{"k": self.app, "t": "pageview", "u": "https://e.edu/x", "id": i, "sn": 1} for i in ids])
            sent = False
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("POST", "/c", body, {"User-Agent": UA, "X-Forwarded-For": ip, "Content-Type": "text/plain"})
                sent = True
                resp = conn.getresponse()
                resp.read()
                status = resp.status
            except (OSError, http.client.HTTPException):
                if conn is not None:
                    conn.close()
                conn = None
                with self._lock:
                    if sent:
                        self.tally.in_doubt += self.batch
                    else:
                        self.tally.refused += self.batch
                time.sleep(0.05)
                continue
            with self._lock:
                if 200 <= status < 300:
                    self.tally.acked += self.batch
                    self.tally.visitors.add(ip)
                    self.tally.ids.update(ids)
                else:
                    assert status == 503, status
                    self.tally.refused += self.batch
            time.sleep(0.002)


class RedisProxy:
    """A TCP proxy in front of Redis whose behaviour a test switches at will.

    modes: "pass"; "drop_answers" (requests reach Redis, its answers are thrown away:
    a flush that was applied but whose answer was lost); "refuse" (connections cut).
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.mode = "pass"
        self._loop = asyncio.new_event_loop()
        self._writers: set[asyncio.StreamWriter] = set()
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), daemon=True)
        self._thread.start()
        ready.wait(5)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def set_mode(self, mode: str) -> None:
        self.mode = mode
        if mode == "refuse":
            self._loop.call_soon_threadsafe(self._cut_all)

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _cut_all(self) -> None:
        for w in list(self._writers):
            w.close()

    def _serve(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", self.port))
        ready.set()
        self._loop.run_forever()

    async def _handle(self, reader, writer) -> None:
        if self.mode == "refuse":
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))

        async def pipe(src, dst, answers: bool) -> None:
            try:
                while data := await src.read(65536):
                    if answers and self.mode == "drop_answers":
                        continue
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer, False), pipe(up_reader, writer, True))
        self._writers.difference_update((writer, up_writer))
