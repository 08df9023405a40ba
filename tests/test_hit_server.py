"""The hit fast path (collector/web/hit_server.py) at the byte level, over real sockets.

Answers of the fast path carry no `Server` header; aiohttp's do ("Python/… aiohttp/…").
That is how these tests tell which layer answered: the fast path must serve the common
hit shapes itself and hand everything else to aiohttp, mid-connection, without losing
or reordering a request.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time

import httputil as http
import orjson
import pytest
from conftest import HitTestServer, launch_collector
from test_ingest import DESKTOP, flush, pv, stats

import collector.web.hit_server
from collector.web.app import create_app
from collector.web.hit_server import HitRunner

HIT = "GET /c?k=app1&t=pageview&u=https%3A%2F%2Fwww.example.edu%2F HTTP/1.1\r\nHost: x\r\nUser-Agent: " + DESKTOP + "\r\n\r\n"


@pytest.fixture
def http_layer() -> str:
    return "fast path"  # (overrides conftest's: these tests are about the fast path)


class Conn:
    """One raw client connection to the test server."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, client) -> Conn:
        return cls(*await asyncio.open_connection(client.server.host, client.server.port))

    async def send(self, data: str | bytes) -> None:
        self.writer.write(data.encode() if isinstance(data, str) else data)
        await self.writer.drain()

    async def answer(self) -> tuple[int, dict[str, str], bytes]:
        """The next response: status, headers (lower-cased names), body."""
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 5)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        body = await asyncio.wait_for(self.reader.readexactly(length), 5) if length else b""
        return status, headers, body

    async def closed(self) -> bool:
        return await asyncio.wait_for(self.reader.read(), 5) == b""

    def close(self) -> None:
        self.writer.close()


async def counted_pv(client) -> int:
    await flush(client)
    return (await stats(client))["totals"]["pv"]


def layer(headers: dict[str, str]) -> str:
    return "aiohttp" if "aiohttp" in headers.get("server", "") else "fast"


def post(body: bytes, extra: str = "") -> str:
    return f"POST /c HTTP/1.1\r\nHost: x\r\nUser-Agent: {DESKTOP}\r\nContent-Length: {len(body)}\r\n{extra}\r\n" + body.decode()


async def test_pipelined_hits_are_answered_in_order_by_the_fast_path(collector_client):
    client = await collector_client()
    conn = await Conn.open(client)
    await conn.send(HIT * 20 + HIT.replace("/c?", "/c?img=1&"))
    answers = [await conn.answer() for _ in range(21)]
    assert [a[0] for a in answers] == [204] * 20 + [200]
    assert {layer(h) for _, h, _ in answers} == {"fast"}
    assert answers[-1][2].startswith(b"GIF89a") and answers[-1][1]["content-type"] == "image/gif"
    assert all(h["access-control-allow-origin"] == "*" and "date" in h for _, h, _ in answers)
    conn.close()
    assert await counted_pv(client) == 21


async def test_a_request_cut_into_pieces_is_answered_once(collector_client):
    client = await collector_client()
    conn = await Conn.open(client)
    body = orjson.dumps([pv(), pv()])
    request = (post(body) + HIT).encode()
    for i in range(0, len(request), 7):  # 7-byte writes: heads and body split anywhere
        await conn.send(request[i:i + 7])
        await asyncio.sleep(0)
    assert [(await conn.answer())[0] for _ in range(2)] == [204, 204]
    conn.close()
    assert await counted_pv(client) == 3


async def test_other_requests_hand_the_connection_to_aiohttp_mid_stream(collector_client):
    client = await collector_client()
    conn = await Conn.open(client)
    # a hit, a health check, a hit, in one write: the first is the fast path's, the rest
    # (from the health check's first byte on) aiohttp's, in order.
    await conn.send(HIT + "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" + HIT)
    first, health, last = [await conn.answer() for _ in range(3)]
    assert (first[0], layer(first[1])) == (204, "fast")
    assert (health[0], layer(health[1]), orjson.loads(health[2])) == (200, "aiohttp", {"status": "ok"})
    assert (last[0], layer(last[1])) == (204, "aiohttp")
    conn.close()
    assert await counted_pv(client) == 2


