"""The head of a hit request, read for the fast path (web/hit_server.py); compiled by mypyc.

hit_server.py cannot be compiled (it subclasses aiohttp's AppRunner), and reading the
head was the largest part of its own cost per hit: a regex over the whole head, then
another over its header lines (issue 17). This module does the same checks with a few
bytes methods (each one C loop over the head) and a short loop per header line, so that
mypyc compiles them; no aiohttp here.

What the fast path serves is unchanged (issue 13): the heads aiohttp's parser (llhttp,
strict, plus aiohttp's own checks) accepts, narrowed to hits.

- The request line: `GET`, `POST` or `OPTIONS`, one space, a target of `/c` with an
  optional query of visible ASCII (llhttp refuses control bytes, spaces and raw
  non-ASCII; '#' starts a fragment aiohttp splits off, so such a target is aiohttp's),
  one space, `HTTP/1.1`.
- At most MAX_HEADERS header lines, each after CRLF: a token name, a colon, and a value
  of tab, visible ASCII and obs-text (no NUL, DEL or other control byte).
- Host exactly once, no JUDGED header twice, none of NOT_FAST.

Anything else — a bare CR or LF, a line without a colon, a space before the colon, a
folded line — is not read (`read_head` gives None) and hit_server.py hands it to aiohttp,
which answers it 400 (counted by reason in /api/collector's http.malformed_requests)
exactly as when the fast path is off. tests/test_hit_head.py holds the regex these rules
were written as and checks that the two agree.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, Final, Protocol

from collector.hit.ingest import Answer
from collector.hit.protocol import decode_target_event
from collector.native import c_module

MAX_HEADERS: Final = 128  # aiohttp's limit: a head with more header lines is refused
# The bytes allowed in a request line's target, and in a header line (before splitting
# at CRLF): a byte outside them is a refusal.
TARGET_BYTES: Final = bytes([0x21, 0x22, *range(0x24, 0x7F)])  # visible ASCII but '#'
FIELD_BYTES: Final = bytes([0x09, *range(0x20, 0x7F), *range(0x80, 0x100)])
TOKEN_BYTES: Final = b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
VERSION: Final = b" HTTP/1.1"


# hit_head's C helpers (web/_head_scan.c), or None when not built: each one below keeps its
# Python form as the fallback (and the reference of tests/test_hit_head.py).
_HEAD_SCAN: Final = c_module("collector.web._head_scan")


def _translated_length(allowed: bytes, data: bytes) -> int:
    return len(data.translate(None, allowed))


def _outside(allowed: bytes) -> Callable[[bytes], int]:
    """How many bytes of a head's part are not in `allowed`: by a ByteSet when built (the
    table made once; bytes.translate builds its table of 256 at every call and copies what
    it keeps), else by translate."""
    if _HEAD_SCAN is None:
        return partial(_translated_length, allowed)
    outside: Callable[[bytes], int] = _HEAD_SCAN.ByteSet(allowed).outside
    return outside


OUTSIDE_TARGET: Final = _outside(TARGET_BYTES)


def find_head_end(buffer: bytes, pos: int) -> int:
    """Where the first CRLF CRLF at or after `pos` starts (the end of a head), or -1."""
    return buffer.find(b"\r\n\r\n", pos)


# find_head_end, in C when built (web/_head_scan.c head_end: memchr from CR to CR, where
# bytes.find walks a realistic GET head a byte at a time, ~430 ns a hit).
HEAD_END: Final[Callable[[bytes, int], int]] = find_head_end if _HEAD_SCAN is None else _HEAD_SCAN.head_end

# The header lines judged in every head. aiohttp refuses a head with one of its
# SINGLETON_HEADERS twice, and one in HTTP/1.1 without Host (Content-Length is judged
# apart, by hit_server.py). NOT_FAST heads are aiohttp's: they change how the body is
# framed, or ask for an interim answer or another protocol (or, with the old WebSocket
# draft's key, are refused).
HOST: Final = b"host"
USER_AGENT: Final = b"user-agent"
JUDGED: Final = (
    HOST, USER_AGENT, b"content-type", b"content-location", b"content-range", b"etag", b"max-forwards",
    b"server", b"transfer-encoding", b"expect", b"upgrade", b"sec-websocket-key1",
)
NOT_FAST: Final = frozenset({b"transfer-encoding", b"expect", b"upgrade", b"sec-websocket-key1"})
# The header lines whose values are read (the first line of each; every X-Forwarded-For line).
FORWARDED_FOR: Final = b"x-forwarded-for"
CH_UA_MOBILE: Final = b"sec-ch-ua-mobile"
ORIGIN: Final = b"origin"
REFERER: Final = b"referer"
CONTENT_LENGTH: Final = b"content-length"
CONNECTION: Final = b"connection"
READ: Final = (FORWARDED_FOR, CH_UA_MOBILE, ORIGIN, REFERER, CONTENT_LENGTH, CONNECTION)
# Names of lines a beacon's request commonly carries that are neither judged nor read:
# known to be tokens, so such a line costs one dict look-up, not a token check of its name
# (three to six of a browser's eight to twelve lines; issue 17).
PLAIN_NAMES: Final = (
    b"accept", b"accept-encoding", b"accept-language", b"cache-control", b"pragma", b"cookie", b"dnt",
    b"priority", b"sec-ch-ua", b"sec-ch-ua-platform", b"sec-fetch-dest", b"sec-fetch-mode", b"sec-fetch-site",
    b"sec-gpc", b"te", b"via", b"forwarded", b"x-real-ip", b"x-forwarded-proto", b"x-forwarded-host",
    b"x-forwarded-port", b"x-request-id",
)
# What is done with a line, by its lower-cased name (one dict look-up a line); a name not
# in LINE_KIND is checked to be a token.
PLAIN, JUDGE, JUDGE_AND_READ, READ_FIRST, READ_EVERY, REFUSE = 1, 2, 3, 4, 5, 6
LINE_KIND: Final[dict[bytes, int]] = (
    {name: PLAIN for name in PLAIN_NAMES} | {name: JUDGE for name in JUDGED} | {name: READ_FIRST for name in READ}
    | {USER_AGENT: JUDGE_AND_READ, FORWARDED_FOR: READ_EVERY} | {name: REFUSE for name in NOT_FAST}
)

# A head as read: (method, target, how many times "content-length" appears in its header
# lines in any case — what hit_connection.py judges a body's framing by —, the values read
# by lower-cased name, every X-Forwarded-For value in order). Values are stripped, as sent.
Head = tuple[bytes, bytes, int, dict[bytes, bytes], list[bytes]]


def read_head(buffer: bytes, pos: int, end: int) -> Head | None:
    """The head buffer[pos:end] (its blank line not included), or None if the fast path
    does not serve it (see the module docstring)."""
    # The request line ends at the first CR (found by memchr: several times quicker than
    # finding CRLF), which must begin a CRLF: a bare CR is refused wherever it is.
    line_end = buffer.find(b"\r", pos, end)
    if line_end < 0:
        line_end = end  # no header lines (then no Host: refused below)
    elif line_end + 1 == end or buffer[line_end + 1] != 0x0A:
        return None
    request = _request_line(buffer, pos, line_end)
    if request is None:
        return None
    values: dict[bytes, bytes] = {}
    forwarded: list[bytes] = []
    # (The header lines are not lower-cased whole: the C form lower-cases each name alone,
    # and counts "content-length" as it checks the bytes. bench/RESULTS.md, session 18.)
    lengths = JUDGE_LINES(buffer[line_end:end], values, forwarded)  # every line after CRLF
    if lengths is None:
        return None
    return request[0], request[1], lengths, values, forwarded


def judge_lines(fields: bytes, values: dict[bytes, bytes], forwarded: list[bytes]) -> int | None:
    """Judge the header lines `fields` (each after its CRLF) and keep the values read into
    `values` and `forwarded`: how many times "content-length" appears in `fields` in any
    case, or None when the fast path does not serve the head (module docstring). The Python
    form of JUDGE_LINES."""
    lower = fields.lower()
    lines = lower.split(b"\r\n")
    separators = len(lines) - 1
    # Beyond the CRLFs, no CR, LF or other control byte anywhere in the header lines.
    if separators > MAX_HEADERS or len(lower.translate(None, FIELD_BYTES)) != 2 * separators:
        return None
    if not _read_lines(fields, lines, values, forwarded):
        return None
    return lower.count(CONTENT_LENGTH)


def _line_judge() -> Callable[[bytes, dict[bytes, bytes], list[bytes]], int | None]:
    """judge_lines, in C when built (web/_head_scan.c HeadLines: one pass over the lines,
    no bytes object a line and a name; ~20,000 instructions a realistic hit less)."""
    if _HEAD_SCAN is None:
        return judge_lines
    judge: Callable[[bytes, dict[bytes, bytes], list[bytes]], int | None] = _HEAD_SCAN.HeadLines(
        LINE_KIND, HOST, TOKEN_BYTES, FIELD_BYTES, MAX_HEADERS).read
    return judge


def _read_lines(fields: bytes, lines: list[bytes], values: dict[bytes, bytes], forwarded: list[bytes]) -> bool:
    """Judge the header lines `fields` (each after its CRLF; `lines`: them lower-cased and
    split at CRLF, the first one empty) and keep the values read into `values` and
    `forwarded`; False when the fast path does not serve the head (module docstring)."""
    judged: set[bytes] = set()
    start = 0  # where `line` starts in `fields`
    # (Finding each line in place instead of splitting was tried: bytes.find with bounds is
    # no mypyc primitive, and its boxed positions past 256 cost more objects than the lines.)
    for index in range(1, len(lines)):  # (not lines[1:]: a list made per hit)
        line = lines[index]
        start += 2
        colon = line.find(b":")
        if colon < 1:
            return False
        name = line[:colon]
        kind = LINE_KIND.get(name, 0)
        if not kind:  # (the names of LINE_KIND are tokens)
            if not _is_token(name):
                return False
        elif kind != PLAIN:
            if kind == REFUSE:
                return False
            if kind <= JUDGE_AND_READ:
                if name in judged:
                    return False
                judged.add(name)
            if kind >= JUDGE_AND_READ:
                _keep(kind, name, _stripped(fields, start + colon + 1, start + len(line)), values, forwarded)
        start += len(line)
    return HOST in judged


def _keep(kind: int, name: bytes, value: bytes, values: dict[bytes, bytes], forwarded: list[bytes]) -> None:
    """Keep a read line's value: the first of its name, or every X-Forwarded-For in order."""
    if kind == READ_EVERY:  # every line, in order: proxies may each add one
        forwarded.append(value)
    elif name not in values:
        values[name] = value


