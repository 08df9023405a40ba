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
before the first of them is sent (`write_held`), rather than one write a hit (a request
of many events is written at once: Ingest.HOLD_MAX_RECORDS). Nothing
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
import time
from email.utils import formatdate
from typing import cast

from aiohttp import StreamReader, web

from collector.hit.ingest import ACCEPTED, IMAGE, PREFLIGHT, RATE_LIMITED, UNAVAILABLE, Answer, Ingest
from collector.settings import Settings
from collector.web.appkeys import HTTP_STATS, INGEST, SETTINGS

# The connection itself (compiled): re-exported, as the benches and tests take it from here.
from collector.web.hit_connection import BODY, HEAD, IDLE, HitConnection, Transport, close_now
from collector.web.http_limits import LOG_EVERY, DeadlinePassed, HttpStats, QuietClientErrors, connection_cap

__all__ = ["HitConnection", "HitRunner", "HitServer"]

SWEEP_EVERY = 1.0  # the Date header's and the deadline sweep's clock tick

# Under load, answers are written in groups of at most this many connections: the wake-ups
# are shared, and the first answer of a long round does not wait for the whole round.
SEND_GROUP = 8
# At the cap, this share of the connections, the longest idle between requests, are
# closed to make room (at most once a tick): idle keep-alive connections must not lock
# new clients out for keepalive_timeout.
EVICT_SHARE = 16


STATUS_TEXT = {
    200: "OK", 204: "No Content", 400: "Bad Request", 413: "Payload Too Large", 429: "Too Many Requests",
    500: "Internal Server Error", 503: "Service Unavailable",
}
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
        # The fixed answers' bytes (keep-alive), by id(answer), for this Date tick: what a
        # connection sends for most hits without calling encode.
        self.fixed_answers: dict[int, bytes] = {}
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
    def __call__(self) -> HitConnection:
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

    def refuse(self, transport: Transport) -> None:
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
        transport = cast(asyncio.Transport, connection.transport)  # the loop's: a TCP transport
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
        """The answer as HTTP/1.1 bytes (built: the fixed ones are in `fixed_answers`)."""
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
        self.fixed_answers = {}
        if INGEST in self.app:
            fixed = (ACCEPTED, IMAGE, PREFLIGHT, UNAVAILABLE, *RATE_LIMITED.values())  # 429s: a flood's answers
            self.fixed_answers = {id(a): self.encode(a, close=False) for a in fixed}
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


class HandedOver(asyncio.Protocol):
    """Between the transport and aiohttp's RequestHandler, once aiohttp serves a connection.

    aiohttp closes idle keep-alive connections itself, but waits without end for the rest
    of a head or of a body: this keeps those deadlines. It sees the data arrive (a request
    starts when data comes while none is under way) and hears from the request factory
    when a head has been parsed; the rest of the protocol is aiohttp's.
    """

    __slots__ = ("server", "handler", "transport", "deadline", "phase", "payload", "expired")

    def __init__(
        self, server: HitServer, handler: asyncio.Protocol, transport: Transport, deadline: float, phase: str
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