async def test_a_client_that_reads_late_is_paused_then_handed_over_intact(collector_client):
    """Answers backing up pause reading; a hand-over in that state must leave the connection
    being read, or aiohttp never sees the requests after it."""
    client = await collector_client()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((client.server.host, client.server.port))
    conn = Conn(*await asyncio.open_connection(sock=sock))
    server = client.server.runner.server  # the HitServer
    while not server.connections:
        await asyncio.sleep(0.01)
    (fast,) = server.connections
    # Tiny server-side buffers: any answer the client has not read yet pauses reading.
    fast.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    fast.transport.set_write_buffer_limits(high=1024)
    paused_at_hand_over = []
    hand_over = server.hand_over
    server.hand_over = lambda connection, data: (
        paused_at_hand_over.append(not connection.transport.is_reading()), hand_over(connection, data)
    )
    hits = 2000
    conn.writer.write((HIT * hits + "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").encode())  # read only later
    await asyncio.sleep(0.3)
    answers = [await conn.answer() for _ in range(hits + 1)]
    assert paused_at_hand_over == [True]  # the case under test did happen
    assert [a[0] for a in answers[-2:]] == [204, 200] and layer(answers[-1][1]) == "aiohttp"
    await conn.send(HIT)  # the connection is still read: aiohttp answers the next request
    assert (await conn.answer())[0] == 204
    conn.close()
    assert await counted_pv(client) == hits + 1