def _stripped(fields: bytes, start: int, stop: int) -> bytes:
    """fields[start:stop].strip(), sliced once: a line's value nearly always follows a
    space, and slicing then stripping made two objects. (After read_head's byte check a
    line's only whitespace is space (0x20) and tab (0x09), all that strip would take away.)"""
    while start < stop and fields[start] in (0x20, 0x09):
        start += 1
    while stop > start and fields[stop - 1] in (0x20, 0x09):
        stop -= 1
    return fields[start:stop]


def _is_token(name: bytes) -> bool:
    """`name` (not empty) is an HTTP token. Most names are letters, digits and '-': that
    is checked first, as translate's building its table of TOKEN_BYTES costs more."""
    return name.replace(b"-", b"").isalnum() or not name.translate(None, TOKEN_BYTES)


JUDGE_LINES: Final = _line_judge()


def _request_line(buffer: bytes, pos: int, end: int) -> tuple[bytes, bytes] | None:
    """(method, target) of the request line buffer[pos:end], or None."""
    if buffer.startswith(b"GET /c", pos, end):
        method, target_start = b"GET", pos + 4
    elif buffer.startswith(b"POST /c", pos, end):
        method, target_start = b"POST", pos + 5
    elif buffer.startswith(b"OPTIONS /c", pos, end):
        method, target_start = b"OPTIONS", pos + 8
    else:
        return None
    target_end = end - len(VERSION)
    if target_end < target_start + 2 or not buffer.startswith(VERSION, target_end, end):
        return None
    target = buffer[target_start:target_end]
    if len(target) > 2 and (target[2] != 0x3F or OUTSIDE_TARGET(target)):  # /c?…
        return None
    return method, target


