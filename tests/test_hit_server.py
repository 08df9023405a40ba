"""The hit fast path (collector/web/hit_server.py) at the byte level, over real sockets.

Answers of the fast path carry no `Server` header; aiohttp's do ("Python/… aiohttp/…").
That is how these tests tell which layer answered: the fast path must serve the common
hit shapes itself and hand everything else to aiohttp, mid-connection, without losing
or reordering a request.
"""

from __future__ import annotations

import asyncio
import socket

import orjson
import pytest

from test_ingest import DESKTOP, flush, pv, stats

HIT = "GET /c?k=app1&t=pageview&u=https%3A%2F%2Fwww.example.edu%2F HTTP/1.1\r\nHost: x\r\nUser-Agent: " + DESKTOP + "\r\n\r\n"


@pytest.fixture
def http_layer() -> str:
    return "fast path"  # (overrides conftest's: these tests are about the fast path)


class Conn:
    """One raw client connection to the test server."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, client) -> "Conn":
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
    await conn.send(f"POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n")
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