@pytest.mark.parametrize("request_text, status", [
    ("GET /c?k=app1&t=pageview&u=https%3A%2F%2Fa.edu%2F HTTP/1.0\r\nUser-Agent: x\r\n\r\n", 204),  # HTTP/1.0
    ("POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
     "2a\r\n" + '{"k":"app1","t":"pageview","u":"https://a"}'[:42] + "\r\n0\r\n\r\n", 400),  # chunked
    ("POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n{}]", 400),  # two lengths
    ("PUT /c HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 405),
    ("GET /c?k=app1 HTTP/1.1\nHost: x\n\n", 400),  # bare LF line ends: aiohttp decides
    ("GET /c HTTP/1.1\r\nHost: x\r\nX-Big: " + "a" * 9000 + "\r\n\r\n", 400),  # head over MAX_HEAD
])
async def test_unusual_requests_are_answered_by_aiohttp(collector_client, request_text, status):
    client = await collector_client()
    conn = await Conn.open(client)
    await conn.send(request_text)
    got, headers, _ = await conn.answer()
    assert layer(headers) == "aiohttp"
    assert got == status or (status == 400 and 400 <= got < 500), (got, status)
    conn.close()


async def test_chunked_post_is_counted_through_aiohttp(collector_client):
    client = await collector_client()
    conn = await Conn.open(client)
    body = orjson.dumps(pv())
    head = f"POST /c HTTP/1.1\r\nHost: x\r\nUser-Agent: {DESKTOP}\r\nTransfer-Encoding: chunked\r\n\r\n"
    await conn.send(head + f"{len(body):x}\r\n{body.decode()}\r\n0\r\n\r\n")
    status, headers, _ = await conn.answer()
    assert (status, layer(headers)) == (204, "aiohttp")
    conn.close()
    assert await counted_pv(client) == 1


async def test_connection_close_is_honoured(collector_client):
    client = await collector_client()
    conn = await Conn.open(client)
    await conn.send(HIT.replace("Host: x\r\n", "Host: x\r\nConnection: close\r\n"))
    status, headers, _ = await conn.answer()
    assert (status, layer(headers), headers["connection"]) == (204, "fast", "close")
    assert await conn.closed()


async def test_a_body_over_the_limit_is_413_without_reading_it(collector_client):
    client = await collector_client(max_body_bytes=100)
    conn = await Conn.open(client)
    await conn.send("POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n")
    status, headers, body = await conn.answer()
    assert (status, layer(headers)) == (413, "fast")
    assert orjson.loads(body)["errors"][0]["reason"] == "body_too_large"
    assert await conn.closed()  # the unread body cannot be skipped safely
    await flush(client)
    assert (await stats(client, app="(unknown)"))["totals"]["rejected"] == {"body_too_large": 1}


async def test_every_forwarded_for_line_is_read_in_order(collector_client, test_networks):
    """Two proxies that each add a header line: the client is the last untrusted hop."""
    client = await collector_client()
    conn = await Conn.open(client)
    hangzhou = next(n for n in test_networks if n[3] == "330100")[0].split("/")[0].rsplit(".", 1)[0] + ".7"
    await conn.send(HIT.replace("Host: x\r\n", f"Host: x\r\nX-Forwarded-For: 203.0.113.9\r\nX-Forwarded-For: {hangzhou}\r\n"))
    assert (await conn.answer())[0] == 204
    conn.close()
    await flush(client)
    cities = (await stats(client, breakdown="region"))["breakdowns"]["region"]["city"]
    assert [row["value"] for row in cities] == ["CN/330000/330100"]


GARBAGE = (
    b"\x00\xff" * 50 + b"\r\n\r\n",
    b"GET /c?%%%%=%ZZ&k=\xff\xfe HTTP/1.1\r\nUser-Agent: \xff\xfe\r\n\r\n",
    b"POST /c HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
    b"POST /c HTTP/1.1\r\nContent-Length: 2\r\n\r\n\xff\xff",
    b"GET /c HTTP/1.1\r\n\r\n",
    b"OPTIONS /c HTTP/1.1\r\nContent-Length: 4\r\n\r\nabcd",
    # a User-Agent with a UTF-8-encoded lone surrogate and an invalid byte
    b"GET /c?k=app1&t=pageview&u=https%3A%2F%2Fa.edu%2F HTTP/1.1\r\nUser-Agent: Mozilla/5.0 \xed\xa0\x80\xff\r\n\r\n",
)


@pytest.mark.parametrize("first", ["", "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"], ids=["fast path", "after a hand-over"])
async def test_garbage_gets_no_5xx_and_the_server_keeps_serving(collector_client, first):
    client = await collector_client()
    for junk in GARBAGE:
        conn = await Conn.open(client)
        if first:
            await conn.send(first)
            assert (await conn.answer())[0] == 200
        await conn.send(junk)
        try:
            status, _, _ = await conn.answer()
        except (asyncio.IncompleteReadError, ConnectionResetError):
            status = None  # closed without an answer: acceptable for garbage
        assert status is None or status < 500, (junk, status)
        conn.close()
    conn = await Conn.open(client)
    await conn.send(HIT)
    assert (await conn.answer())[0] == 204
    conn.close()


async def test_idle_connections_are_closed_on_shutdown(collector_client):
    client = await collector_client()
    conn = await Conn.open(client)
    await conn.send(HIT)
    assert (await conn.answer())[0] == 204
    await client.server.close()
    assert await conn.closed()


# ---- limits: deadlines, the connection cap, garbage ------------------------------------
# The clock tick is one second: a deadline of T seconds closes between T and T + 1.


async def drip(conn: Conn, data: bytes, every: float, limit: float) -> tuple[float, bytes]:
    """Send `data` a byte every `every` seconds until the server closes the connection:
    (seconds from the first byte to the close, what the server sent)."""
    start = time.monotonic()
    received = b""
    for byte in data:
        try:
            conn.writer.write(bytes([byte]))
            await conn.writer.drain()
            chunk = await asyncio.wait_for(conn.reader.read(65536), every)
        except TimeoutError:
            chunk = None
        except ConnectionError:
            chunk = b""
        if chunk == b"":
            return time.monotonic() - start, received
        received += chunk or b""
        assert time.monotonic() - start < limit, f"still open after {limit} s of dripping"
    raise AssertionError("the whole request was sent a byte at a time and the connection is still open")


async def seconds_until_closed(conn: Conn, limit: float) -> float:
    start = time.monotonic()
    assert await asyncio.wait_for(conn.reader.read(), limit) == b""
    return time.monotonic() - start


async def http_counters(client) -> dict:
    resp = await client.get("/api/collector")
    return (await resp.json())["http"]


class AiohttpOnlyTestServer(HitTestServer):
    """As `collector serve --access-log` runs: no fast path, the same limits."""

    async def _make_runner(self, **kwargs) -> HitRunner:
        return HitRunner(self.app, fast_path=False, **kwargs)


@pytest.fixture
async def limited_client(aiohttp_client, make_settings):
    """Factory: (fast_path, **settings) -> a test client of the collector with those limits."""

    async def start(fast_path: bool = True, **changes):
        app = create_app(make_settings(**changes), worker=7)
        return await aiohttp_client(HitTestServer(app) if fast_path else AiohttpOnlyTestServer(app))

    return start


SERVERS = pytest.mark.parametrize("fast_path", [True, False], ids=["fast path", "aiohttp only (--access-log)"])


@SERVERS
async def test_a_head_sent_a_byte_at_a_time_is_closed_at_its_deadline(limited_client, fast_path):
    """The deadline runs from the head's first byte: each byte does not buy more time."""
    client = await limited_client(fast_path, request_timeout=1.0, keepalive_timeout=30.0)
    conn = await Conn.open(client)
    elapsed, answer = await drip(conn, HIT.encode(), every=0.2, limit=6)
    assert answer == b"" and 0.8 <= elapsed <= 3.0, (elapsed, answer)
    assert (await http_counters(client))["timed_out"] == {"head": 1}


@SERVERS
async def test_a_body_sent_a_byte_at_a_time_is_closed_at_its_deadline(limited_client, fast_path, caplog):
    client = await limited_client(fast_path, request_timeout=1.0, keepalive_timeout=30.0)
    conn = await Conn.open(client)
    await conn.send("POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 200\r\n\r\n")
    elapsed, answer = await drip(conn, orjson.dumps([pv()] * 3), every=0.2, limit=6)
    assert answer == b"" and 0.8 <= elapsed <= 3.0, (elapsed, answer)
    assert (await http_counters(client))["timed_out"] == {"body": 1}
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]


