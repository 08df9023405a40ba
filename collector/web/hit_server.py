"""The fast path for hits: the collector's own HTTP/1.1 protocol for `/c`, beside aiohttp.

Why: aiohttp's per-request machinery (its protocol and parser objects, a Request, a task,
a Response and its writer) costs about 34 µs of CPU per request on the bench machine:
that alone is the bare-aiohttp ceiling the bench compares against. A hit needs none of
it: Ingest never awaits, so the answer is known within the `data_received` callback, and
it is almost always one of a few fixed byte strings. This protocol reads the common
shape of a hit request itself, calls the same Ingest methods as the aiohttp routes, and
writes the answer; pipelined requests in one read get one write.

Under load (the loop's last round of reads answered more than one connection), the
answers are not written within each read's callback but together: at the end of the round
(a callback soon after it) or as soon as SEND_GROUP connections wait. On the loopback the
bench drives, a write to a client that sleeps wakes it (the kernel signals its CPU), and
our ~50 µs per hit between two writes let it fall asleep again each time, so every answer
paid that wake-up (about 8 µs of our CPU per hit at saturation, bench/RESULTS.md session
9); aiohttp's handlers, run as tasks after the reads, write back to back too. A lone
answer goes at once (waiting would only add latency), and so do a connection's answers
past UNSENT_MAX. Before a connection is closed, expired, evicted or handed to aiohttp,
what it has not sent yet is written first, in order.

Those waiting answers also share the journal's write (issue 17): while a round's answers
wait, the hits' journal records are held (Ingest.holding) and written in one write
before the first of them is sent (`write_held`), rather than one write a hit. Nothing
changes for the client: no answer leaves before its hit's record is in the journal. If
that write fails, none of the held hits is counted and each held answer is replaced by
the 503 it would have had (UNAVAILABLE), before any is sent.

Anything else is not handled here. Another path, another method, HTTP/1.0, a chunked or
`Expect`ing body, `Upgrade`, a head that is malformed (as aiohttp's llhttp-based parser
judges it: hit_head.py's read_head) or over MAX_HEAD: the connection,
from the first byte of that request on, is handed to aiohttp's own protocol
(RequestHandler), which serves it for the rest of its life with every route and its own
error answers. So outside the fast path the behaviour is exactly aiohttp's, and a
browser that fetches /beacon.js and then sends hits on the same connection still works
(its hits then take the aiohttp route, which answers the same way).

`HitRunner` is an aiohttp AppRunner whose server is a `HitServer`: any aiohttp site
(TCPSite, SockSite, the test server) serves through the fast path unchanged.

Every connection, fast or handed over, has a deadline (http_limits.py says why): a new
connection must send its first request within `request_timeout`; a request's head must
have come whole `request_timeout` after its first byte, and its body `request_timeout`
after its head — in total, not per byte, so a client sending a byte now and then cannot
hold the connection; an idle keep-alive connection is closed after `keepalive_timeout`.
A clock tick a second closes those past their deadline. Beyond `max_connections` open
connections, new ones are answered 503 and closed.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections.abc import Callable
from email.utils import formatdate
from time import perf_counter
from typing import cast

from aiohttp import StreamReader, web

from collector.hit.ingest import ACCEPTED, IMAGE, PREFLIGHT, RATE_LIMITED, UNAVAILABLE, Answer, Ingest
from collector.settings import Settings
from collector.web.appkeys import HTTP_STATS, INGEST, SETTINGS
from collector.web.hit_head import CONNECTION, CONTENT_LENGTH, get_hit, read_head, sender
from collector.web.http_limits import LOG_EVERY, DeadlinePassed, HttpStats, QuietClientErrors, connection_cap

log = logging.getLogger(__name__)

# Longest request head the fast path reads (aiohttp's default line and field limit).
# A longer one goes to aiohttp, which answers it (431/400) as it would anyway.
MAX_HEAD = 8190
SWEEP_EVERY = 1.0  # the Date header's and the deadline sweep's clock tick

# Under load, answers are written in groups of at most this many connections: the wake-ups
# are shared, and the first answer of a long round does not wait for the whole round.
SEND_GROUP = 8
# A connection's answers held for the end of a round of reads, at most (bytes): about the
# transport's high-water mark, past which it would stop reading a client that does not read.
UNSENT_MAX = 65536
# What a connection is waiting for; the phase a deadline passed in is counted.
IDLE, HEAD, BODY = "idle", "head", "body"
# At the cap, this share of the connections, the longest idle between requests, are
# closed to make room (at most once a tick): idle keep-alive connections must not lock
# new clients out for keepalive_timeout.
EVICT_SHARE = 16


# The heads the fast path serves, whole (issue 13): hit_head.py's `read_head` says which.
MAX_LENGTH_DIGITS = 18  # a longer Content-Length may not fit llhttp's 64 bits: aiohttp judges it

STATUS_TEXT = {
    200: "OK", 204: "No Content", 400: "Bad Request", 413: "Payload Too Large", 429: "Too Many Requests",
    500: "Internal Server Error", 503: "Service Unavailable",
}
INTERNAL_ERROR = Answer(500, b'{"error":"internal"}', "application/json")
TOO_MANY_CONNECTIONS = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: 32\r\n"
    b"Retry-After: 1\r\nConnection: close\r\n\r\n" b'{"error":"too_many_connections"}'
)


class HitServer:
    """The protocol factory a site listens with: a HitConnection per connection.

    Wraps aiohttp's Server (`web`), which takes over the connections the fast path does
    not serve (all of them when `fast_path` is off), and closes the fast ones on
    shutdown. Keeps the coarse clock, the connection cap and every connection's deadline.
    """

    def __init__(
        self, web_server: web.Server | None, app: web.Application, fast_path: bool = True, stats: HttpStats | None = None
    ) -> None:
        self._web = web_server  # None only where aiohttp is never reached (bench/stages.py)
        self.app = app
        self.fast_path = fast_path
        settings = app.get(SETTINGS) or Settings()
        self.stats = stats or app.get(HTTP_STATS) or HttpStats()
        self.keepalive_timeout = settings.keepalive_timeout
        self.request_timeout = settings.request_timeout
        self.max_connections = self.stats.max_connections = connection_cap(settings.max_connections)
        self.connections: set[HitConnection] = set()
        self.handed_over: dict[asyncio.Protocol, HandedOver] = {}  # aiohttp's RequestHandler: its tracker
        if web_server is not None:
            web_server.request_factory = self._noting_heads(web_server.request_factory)
        self.now = time.monotonic()
        self._next_summary = self.now + LOG_EVERY
        self._evicted_at = 0.0
        self._answers: dict[int, bytes] = {}
        self._ingest: Ingest | None = None
        self._tick_handle: asyncio.TimerHandle | None = None
        # Connections whose answers wait for the end of this round of reads (send_soon).
        self._unsent: list[HitConnection] = []
        self._round_answers = 0  # connections answered in this round of reads
        self._round_ending = False  # _round_done is scheduled
        self._batching = False  # the last round answered several: this one's answers wait for its end
        # Connections with answers whose hits' journal records are held (write_held).
        self._held: list[HitConnection] = []
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:  # made outside a running loop (in-process benches): answers go at once
            self._loop = None
        self._tick()

    # aiohttp's runner calls these on its server.
    def __call__(self) -> asyncio.Protocol:
        return HitConnection(self)

    def pre_shutdown(self) -> None:
        """Close the fast connections: between two data_received calls none is mid-request."""
        if self._tick_handle:
            self._tick_handle.cancel()
            self._tick_handle = None
        for connection in list(self.connections):
            connection.send_unsent()
            connection.transport.close()
        self.write_held()  # those of connections that went away: stored, if never answered
        self.web.pre_shutdown()

    async def shutdown(self, timeout: float | None = None) -> None:
        await self.web.shutdown(timeout)

    @property
    def web(self) -> web.Server:
        """aiohttp's Server, which serves what the fast path hands over."""
        if self._web is None:
            raise RuntimeError("this HitServer was made without aiohttp's Server")
        return self._web

    # ---- for the connections -------------------------------------------------------

    @property
    def ingest(self) -> Ingest:
        if self._ingest is None:
            self._ingest = self.app[INGEST]  # made at startup, after this server
        return self._ingest

    @property
    def open_connections(self) -> int:
        return len(self.connections) + len(self.handed_over)

    def room_for_one_more(self) -> bool:
        """Below the cap; or at it, room made by closing the longest-idle connections."""
        if self.open_connections < self.max_connections:
            return True
        if self._evicted_at == self.now:  # one scan a tick: a flood of connections stays cheap
            return False
        self._evicted_at = self.now
        idle: list[HitConnection | HandedOver] = [c for c in self.connections if not c.buffer and not c.transport.is_closing()]
        idle += [t for t in self.handed_over.values() if t.phase is IDLE and not t.transport.is_closing()]
        oldest = heapq.nsmallest(max(self.max_connections // EVICT_SHARE, 1), idle, key=_deadline)
        for connection in oldest:
            if isinstance(connection, HitConnection):
                connection.send_unsent()  # its last answers first
            close_now(connection.transport)
        self.stats.evicted += len(oldest)
        return bool(oldest)  # their descriptors are freed at once, before ours is counted

    def refuse(self, transport: asyncio.Transport) -> None:
        """A connection over the cap: answered 503 (for a proxy to retry elsewhere) and closed."""
        self.stats.refused += 1
        transport.write(TOO_MANY_CONNECTIONS)
        transport.close()

    def send_soon(self, connection: HitConnection) -> None:
        """Write `connection`'s answers now, or, under load, with the round's others (the module docstring says why)."""
        if self._loop is None:
            connection.send_unsent()
            return
        if not self._round_ending:
            self._round_ending = True
            self._loop.call_soon(self._round_done)
        self._round_answers += 1
        if not self._batching:
            connection.send_unsent()
            return
        self._unsent.append(connection)
        if len(self._unsent) >= SEND_GROUP:
            self._send_answers()

    def _round_done(self) -> None:
        self._round_ending = False
        self._send_answers()
        self.write_held()  # those of connections that went away meanwhile
        self._batching = self._round_answers > 1
        self._round_answers = 0

    def hold(self, connection: HitConnection) -> None:
        """`connection` now has an answer whose hit's journal record is held."""
        if not connection.held:
            self._held.append(connection)

    def write_held(self) -> None:
        """Journal the held hits (one write); if that fails, their answers become 503s."""
        if not self._held and not (self._ingest is not None and self._ingest.held):
            return
        held, self._held = self._held, []
        stored = True
        try:
            stored = self.ingest.write_held()
        finally:  # also when counting raised (a bug, logged by the loop): no connection keeps stale notes
            for connection in held:
                if not stored:
                    connection.refuse_held(self.encode)
                connection.held = []

    def _send_answers(self) -> None:
        unsent, self._unsent = self._unsent, []
        for connection in unsent:
            connection.send_unsent()

    def hand_over(self, connection: HitConnection, data: bytes) -> None:
        """Give the connection, with `data` (from the start of a request on), to aiohttp.

        It keeps the connection's deadline: that of the request `data` begins, or, with
        no data, of the request it has yet to send.
        """
        self.connections.discard(connection)
        handler = self.web()
        transport = connection.transport
        tracker = HandedOver(self, handler, transport, connection.deadline, HEAD if data else IDLE)
        self.handed_over[handler] = tracker
        transport.set_protocol(tracker)
        handler.connection_made(transport)
        # If our pause_writing stopped reading, aiohttp's resume_writing would not restart
        # it; aiohttp does its own flow control from here on. (A no-op when reading.)
        transport.resume_reading()
        if data:
            handler.data_received(data)

    def _noting_heads(self, make_request):
        """aiohttp's request factory, also telling the tracker that a head has come whole."""

        def request_factory(message, payload, protocol, writer, task):
            tracker = self.handed_over.get(protocol)
            if tracker is not None:
                tracker.head_received(payload)
            return make_request(message, payload, protocol, writer, task)

        return request_factory

    def encode(self, answer: Answer, close: bool) -> bytes:
        """The answer as HTTP/1.1 bytes; the fixed answers come from a cache per Date tick."""
        if not close:
            cached = self._answers.get(id(answer))
            if cached is not None:
                return cached
        head = [f"HTTP/1.1 {answer.status} {STATUS_TEXT.get(answer.status, 'Unknown')}", f"Date: {self.date}"]
        for name, value in self.ingest.cors.items():
            head.append(f"{name}: {value}")
        for name, value in answer.headers:
            head.append(f"{name}: {value}")
        if answer.status != 204:
            if answer.content_type:
                head.append(f"Content-Type: {answer.content_type}")
            head.append(f"Content-Length: {len(answer.body)}")
        if close:
            head.append("Connection: close")
        return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + answer.body

    def _tick(self) -> None:
        """Every second: the Date header, the fixed answers' bytes, deadlines; now and then the log summary."""
        try:  # first, so that nothing below can stop the clock
            self._tick_handle = asyncio.get_running_loop().call_later(SWEEP_EVERY, self._tick)
        except RuntimeError:  # made outside a running loop (tests): no timer until one runs
            self._tick_handle = None
        self.now = now = time.monotonic()
        self.date = formatdate(usegmt=True)
        self.idle_deadline = now + self.keepalive_timeout  # the common case's, computed once a tick
        self._answers = {}
        if INGEST in self.app:
            fixed = (ACCEPTED, IMAGE, PREFLIGHT, UNAVAILABLE, *RATE_LIMITED.values())  # 429s: a flood's answers
            self._answers = {id(a): self.encode(a, close=False) for a in fixed}
        for connection in [c for c in self.connections if c.deadline < now]:
            connection.expire()
        for tracker in [t for t in self.handed_over.values() if t.deadline < now]:
            tracker.expire()
        self.stats.open_connections = self.open_connections
        if now >= self._next_summary:
            self.stats.log_summary(LOG_EVERY)
            self._next_summary = now + LOG_EVERY


class HitRunner(web.AppRunner):
    """An aiohttp AppRunner serving through the hit fast path (or, with `fast_path=False`,
    only through aiohttp, but within the same connection limits)."""

    def __init__(self, app: web.Application, *, fast_path: bool = True, **kwargs) -> None:
        settings = app.get(SETTINGS) or Settings()
        # aiohttp's own keep-alive timer (its default is 3630 s) follows ours, and its
        # complaints about clients' malformed requests are counted rather than logged.
        self.http_stats = app.get(HTTP_STATS) or HttpStats()
        kwargs.setdefault("keepalive_timeout", settings.keepalive_timeout)
        kwargs.setdefault("logger", QuietClientErrors(self.http_stats))
        super().__init__(app, **kwargs)
        self.fast_path = fast_path

    async def _make_server(self) -> HitServer:  # type: ignore[override]
        return HitServer(await super()._make_server(), self.app, self.fast_path, self.http_stats)


def _deadline(connection: HitConnection | HandedOver) -> float:
    return connection.deadline


def close_now(transport: asyncio.Transport) -> None:
    """Close at once: close() would first wait for a client that does not read to take our answers."""
    if transport.get_write_buffer_size():
        transport.abort()
    else:
        transport.close()


class HandedOver(asyncio.Protocol):
    """Between the transport and aiohttp's RequestHandler, once aiohttp serves a connection.

    aiohttp closes idle keep-alive connections itself, but waits without end for the rest
    of a head or of a body: this keeps those deadlines. It sees the data arrive (a request
    starts when data comes while none is under way) and hears from the request factory
    when a head has been parsed; the rest of the protocol is aiohttp's.
    """

    __slots__ = ("server", "handler", "transport", "deadline", "phase", "payload", "expired")

    def __init__(
        self, server: HitServer, handler: asyncio.Protocol, transport: asyncio.Transport, deadline: float, phase: str
    ) -> None:
        self.server = server
        self.handler = handler
        self.transport = transport
        self.deadline = deadline
        self.phase = phase
        self.payload: StreamReader | None = None  # the request's body stream, once its head is in
        self.expired = False

    def data_received(self, data: bytes) -> None:
        if self.phase is IDLE or self._body_received():
            self.phase, self.deadline = HEAD, self.server.now + self.server.request_timeout
        self.handler.data_received(data)

    def _body_received(self) -> bool:
        """The request's body has come whole (its head did: head_received set the payload)."""
        return self.phase is BODY and self.payload is not None and self.payload.is_eof()

    def head_received(self, payload: StreamReader) -> None:
        self.phase, self.payload = BODY, payload
        self.deadline = self.server.now + self.server.request_timeout

    def expire(self) -> None:
        if self._body_received():
            # Received whole: the answer is being made or read. That, and the keep-alive
            # time after it, get keepalive_timeout (a client that never reads its answer
            # would otherwise hold the connection).
            self.phase, self.payload = IDLE, None
            self.deadline = self.server.now + self.server.keepalive_timeout
            return
        self.server.stats.timed_out[self.phase] += 1
        self.expired = True
        close_now(self.transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.handed_over.pop(self.handler, None)
        if self.expired and exc is None:
            # The request aiohttp is reading fails with this: counted already, not logged.
            exc = DeadlinePassed(f"no whole request within {self.server.request_timeout} s")
        self.handler.connection_lost(exc)

    def eof_received(self) -> bool | None:
        return self.handler.eof_received()

    def pause_writing(self) -> None:
        self.handler.pause_writing()

    def resume_writing(self) -> None:
        self.handler.resume_writing()


class HitConnection(asyncio.Protocol):
    """One client connection while its requests are hits (see the module docstring)."""

    __slots__ = ("server", "transport", "peer", "buffer", "deadline", "phase", "unsent", "unsent_bytes", "held")

    def __init__(self, server: HitServer) -> None:
        self.server = server
        self.buffer = b""
        # Answers not written yet (the server writes them after this round of reads), and
        # which of them wait for their hits' journal write: (index in unsent, close, status).
        self.unsent: list[bytes] = []
        self.unsent_bytes = 0
        self.held: list[tuple[int, bool, int]] = []
        self.peer: str | None = None
        self.phase = IDLE  # meaningful while `buffer` holds part of a request
        self.deadline = server.now + server.request_timeout  # for the first request

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # cast: a stream server's protocol is given a Transport (asyncio's and uvloop's TCP
        # transports are); asyncio.Protocol declares the base class for every kind.
        self.transport = transport = cast(asyncio.Transport, transport)
        server = self.server
        if not server.room_for_one_more():
            return server.refuse(transport)
        peer = transport.get_extra_info("peername")
        self.peer = peer[0] if isinstance(peer, tuple) else None
        server.connections.add(self)
        if not server.fast_path:
            server.hand_over(self, b"")

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        self.unsent, self.unsent_bytes, self.held = [], 0, []  # nobody to read them

    def expire(self) -> None:
        self.server.stats.timed_out[self.phase if self.buffer else IDLE] += 1
        self.send_unsent()
        close_now(self.transport)

    def send_unsent(self) -> None:
        """Write the answers waiting for the end of the round at once (their hits journaled first)."""
        if self.held:
            self.server.write_held()
        unsent = self.unsent
        if not unsent:
            return
        data = b"".join(unsent) if len(unsent) > 1 else unsent[0]
        self.unsent, self.unsent_bytes = [], 0
        if not self.transport.is_closing():
            self.transport.write(data)

    def refuse_held(self, encode: Callable[[Answer, bool], bytes]) -> None:
        """The held hits' journal write failed: their answers become 503s (nothing of them counted)."""
        stats = self.server.stats
        for index, close, status in self.held:
            self.unsent[index] = encode(UNAVAILABLE, close)
            stats.hit_answers[status] -= 1
            stats.hit_answers[UNAVAILABLE.status] += 1
        self.held = []

    def _answered(self, answers_before: int) -> None:
        """This read added answers: written soon (send_soon), or now past UNSENT_MAX."""
        if not answers_before:
            self.server.send_soon(self)
        if self.unsent_bytes > UNSENT_MAX:
            # A pipelining client: written now, so that the transport's flow control
            # (pause_writing) stops reading it within this round, as before.
            self.send_unsent()

    # A client that does not read its answers stops being read (pipelined floods).
    def pause_writing(self) -> None:
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        pending = self.buffer
        buffer = pending + data if pending else data
        answers_before = len(self.unsent)
        pos = 0
        size = len(buffer)
        waiting = HEAD
        while pos < size:
            end = buffer.find(b"\r\n\r\n", pos)
            head_end = size if end < 0 else end
            if head_end - pos > MAX_HEAD:
                taken = HAND_OVER  # aiohttp answers it (431/400) as it would anyway
            elif end < 0:
                # Not whole yet; but with a bare LF (a line end aiohttp refuses, and one
                # that could end this head before our CRLF CRLF) aiohttp answers it now.
                # (read_head refuses a whole head with one.)
                if buffer.count(b"\n", pos) == buffer.count(b"\r\n", pos):
                    break
                taken = HAND_OVER
            else:
                taken = self._request(buffer, pos, end)
            if taken == HAND_OVER:
                return self._hand_over(buffer[pos:], new_request=pos > 0 or not pending)
            if taken == NEED_MORE:
                waiting = BODY
                break
            if taken == CLOSED:
                self.buffer = b""
                return
            pos = taken
        if pos == size:
            self.buffer = b""
            self.deadline = self.server.idle_deadline
        else:
            self.buffer = buffer[pos:] if pos else buffer
            # Deadlines run from a request's first byte (head) and from its head's end
            # (body), not from the latest byte.
            if pos or not pending or waiting is not self.phase:
                self.phase = waiting
                self.deadline = self.server.now + self.server.request_timeout
        if len(self.unsent) > answers_before:
            self._answered(answers_before)

    def _request(self, buffer: bytes, pos: int, end: int) -> int:
        """Answer the request whose head is buffer[pos:end]; where the next one starts.

        Or HAND_OVER (not a fast-path request), NEED_MORE (its body has not all come)
        or CLOSED (answered, and the connection is closing).
        """
        started = perf_counter()
        head = read_head(buffer, pos, end)
        if head is None:
            return HAND_OVER
        method, target, lower, values, forwarded = head
        close = CONNECTION in values and b"close" in values[CONNECTION].lower()
        body_start = end + 4
        has_length = b"content-length" in lower
        server = self.server
        ingest = server.ingest
        # Under load the answer waits for the round's end: so can the hit's journal write.
        holding = ingest.holding = server._batching
        held = ingest.held
        try:
            if method == b"GET" and not has_length:
                answer = get_hit(ingest, target, self.peer, values, forwarded)
                next_pos = body_start
            elif method == b"POST":
                if lower.count(b"content-length") != 1 or CONTENT_LENGTH not in values:
                    return HAND_OVER
                length_text = values[CONTENT_LENGTH]
                if not length_text.isdigit() or len(length_text) > MAX_LENGTH_DIGITS:
                    return HAND_OVER
                length = int(length_text)
                if length > ingest.settings.max_body_bytes:
                    # Answered without reading the body, so the connection cannot go on.
                    answer, close = ingest.hit_body(None, self.peer, *sender(values, forwarded)), True
                    next_pos = body_start
                else:
                    if len(buffer) < body_start + length:
                        return NEED_MORE
                    next_pos = body_start + length
                    answer = ingest.hit_body(buffer[body_start:next_pos], self.peer, *sender(values, forwarded))
            elif method == b"OPTIONS" and not has_length:
                answer, next_pos = ingest.preflight(), body_start
            else:
                return HAND_OVER
        except Exception:  # a bug, not the client's fault: answer as aiohttp would, stay up
            log.exception("hit failed")
            answer, close, next_pos = INTERNAL_ERROR, True, body_start
        finally:
            if holding:
                ingest.holding = False  # only the fast path's own hits are held (not aiohttp's)
        encoded = server.encode(answer, close)
        if holding and ingest.held != held:  # this answer assumes its hit's journal write
            server.hold(self)
            self.held.append((len(self.unsent), close, answer.status))
        self.unsent.append(encoded)
        self.unsent_bytes += len(encoded)
        server.stats.answered(answer.status, started)
        if close:
            self.send_unsent()
            self.transport.close()
            return CLOSED
        return next_pos

    def _hand_over(self, rest: bytes, new_request: bool) -> None:
        self.send_unsent()  # ours before aiohttp's
        if new_request:  # else it began in an earlier read and keeps its deadline
            self.deadline = self.server.now + self.server.request_timeout
        self.buffer = b""
        self.server.hand_over(self, rest)


HAND_OVER, NEED_MORE, CLOSED = -1, -2, -3