def sender(values: dict[bytes, bytes], forwarded: list[bytes]) -> tuple[str | None, str, str | None, str | None, str | None]:
    """(X-Forwarded-For, User-Agent, Sec-CH-UA-Mobile, Origin, Referer) as Ingest takes them."""
    ua, mobile = values.get(USER_AGENT), values.get(CH_UA_MOBILE)
    origin, referer = values.get(ORIGIN), values.get(REFERER)
    return (
        b",".join(forwarded).decode("latin-1") if forwarded else None,
        ua.decode("utf-8", "replace") if ua is not None else "",
        mobile.decode("latin-1") if mobile is not None else None,
        origin.decode("latin-1") if origin is not None else None,
        referer.decode("latin-1") if referer is not None else None,
    )


class HitTaker(Protocol):
    """Ingest, as get_hit calls it (a Protocol: bench/http_parse_cost.py passes a stand-in)."""

    def hit_query(
        self, query: dict[str, Any], peer: str | None, forwarded_for: str | None, ua: str, ch_mobile: str | None,
        origin: str | None = None, referer: str | None = None, clean: bool = False, valid: bool = False,
    ) -> Answer: ...


def get_hit(ingest: HitTaker, target: bytes, peer: str | None, values: dict[bytes, bytes], forwarded: list[bytes]) -> Answer:
    """A GET hit's answer: its query decoded (as far as its event, and its fields judged,
    when it can: protocol.decode_target_event), its sender's headers given as Ingest takes them."""
    query, clean, valid = decode_target_event(target, 3)
    forwarded_for, ua, mobile, origin, referer = sender(values, forwarded)
    return ingest.hit_query(query, peer, forwarded_for, ua, mobile, origin, referer, clean, valid)