@pytest.mark.parametrize("first", [HIT, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"], ids=["fast path", "after a hand-over"])
async def test_an_idle_keep_alive_connection_is_closed_after_keepalive_timeout(limited_client, first):
    client = await limited_client(keepalive_timeout=1.0, request_timeout=30.0)
    conn = await Conn.open(client)
    await conn.send(first)
    status, headers, _ = await conn.answer()
    assert status in (200, 204) and layer(headers) == ("fast" if first == HIT else "aiohttp")
    assert 0.8 <= await seconds_until_closed(conn, 5) <= 3.0


@pytest.mark.parametrize("stuck", [
    "GET /healthz HTTP/1.1\r\nHost: x\r\nUser-Agent: " + DESKTOP + "\r\n\r\n",  # mid-head
    "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + "1\r\na\r\n" * 40,  # mid-body
    "POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 200\r\n\r\n" + "a" * 200,  # mid-body
], ids=["mid-head", "mid-body, chunked", "mid-body, Content-Length"])
async def test_a_handed_over_connection_stuck_mid_request_is_closed_at_its_deadline(limited_client, stuck, caplog):
    """aiohttp itself waits for the rest of a head or body without end."""
    client = await limited_client(request_timeout=1.0, keepalive_timeout=30.0)
    conn = await Conn.open(client)
    await conn.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert layer((await conn.answer())[1]) == "aiohttp"  # aiohttp's connection from here on
    head, _, body = stuck.partition("\r\n\r\n")
    if body:  # the head at once, then the body a byte at a time
        await conn.send(head + "\r\n\r\n")
    elapsed, answer = await drip(conn, (body or head).encode(), every=0.2, limit=6)
    assert answer == b"" and 0.8 <= elapsed <= 3.0, (elapsed, answer)
    assert (await http_counters(client))["timed_out"] == {"body" if body else "head": 1}
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]


async def test_at_max_connections_the_longest_idle_connection_makes_room(limited_client):
    client = await limited_client(max_connections=5, request_timeout=30.0, keepalive_timeout=30.0)
    idle = []
    for _ in range(5):  # keep-alive connections, idle after one hit each
        idle.append(await Conn.open(client))
        await idle[-1].send(HIT)
        assert (await idle[-1].answer())[0] == 204
    newcomer = await Conn.open(client)
    await newcomer.send(HIT)
    assert (await newcomer.answer())[0] == 204
    newcomer.close()
    closed = 0
    for conn in idle:
        try:
            closed += await asyncio.wait_for(conn.reader.read(), 0.3) == b""
        except TimeoutError:
            pass
    assert closed == 1
    counters = await http_counters(client)
    assert (counters["evicted_idle_connections"], counters["refused_connections"]) == (1, 0)
    assert await counted_pv(client) == 6


async def test_at_max_connections_with_none_idle_new_ones_are_refused_until_deadlines_pass(limited_client):
    client = await limited_client(max_connections=5, request_timeout=1.0, keepalive_timeout=30.0)
    held = []
    for _ in range(5):  # each in the middle of a head
        held.append(await Conn.open(client))
        await held[-1].send(HIT[:30])
    await asyncio.sleep(0.1)
    extra = await Conn.open(client)
    status, headers, body = await extra.answer()
    assert (status, orjson.loads(body)) == (503, {"error": "too_many_connections"}) and headers["connection"] == "close"
    assert await extra.closed()
    start = time.monotonic()
    while True:  # a new client is served once the held heads' deadline has passed
        conn = await Conn.open(client)
        await conn.send(HIT)
        try:
            status = (await conn.answer())[0]
        except (asyncio.IncompleteReadError, ConnectionError):
            status = None
        conn.close()
        if status == 204:
            break
        assert status == 503 and time.monotonic() - start < 3.0, status
        await asyncio.sleep(0.2)
    for conn in held:
        assert await conn.closed()
    counters = await http_counters(client)
    assert counters["refused_connections"] >= 2 and counters["timed_out"] == {"head": 5}
    assert counters["max_connections"] == 5 and counters["evicted_idle_connections"] == 0
    assert await counted_pv(client) == 1


MALFORMED = {
    b"\x00\xff" * 10 + b"\r\n\r\n": "bad_http_method",
    b"GET /c HTTP/1.1\nHost: x\r\n\r\n": "bad_status_line",
    b"GET /c HTTP/1.1\r\nHost: x\n\n": "bad_http_message",
    b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n": "bad_http_message",
    b"GET /c HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n": "line_too_long",
}


async def test_malformed_requests_are_counted_by_reason_and_summarised_not_logged_each(limited_client, caplog, monkeypatch):
    monkeypatch.setattr(collector.web.hit_server, "LOG_EVERY", 0.5, raising=False)  # a summary every tick
    caplog.set_level(logging.DEBUG)
    client = await limited_client()
    rounds = 20
    for _ in range(rounds):
        for request in MALFORMED:
            conn = await Conn.open(client)
            await conn.send(request)
            status, headers, _ = await conn.answer()
            assert (status, layer(headers)) == (400, "aiohttp")
            conn.close()
    await asyncio.sleep(1.5)  # a tick or two: the summary
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    records = [r for r in caplog.records if r.name in ("aiohttp.server", "collector.http")]
    assert [r.getMessage() for r in records] == [
        f"{rounds * len(MALFORMED)} malformed requests in the last 0.5 s, answered 400 "
        f"(reasons: bad_http_message {2 * rounds}, bad_http_method {rounds}, bad_status_line {rounds}, line_too_long {rounds})"
    ]
    expected = {}
    for reason in MALFORMED.values():
        expected[reason] = expected.get(reason, 0) + rounds
    assert (await http_counters(client))["malformed_requests"] == expected


def test_a_malformed_request_flood_leaves_the_log_quiet_in_a_real_process(collector_factory):
    collector = collector_factory()
    before = len(collector.log())
    requests = list(MALFORMED) * 60
    for request in requests:
        with socket.create_connection(("127.0.0.1", collector.port)) as sock:
            sock.sendall(request)
            assert sock.recv(12)[-3:] == b"400"
    grown = collector.log()[before:]
    assert "Traceback" not in grown and len(grown) < 1000, grown[:3000]
    status, body = http.get_json(collector.base_url + "/api/collector")
    assert status == 200 and sum(body["http"]["malformed_requests"].values()) == len(requests)


async def test_held_connections_at_the_open_file_limit_lock_nobody_out_for_long(collector_factory):
    """300 connections dripping a byte every half second into a process allowed 300 files:
    past the cap they are refused; the rest are closed at their head deadline, and then a
    new client is served (and its hit counted)."""
    collector = collector_factory(open_files=300, request_timeout=2)
    held = [await asyncio.open_connection("127.0.0.1", collector.port) for _ in range(300)]
    stop = asyncio.Event()

    async def keep_dripping() -> None:
        for byte in HIT.encode() * 2:
            for _, writer in held:
                if not writer.is_closing():
                    writer.write(bytes([byte]))
            await asyncio.sleep(0.5)
            if stop.is_set():
                return

    dripping = asyncio.create_task(keep_dripping())
    start = time.monotonic()
    served_after = None
    while time.monotonic() - start < 8:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", collector.port), 1)
            writer.write(HIT.encode())
            answer = await asyncio.wait_for(reader.read(12), 1)
            writer.close()
        except (TimeoutError, ConnectionError):
            answer = b""
        if answer == b"HTTP/1.1 204":
            served_after = time.monotonic() - start
            break
        await asyncio.sleep(0.3)
    stop.set()
    await dripping
    for _, writer in held:
        writer.close()
    assert served_after is not None and served_after <= 2 + 2.5, f"no new client served in 8 s:\n{collector.log()[-3000:]}"
    collector.wait_for(lambda: collector.stats("app1")["totals"]["pv"] == 1)
    _, body = http.get_json(collector.base_url + "/api/collector")
    assert body["http"]["max_connections"] == 300 - 64
    assert body["http"]["refused_connections"] + body["http"]["evicted_idle_connections"] > 0
    assert body["http"]["timed_out"]["head"] > 0
    log = collector.log()
    assert "max_connections 4096 lowered to 236" in log and log.count("connection limit reached") <= 2


BARE_LF = {  # how HIT's head is spoiled; another HIT follows in the same read
    "\\n\\n at the end": lambda head: head.replace("\r\n\r\n", "\n\n"),
    "\\n\\r\\n at the end": lambda head: head.replace("\r\n\r\n", "\n\r\n"),
    "\\r\\n\\n at the end": lambda head: head.replace("\r\n\r\n", "\r\n\n"),
    "in the middle": lambda head: head.replace("\r\nUser-Agent", "\nUser-Agent"),
    "after the request line": lambda head: head.replace(" HTTP/1.1\r\n", " HTTP/1.1\n", 1),
}


async def exchange(client, chunks: list[bytes]) -> tuple[list[tuple[int, str]], bool]:
    """Send `chunks` (a moment apart); ([(status, layer)] of every answer, closed by the server?)."""
    conn = await Conn.open(client)
    for chunk in chunks:
        await conn.send(chunk)
        await asyncio.sleep(0.05)
    answers = []
    try:
        while True:
            status, headers, _ = await conn.answer()
            answers.append((status, layer(headers)))
    except (asyncio.IncompleteReadError, ConnectionError):
        closed = True
    except TimeoutError:
        closed = False
    conn.close()
    return answers, closed


@pytest.mark.parametrize("split", [False, True], ids=["one read", "the next request in a later read"])
@pytest.mark.parametrize("spoil", BARE_LF.values(), ids=BARE_LF.keys())
async def test_a_head_with_a_bare_lf_is_answered_as_aiohttp_answers_it(limited_client, aiohttp_client, make_settings, spoil, split):
    """Never one answer for two requests: the request boundary is aiohttp's (400, then close)."""
    client = await limited_client()
    plain = await aiohttp_client(create_app(make_settings(), worker=8))  # aiohttp alone, as reference
    first, second = spoil(HIT).encode(), HIT.encode()
    chunks = [first, second] if split else [first + second]
    ours, theirs = await exchange(client, chunks), await exchange(plain, chunks)
    assert theirs == ([(400, "aiohttp")], True)
    assert ours == theirs
    assert await counted_pv(client) == 0


def test_with_the_access_log_every_request_goes_through_aiohttp_and_is_logged(tmp_path, redis_url, test_geo_db):
    """`--access-log` keeps HitRunner (for its limits) with the fast path off."""
    collector = launch_collector(tmp_path / "c.log", [
        "--redis-url", redis_url, "--geo-db", test_geo_db[0], "--data-dir", str(tmp_path / "data"),
        "--access-log", "--keepalive-timeout", "1",
    ])
    with socket.create_connection(("127.0.0.1", collector.port)) as sock:
        sock.sendall(HIT.encode())
        answer = sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 204") and b"aiohttp" in answer
        sock.settimeout(5)
        assert sock.recv(4096) == b""  # closed at aiohttp's keep-alive timeout, which is ours
    collector.wait_for(lambda: '"GET /c?k=app1' in collector.log())


class RecordingTransport:
    """A transport that keeps what is written to it, for the protocol's own tests."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closed = False

    def get_extra_info(self, name: str):
        return ("127.0.0.1", 40000) if name == "peername" else None

    def write(self, data: bytes) -> None:
        assert not self.closed, "written after close"
        self.written.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


async def test_under_load_answers_wait_for_the_round_in_order_and_go_before_a_close(collector_client):
    client = await collector_client()
    server = client.server.runner.server  # the HitServer
    await asyncio.sleep(0)
    server._batching = True  # as after a round that answered several connections
    connections = []
    for _ in range(collector.web.hit_server.SEND_GROUP + 2):
        connection = collector.web.hit_server.HitConnection(server)
        connection.connection_made(transport := RecordingTransport())
        connections.append((connection, transport))
    for connection, _ in connections:
        connection.data_received(HIT.encode())
    # A full group went at once; the rest waits for the end of the round.
    assert [len(t.written) for _, t in connections] == [1] * collector.web.hit_server.SEND_GROUP + [0, 0]
    last, transport = connections[-1]
    last.data_received((HIT * 2).encode())  # a second read of that connection in the same round
    last.data_received(HIT.replace("Host: x\r\n", "Host: x\r\nConnection: close\r\n").encode())
    # Closed at once, with the answers it held first, in order: one write, then the close.
    assert transport.closed and len(transport.written) == 1
    assert transport.written[0].count(b"HTTP/1.1 204") == 4 and transport.written[0].endswith(b"Connection: close\r\n\r\n")
    await asyncio.sleep(0)  # the round ends
    assert [len(t.written) for _, t in connections] == [1] * (collector.web.hit_server.SEND_GROUP + 2)
    assert not server._batching or server._round_answers == 0


async def test_a_lone_answer_is_written_at_once(collector_client):
    client = await collector_client()
    server = client.server.runner.server
    await asyncio.sleep(0)
    server._batching = False  # the last round answered one connection, or none
    connection = collector.web.hit_server.HitConnection(server)
    connection.connection_made(transport := RecordingTransport())
    connection.data_received(HIT.encode())
    assert len(transport.written) == 1


class LoggedTransport(RecordingTransport):
    """A RecordingTransport that also notes its writes in a log shared with the journal's."""

    def __init__(self, log: list[tuple[str, int]], number: int) -> None:
        super().__init__()
        self.log, self.number = log, number

    def write(self, data: bytes) -> None:
        super().write(data)
        self.log.append(("answer", self.number))


def loaded_round(server, log: list[tuple[str, int]], count: int) -> list[tuple[collector.web.hit_server.HitConnection, LoggedTransport]]:
    """`count` connections of a server whose last round answered several (its answers wait)."""
    server._batching = True
    connections = []
    for number in range(count):
        connection = collector.web.hit_server.HitConnection(server)
        connection.connection_made(transport := LoggedTransport(log, number))
        connections.append((connection, transport))
    return connections


def journaled_records(data: bytes) -> int:
    """The hits and rejects in a journal write: a line is a reject (3 values) or a request's
    hits (its last value their rows, store/journal.py format 4)."""
    lines = [orjson.loads(line) for line in data.splitlines() if not line.startswith(b'{"eb_journal"')]
    return sum(1 if len(line) == 3 else len(line[-1]) for line in lines)


def journal_writes(monkeypatch, journal, log: list[tuple[str, int]], failing: int = 0) -> None:
    """Note each journal write (its records: hits and rejects) in `log`; the `failing`-th (from 1) raises, as a
    full disk does."""
    append = journal.append

    def noted(data: bytes) -> None:
        log.append(("journal", journaled_records(data)))
        if sum(kind == "journal" for kind, _ in log) == failing:
            raise OSError(28, "No space left on device")
        append(data)

    monkeypatch.setattr(journal, "append", noted)


async def test_under_load_a_rounds_hits_are_journaled_in_one_write_before_any_of_their_answers(collector_client, monkeypatch):
    client = await collector_client()
    server = client.server.runner.server
    await asyncio.sleep(0)
    log: list[tuple[str, int]] = []
    journal_writes(monkeypatch, server.ingest.journal, log)
    for connection, _ in loaded_round(server, log, 3):
        connection.data_received(HIT.encode())
    assert log == []  # held: neither written nor answered before the round's end
    assert not server.ingest.holding  # only within the fast path's own calls: aiohttp's hits are never held
    await asyncio.sleep(0)  # the round ends
    assert log == [("journal", 3), ("answer", 0), ("answer", 1), ("answer", 2)]
    assert await counted_pv(client) == 3


async def test_a_failed_journal_write_refuses_exactly_the_hits_it_held(collector_client, monkeypatch):
    client = await collector_client()
    server = client.server.runner.server
    await asyncio.sleep(0)
    log: list[tuple[str, int]] = []
    journal_writes(monkeypatch, server.ingest.journal, log, failing=2)
    group = collector.web.hit_server.SEND_GROUP
    connections = loaded_round(server, log, group + 2)
    for connection, _ in connections[:group]:  # a full group: journaled in one write, then answered
        connection.data_received(HIT.encode())
    closing, closing_transport = connections[group]
    closing.data_received(HIT.replace("Host: x\r\n", "Host: x\r\nConnection: close\r\n").encode())  # goes at once: the 2nd write
    last, last_transport = connections[group + 1]
    last.data_received((HIT + "OPTIONS /c HTTP/1.1\r\nHost: x\r\n\r\n").encode())
    await asyncio.sleep(0)  # the round ends: the 3rd write
    assert [entry for entry in log if entry[0] == "journal"] == [("journal", group), ("journal", 1), ("journal", 1)]
    assert log.index(("journal", group)) < min(log.index(("answer", n)) for n in range(group))
    # The failed write's one hit is answered 503 (and the connection still closed); the rest as usual.
    answers = [b"".join(t.written) for _, t in connections]
    assert all(a.startswith(b"HTTP/1.1 204") and a.count(b"HTTP/1.1") == 1 for a in answers[:group])
    assert closing_transport.closed and answers[group].startswith(b"HTTP/1.1 503")
    assert b"journal_full" in answers[group] and b"Connection: close" in answers[group]
    assert answers[group + 1].count(b"HTTP/1.1 204") == 2 and b"Access-Control-Allow-Methods" in answers[group + 1]
    assert server.stats.hit_answers[503] == 1
    assert await counted_pv(client) == group + 1  # exactly the hits whose records were written


async def test_under_load_a_request_of_many_events_is_journaled_and_counted_at_once(collector_client, monkeypatch):
    """Held, a request keeps its hits alive until the round's end, walked by every young
    collection meanwhile (ingest.HOLD_MAX_RECORDS): one of more records than that is written
    at once, alone, while a small one beside it still waits for the round's one write. Every
    answer still leaves at the round's end, after its records' write. Fails with every request held
    (the batch's write would come at the round's end, with the GET's: one write of 1 + N)."""
    from collector.hit.ingest import HOLD_MAX_RECORDS

    client = await collector_client()
    server = client.server.runner.server
    await asyncio.sleep(0)
    log: list[tuple[str, int]] = []
    journal_writes(monkeypatch, server.ingest.journal, log)
    events = HOLD_MAX_RECORDS + 1
    batch = orjson.dumps([{"t": "pageview", "k": "app1", "u": f"https://www.example.edu/{n}"} for n in range(events)])
    (small, _), (large, _) = loaded_round(server, log, 2)
    small.data_received(HIT.encode())
    large.data_received(post(batch).encode())
    assert log == [("journal", events)]  # the batch at once; the GET held; no answer yet
    await asyncio.sleep(0)  # the round ends
    assert log == [("journal", events), ("journal", 1), ("answer", 0), ("answer", 1)]
    assert await counted_pv(client) == events + 1
