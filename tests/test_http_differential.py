"""The fast path against aiohttp's own parser (llhttp): the same bytes, the same answers.

hit_server.py parses the common hit requests itself and hands everything else to
aiohttp. Whatever it does, a client must not be able to tell the two apart by what is
accepted: every corpus entry below is sent over a real socket to a collector with the
fast path and to one without it (`--access-log`: every request through aiohttp), and the
two must answer the same requests with the same statuses, in the same order, and close
the connection alike. That is the same accept/reject decision and the same request
boundaries (a smuggled request is one answered by one side only).

Each entry is followed by a closing health check (bench.fuzz.SENTINEL): whatever the
entry does to the framing, the connection ends within a few seconds.
"""

from __future__ import annotations

import asyncio

import httputil as http
import pytest
from conftest import _LAUNCHED, launch_collector
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.fuzz import SENTINEL, raw_requests, statuses_in

UA = b"User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36\r\n"
TARGET = b"/c?k=diff&t=pageview&u=https%3A%2F%2Fa.edu%2F"
HIT_LINE = b"GET " + TARGET + b" HTTP/1.1\r\n"
HIT = HIT_LINE + b"Host: x\r\n" + UA + b"\r\n"
# Seconds for a part to be answered before the next is sent (none comes for a partial
# request); on a difference, the exchange is repeated with SLOW_PART_WAIT, so that a
# collector slowed by a loaded machine is not taken for one that answers otherwise.
PART_WAIT = 0.3
SLOW_PART_WAIT = 3.0
BODY = b'{"k":"diff","t":"pageview","u":"https://a.edu/"}'


def hit(extra: bytes = b"", line: bytes = HIT_LINE, host: bytes = b"Host: x\r\n") -> bytes:
    return line + host + UA + extra + b"\r\n"


def post(extra: bytes = b"", body: bytes = BODY, length: bytes | None = None) -> bytes:
    length_line = b"Content-Length: " + (length if length is not None else b"%d" % len(body)) + b"\r\n"
    return b"POST /c HTTP/1.1\r\nHost: x\r\n" + UA + (length_line if length != b"" else b"") + extra + b"\r\n" + body


def headers(n: int) -> bytes:
    """A hit with `n` header lines in all (Host and User-Agent among them)."""
    return hit(b"".join(b"X-N-%d: v\r\n" % i for i in range(n - 2)))


CHUNKED = b"%x\r\n%s\r\n0\r\n\r\n" % (len(BODY), BODY)

