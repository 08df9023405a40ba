"""One client connection of the hit fast path while its requests are hits; compiled by mypyc.

web/hit_server.py (the server, its rounds of answers and its deadlines) cannot be compiled:
it subclasses aiohttp's AppRunner. What it did per request that is not I/O — finding the
heads in a read, telling hits from what aiohttp must serve, calling Ingest, queueing the
answer — ran as interpreted Python around the compiled head reader and Ingest: about a
tenth of a realistic GET hit's CPU (issue 17). This class is that part, moved unchanged
from hit_server.py (which re-exports it), so mypyc compiles it. hit_server.py's docstring
says what the fast path serves and how its answers are grouped.

The class is not an asyncio.Protocol subclass (a compiled class cannot subclass an
interpreted one): event loops only call a protocol's methods. What it needs of its server
and its transport is spelled out as Protocols below; they are typed as such so that the
in-process benches' and the tests' stand-ins keep working.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from time import perf_counter
from typing import Any, Protocol

from collector.histogram import AnswerCounts
from collector.hit.ingest import UNAVAILABLE, Answer, Ingest
from collector.web.hit_head import CONNECTION, CONTENT_LENGTH, HEAD_END, get_hit, read_head, sender

log = logging.getLogger("collector.web.hit_server")

# Longest request head the fast path reads (aiohttp's default line and field limit).
# A longer one goes to aiohttp, which answers it (431/400) as it would anyway.
MAX_HEAD = 8190
# A connection's answers held for the end of a round of reads, at most (bytes): about the
# transport's high-water mark, past which it would stop reading a client that does not read.
UNSENT_MAX = 65536
# What a connection is waiting for; the phase a deadline passed in is counted.
IDLE, HEAD, BODY = "idle", "head", "body"
MAX_LENGTH_DIGITS = 18  # a longer Content-Length may not fit llhttp's 64 bits: aiohttp judges it
INTERNAL_ERROR = Answer(500, b'{"error":"internal"}', "application/json")
# What _request gives instead of where the next request starts.
HAND_OVER, NEED_MORE, CLOSED = -1, -2, -3


class Transport(Protocol):
    """The asyncio transport calls a connection makes (uvloop's and asyncio's TCP transports)."""

    def get_extra_info(self, name: str) -> Any: ...
    def write(self, data: bytes) -> None: ...
    def is_closing(self) -> bool: ...
    def close(self) -> None: ...
    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def get_write_buffer_size(self) -> int: ...
    def abort(self) -> None: ...
    def set_protocol(self, protocol: Any) -> None: ...


class Stats(Protocol):
    """web/http_limits.py's HttpStats, as a connection counts in it."""

    timed_out: Any

    @property
    def hits(self) -> AnswerCounts: ...


class Server(Protocol):
    """web/hit_server.py's HitServer, as its connections use it."""

    now: float
    idle_deadline: float
    request_timeout: float
    fast_path: bool
    _batching: bool
    connections: set[Any]
    fixed_answers: dict[int, bytes]

    @property
    def stats(self) -> Stats: ...
    @property
    def ingest(self) -> Ingest: ...
    def room_for_one_more(self) -> bool: ...
    def refuse(self, transport: Transport) -> None: ...
    # (object: a stand-in's result, e.g. a test's lambda, is not checked; it is not used)
    def hand_over(self, connection: HitConnection, data: bytes) -> object: ...
    def send_soon(self, connection: HitConnection) -> None: ...
    def hold(self, connection: HitConnection) -> None: ...
    def write_held(self) -> None: ...
    def encode(self, answer: Answer, close: bool) -> bytes: ...


def close_now(transport: Transport) -> None:
    """Close at once: close() would first wait for a client that does not read to take our answers."""
    if transport.get_write_buffer_size():
        transport.abort()
    else:
        transport.close()


class HitConnection:
    """One client connection while its requests are hits (see hit_server.py's docstring)."""

    transport: Transport

    def __init__(self, server: Server) -> None:
        self.server = server
        self.buffer = b""
        # Answers not written yet (the server writes them after this round of reads), and
        # which of them wait for their hits' journal write: (index in unsent, close, status).
        self.unsent: list[bytes] = []
        self.unsent_bytes = 0
        self.held: list[tuple[int, bool, int]] = []
        self.peer: str | None = None
        self.ingest: Ingest | None = None  # the server's, from the first request on
        self.phase = IDLE  # meaningful while `buffer` holds part of a request
        self.deadline = server.now + server.request_timeout  # for the first request

    def connection_made(self, transport: Transport) -> None:
        # A stream server's protocol is given a Transport (asyncio's and uvloop's TCP transports are).
        self.transport = transport
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

    def eof_received(self) -> bool | None:
        return None  # (asyncio.Protocol's: the transport closes itself)

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
        hits = self.server.stats.hits
        for index, close, status in self.held:
            self.unsent[index] = encode(UNAVAILABLE, close)
            hits.add(status, -1)
            hits.add(UNAVAILABLE.status, 1)
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
            end = HEAD_END(buffer, pos)
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
        # `lengths`: how many times "content-length" appears in the header lines, in any case.
        method, target, lengths, values, forwarded = head
        # bytes.find, not `in`: compiled, `b"…" in some_bytes` is PySequence_Contains, whose
        # bytes_contains first tries the operand as an int and formats a TypeError it then
        # drops — ~2,700 instructions a hit (bench/RESULTS.md, session 17).
        close = CONNECTION in values and values[CONNECTION].lower().find(b"close") >= 0
        body_start = end + 4
        has_length = lengths > 0
        server = self.server
        ingest = self.ingest
        if ingest is None:  # made at startup, after the server: the same for every request
            ingest = self.ingest = server.ingest
        # Under load the answer waits for the round's end: so can the hit's journal write.
        holding = ingest.holding = server._batching
        held = ingest.held
        try:
            if method == b"GET" and not has_length:
                answer = get_hit(ingest, target, self.peer, values, forwarded)
                next_pos = body_start
            elif method == b"POST":
                if lengths != 1 or CONTENT_LENGTH not in values:
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
        encoded = None if close else server.fixed_answers.get(id(answer))
        if encoded is None:
            encoded = server.encode(answer, close)
        if holding and ingest.held != held:  # this answer assumes its hit's journal write
            server.hold(self)
            self.held.append((len(self.unsent), close, answer.status))
        self.unsent.append(encoded)
        self.unsent_bytes += len(encoded)
        server.stats.hits.answered(answer.status, started)
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
