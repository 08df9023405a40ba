"""What the HTTP layer counts and logs when clients misbehave, and how many connections it takes.

Every connection holds a file descriptor, and a process has a fixed number of them. A
client that never finishes its request (a byte every few seconds), that keeps idle
connections open, or that sends garbage must neither hold them all nor fill the log.
hit_server.py enforces the limits on every connection, fast path or aiohttp's; this
module holds what both sides share:

- `HttpStats`: the counters /api/collector shows (malformed requests by reason,
  connections closed at a deadline by phase, connections refused at the cap), and the
  summary of them the log gets at most once per LOG_EVERY seconds;
- `QuietClientErrors`: the logger given to aiohttp's RequestHandler. aiohttp logs each
  request it cannot parse at ERROR with a traceback (web_protocol.py, `handle_error`),
  about 600 bytes of log per 36-byte request; a client's fault is counted here instead;
- `connection_cap`: the connection cap, kept below the open-file limit.
"""

from __future__ import annotations

import logging
import re
import resource
import sys
from collections import Counter
from types import TracebackType
from typing import Any

from aiohttp.http_exceptions import HttpProcessingError

from collector.histogram import AnswerCounts

log = logging.getLogger("collector.http")

LOG_EVERY = 10.0  # seconds: at most one summary line of each kind per interval
# Descriptors kept for what is not a client connection: Redis connections, the journal,
# the listening socket, the event loop's own, the geo databases, stdio.
FD_RESERVE = 64
WORD_START = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")  # in a CamelCase name


class DeadlinePassed(ConnectionResetError):
    """Why a connection we closed at its deadline was lost (already counted as a timeout)."""


class HttpStats:
    """This process's counters of client trouble at the HTTP level."""

    def __init__(self) -> None:
        self.malformed: Counter[str] = Counter()  # requests answered 400 by aiohttp, by reason
        self.timed_out: Counter[str] = Counter()  # connections closed at a deadline, by phase
        self.refused = 0  # connections refused at the cap
        self.evicted = 0  # idle connections closed at the cap to make room for new ones
        self.open_connections = 0  # as of the last clock tick
        self.max_connections = 0
        # Hits answered (/c, fast path and aiohttp alike), by answer status, and the
        # seconds each took from its head parsed to its answer made: plain ints, the hit
        # path's whole cost (GET /metrics reads them, web/metrics.py); `hits.answered`
        # counts one.
        self.hits = AnswerCounts()
        self.hit_answers = self.hits.by_status
        self.hit_seconds = self.hits.seconds
        self._logged_malformed: Counter[str] = Counter()
        self._logged_timed_out: Counter[str] = Counter()
        self._logged_refused = 0
        self._logged_evicted = 0

    def as_dict(self) -> dict:
        return {
            "open_connections": self.open_connections,
            "max_connections": self.max_connections,
            "refused_connections": self.refused,
            "evicted_idle_connections": self.evicted,
            "timed_out": dict(self.timed_out),
            "malformed_requests": dict(self.malformed),
        }

    def log_summary(self, interval: float) -> None:
        """What happened since the last summary, one line per kind (nothing if all was well)."""
        malformed = self.malformed - self._logged_malformed
        if malformed:
            log.info(
                "%d malformed requests in the last %g s, answered 400 (reasons: %s)",
                sum(malformed.values()), interval, _listed(malformed),
            )
        # Idle keep-alive connections closing is normal: only unfinished requests are news.
        slow = Counter({p: n for p, n in (self.timed_out - self._logged_timed_out).items() if p != "idle"})
        if slow:
            log.info(
                "closed %d connections in the last %g s that did not send a whole request in time (%s)",
                sum(slow.values()), interval, _listed(slow),
            )
        refused, evicted = self.refused - self._logged_refused, self.evicted - self._logged_evicted
        if refused or evicted:
            log.warning(
                "connection limit reached: %d connections open; in the last %g s %d idle ones closed to make room "
                "and %d new ones refused with 503 (max_connections %d)",
                self.open_connections, interval, evicted, refused, self.max_connections,
            )
        self._logged_malformed = self.malformed.copy()
        self._logged_timed_out = self.timed_out.copy()
        self._logged_refused = self.refused
        self._logged_evicted = self.evicted


def _listed(counts: Counter[str]) -> str:
    return ", ".join(f"{reason} {n}" for reason, n in counts.most_common())


# What logging accepts as exc_info (typeshed spells it only in its private stubs).
ExcInfo = bool | BaseException | tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None] | None


class QuietClientErrors(logging.LoggerAdapter[logging.Logger]):
    """aiohttp.server's logger as RequestHandler uses it, minus the clients' faults.

    A request aiohttp cannot parse, or a client gone in the middle of its body, is
    counted by reason in HttpStats (and summarised by `log_summary`); anything else,
    such as a bug in a handler, is logged exactly as aiohttp would.
    """

    def __init__(self, stats: HttpStats) -> None:
        super().__init__(logging.getLogger("aiohttp.server"), {})
        self.stats = stats

    def log(self, level: int, msg: object, *args: object, exc_info: ExcInfo = None, **kwargs: Any) -> None:
        error = sys.exc_info()[1] if exc_info is True else exc_info[1] if isinstance(exc_info, tuple) else exc_info
        reason = client_fault(error)
        if reason is None:
            super().log(level, msg, *args, exc_info=exc_info, **kwargs)
        elif reason:
            self.stats.malformed[reason] += 1


def client_fault(error: object) -> str | None:
    """The reason `error` is the client's doing ("" if counted elsewhere), or None."""
    if isinstance(error, DeadlinePassed):
        return ""
    if isinstance(error, HttpProcessingError):  # BadStatusLine -> "bad_status_line", ...
        return WORD_START.sub("_", type(error).__name__).lower().removesuffix("_error")
    if isinstance(error, ConnectionResetError):  # the client left before sending all of its body
        return "client_disconnected"
    return None


def connection_cap(wanted: int) -> int:
    """`wanted`, or fewer if the open-file limit would run out first."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or wanted <= soft - FD_RESERVE:
        return wanted
    room = max(soft - FD_RESERVE, 1)
    log.warning(
        "max_connections %d lowered to %d: the open-file limit is %d (raise it with `ulimit -n`)", wanted, room, soft
    )
    return room