CORPUS = {
    # what the issue measured the fast path to accept and aiohttp to refuse
    "bare CR inside a header line": hit(b"X-A: 1\rX-B: 2\r\n"),
    "bare CR before a line end": hit(b"X-A: 1\r\r\n"),
    "bare CR in the request line": b"GET " + TARGET + b" HTTP/1.1\rHost: x\r\n" + UA + b"\r\n",
    "bare LF line ends": HIT.replace(b"\r\n", b"\n"),
    "a bare LF inside the head": hit(b"X-A: 1\nX-B: 2\r\n"),
    "NUL in a header value": hit(b"X-A: a\x00b\r\n"),
    "DEL in a header value": hit(b"X-A: a\x7fb\r\n"),
    "another control character in a header value": hit(b"X-A: a\x01b\r\n"),
    "NUL in a header name": hit(b"X-\x00A: 1\r\n"),
    "NUL in the target": hit(line=b"GET " + TARGET + b"\x00 HTTP/1.1\r\n"),
    "DEL in the target": hit(line=b"GET " + TARGET + b"\x7f HTTP/1.1\r\n"),
    "a tab in the target": hit(line=b"GET " + TARGET + b"\tx HTTP/1.1\r\n"),
    "a header line without a colon": hit(b"NoColonHere\r\n"),
    "a space before the colon": hit(b"X-A : 1\r\n"),
    "an empty header name": hit(b": 1\r\n"),
    "a header name that is not a token": hit(b"X(A): 1\r\n"),
    "128 header lines": headers(128),
    "129 header lines": headers(129),
    "no Host": hit(host=b""),
    "two Host lines": hit(host=b"Host: x\r\nHost: y\r\n"),
    "two User-Agent lines": hit(UA),
    "two Content-Type lines": hit(b"Content-Type: text/plain\r\nContent-Type: text/plain\r\n"),
    "raw non-ASCII in the target": hit(line=b"GET " + TARGET + "中文".encode() + b" HTTP/1.1\r\n"),
    "raw Latin-1 in the target": hit(line=b"GET " + TARGET + b"\xe9 HTTP/1.1\r\n"),
    # what both accept
    "a hit": HIT,
    "non-ASCII in a header value": hit("Referer: https://a.edu/中文\r\n".encode()),
    "a tab in a header value": hit(b"X-A: a\tb\r\n"),
    "an empty header value": hit(b"X-A:\r\n"),
    "a fragment in the target": hit(line=b"GET " + TARGET + b"#frag HTTP/1.1\r\n"),
    "odd but valid target characters": hit(line=b"GET " + TARGET + b"&x=\"<>{}|\\^` HTTP/1.1\r\n"),
    "HTTP/1.0 without Host": HIT.replace(b"HTTP/1.1", b"HTTP/1.0").replace(b"Host: x\r\n", b""),
    "a POST": post(),
    "Content-Length with spaces around": post(length=b" %d " % len(BODY)),
    # request smuggling: both must frame these alike
    "Content-Length and Transfer-Encoding": post(b"Transfer-Encoding: chunked\r\n", CHUNKED),
    "chunked alone": post(b"Transfer-Encoding: chunked\r\n", CHUNKED, length=b""),
    "Transfer-Encoding: xchunked": post(b"Transfer-Encoding: xchunked\r\n", CHUNKED, length=b""),
    "Transfer-Encoding with a leading space": post(b"Transfer-Encoding:  chunked\r\n", CHUNKED, length=b""),
    "Transfer-Encoding: chunked, identity": post(b"Transfer-Encoding: chunked, identity\r\n", CHUNKED, length=b""),
    "Transfer-Encoding: identity, chunked": post(b"Transfer-Encoding: identity, chunked\r\n", CHUNKED, length=b""),
    "Transfer-Encoding with a space before the colon": post(b"Transfer-Encoding : chunked\r\n", CHUNKED),
    "Transfer-Encoding twice": post(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", CHUNKED, length=b""),
    "two equal Content-Lengths": post(b"Content-Length: %d\r\n" % len(BODY)),
    "two different Content-Lengths": post(b"Content-Length: 3\r\n"),
    "Content-Length: +N": post(length=b"+%d" % len(BODY)),
    "Content-Length: N,N": post(length=b"%d,%d" % (len(BODY), len(BODY))),
    "Content-Length: -1": post(length=b"-1"),
    "Content-Length too large for 64 bits": post(length=b"99999999999999999999999"),
    "Content-Length: N followed by a tab": post(length=b"%d\t" % len(BODY)),
    "a folded header line": hit(b"X-A: 1\r\n 2\r\n"),
    "a folded Content-Length": post(length=b"\r\n %d" % len(BODY)),
    "a folded Transfer-Encoding": post(b"Transfer-Encoding:\r\n chunked\r\n", CHUNKED, length=b""),
    "a GET with a body": hit(b"Content-Length: 3\r\n") + b"abc",
    # request lines
    "a lower-case method": HIT.replace(b"GET", b"get", 1),
    "two spaces after the method": HIT.replace(b"GET ", b"GET  ", 1),
    "a space after the version": HIT.replace(b"HTTP/1.1\r\n", b"HTTP/1.1 \r\n", 1),
    "an empty line before the request": b"\r\n" + HIT,
    "HTTP/1.2": HIT.replace(b"HTTP/1.1", b"HTTP/1.2", 1),
    "absolute-form target": HIT.replace(b"GET /c?", b"GET http://x/c?", 1),
    "an Upgrade header": hit(b"Upgrade: h2c\r\n"),
    # pipelined
    "three hits at once": HIT * 3,
    "a hit, a bad head, a hit": HIT + hit(b"X-A: \x00\r\n") + HIT,
    "a POST and a hit": post() + HIT,
    "a POST whose Content-Length takes part of the next request": post(length=b"%d" % (len(BODY) + 4)) + HIT,
    "a hit, then one with two Host lines": HIT + hit(host=b"Host: x\r\nHost: y\r\n"),
}


Exchange = tuple[tuple[int, ...], bool]  # the statuses a connection got, and whether the collector closed it


async def _exchange(port: int, parts: list[bytes], part_wait: float = PART_WAIT) -> Exchange:
    """(statuses, closed) of one connection that is sent `parts`, each once the one before it
    is answered (or `part_wait` has passed), then SENTINEL."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    received = bytearray()
    arrived = asyncio.Event()

    async def read() -> bool:
        try:
            while chunk := await reader.read(65536):
                received.extend(chunk)
                arrived.set()
        except ConnectionError:
            pass
        arrived.set()
        return True

    reading = asyncio.ensure_future(read())
    try:
        for part in parts[:-1]:
            answered = len(statuses_in(bytes(received)))
            writer.write(part)
            deadline = asyncio.get_running_loop().time() + part_wait
            while len(statuses_in(bytes(received))) == answered and not reading.done():
                arrived.clear()
                try:
                    await asyncio.wait_for(arrived.wait(), max(deadline - asyncio.get_running_loop().time(), 0))
                except TimeoutError:
                    break
        writer.write(parts[-1] + SENTINEL)
        try:
            closed = await asyncio.wait_for(asyncio.shield(reading), 5.0)
        except TimeoutError:
            closed = False
    finally:
        writer.close()
        reading.cancel()
    return tuple(statuses_in(bytes(received))), closed


def each_head_apart(data: bytes) -> list[bytes]:
    """`data` cut after every blank line: each request's head (and what precedes it) in a write of its own."""
    parts = [part + b"\r\n\r\n" for part in data.split(b"\r\n\r\n")]
    parts[-1] = parts[-1][:-4]
    return parts


def answers(ports: tuple[int, int], data: bytes) -> tuple[Exchange, ...]:
    """`exchanged` on both collectors; again, waiting longer for each answer, if they differ."""
    fast, plain = exchanged(ports, data, PART_WAIT)
    if fast != plain:
        fast, plain = exchanged(ports, data, SLOW_PART_WAIT)
    return fast, plain


def exchanged(ports: tuple[int, int], data: bytes, part_wait: float) -> tuple[Exchange, ...]:
    """(statuses, closed) from the fast path and from aiohttp, each sent `data` a head at a time.

    aiohttp drops the answers to the requests it parsed in the same read as a malformed
    one (RequestHandler.data_received turns the whole read into the one 400), and
    llhttp refuses bytes that follow a request ending the connection in the same read:
    that is how the bytes happened to arrive, not where requests begin and end. Each
    head (with the body before it) in a write of its own, after the answer to the one
    before, shows every request aiohttp would answer. (The fast path sees the requests
    of one read at once: test_requests_before_a_malformed_one_in_the_same_read_are_answered.)
    """
    parts = each_head_apart(data)

    async def both():
        return await asyncio.gather(*(_exchange(port, parts, part_wait) for port in ports))

    return tuple(asyncio.run(both()))


@pytest.fixture(scope="module")
def layers(redis_server, test_geo_db, tmp_path_factory):
    """The ports of two collectors on one Redis: with the fast path, and aiohttp only.

    Started once for this module's tests (they count nothing they read back).
    """
    redis_server.client().flushall()
    tmp = tmp_path_factory.mktemp("layers")
    args = ["--redis-url", redis_server.url, "--geo-db", ",".join(test_geo_db), "--trusted-proxies", "127.0.0.1/32",
            "--log-level", "WARNING"]
    started = [
        launch_collector(tmp / "fast.log", args + ["--data-dir", str(tmp / "fast")]),
        launch_collector(tmp / "aiohttp.log", args + ["--data-dir", str(tmp / "aiohttp"), "--access-log"]),
    ]
    for running in started:
        _LAUNCHED.remove(running)  # stopped below, after the module, not after its first test
    yield tuple(running.port for running in started)
    for running in started:
        running.stop()


def test_the_fast_path_answers_the_corpus_as_aiohttp_does(layers):
    differences = []
    for name, data in CORPUS.items():
        fast, plain = answers(layers, data)
        if fast != plain:
            differences.append(f"{name}: fast path {fast}, aiohttp {plain}")
    assert not differences, "\n".join(differences)


def malformed_requests(port: int) -> int:
    status, body = http.get_json(f"http://127.0.0.1:{port}/api/collector")
    assert status == 200, body
    return sum(body["http"]["malformed_requests"].values())


def test_the_corpus_has_what_the_issue_measured(layers):
    """The leniencies issue 13 found are refused (400 and closed) on the fast path and
    counted as malformed requests; the hit is accepted."""
    refused = [name for name in list(CORPUS)[:list(CORPUS).index("a hit")] if name != "128 header lines"]
    before = malformed_requests(layers[0])
    for name in refused:
        fast, _ = exchanged(layers, CORPUS[name], PART_WAIT)  # once: each is counted
        assert fast == ((400,), True), (name, fast)
    assert malformed_requests(layers[0]) - before == len(refused)
    assert answers(layers, CORPUS["a hit"])[0] == ((204, 200), True)
    assert answers(layers, CORPUS["128 header lines"])[0] == ((204, 200), True)


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.lists(raw_requests(), min_size=1, max_size=3).map(b"".join))
def test_generated_heads_are_answered_as_aiohttp_answers_them(layers, data):
    fast, plain = answers(layers, data)
    assert fast == plain, {"fast path": fast, "aiohttp": plain}


def test_requests_before_a_malformed_one_in_the_same_read_are_answered(layers):
    """In one read, the fast path answers (and counts) the hits before a malformed head,
    then aiohttp answers that head 400 and closes. (aiohttp alone would drop those
    answers, and the beacon would send the counted hits again.)"""
    fast_port, _ = layers
    for data in (CORPUS["a hit, a bad head, a hit"], CORPUS["a hit, then one with two Host lines"]):
        assert asyncio.run(_exchange(fast_port, [data])) == ((204, 400), True)
