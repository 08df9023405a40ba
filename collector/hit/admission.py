"""Which platform a hit counts for: the registry's rules on the hit path (standard §8).

Pure and per event: this module reads the worker's in-memory `RegistrySnapshot` (kept
fresh by registry/live.py) and never awaits anything.

- `registry=enforce`: a hit's app key must belong to a platform in COUNTING_STATES
  (approved, active). Its events are counted under the platform's *series* — the
  platform id, or `ID~test` for a test-environment platform — never under the key, so
  a key rotation does not split the data and test traffic stays apart. Any other key
  (unknown, retired past its overlap, of an applied, rejected, suspended or revoked
  platform) is refused with a reason, and the refusal is counted under the one
  pseudo-app UNREGISTERED: random keys create no per-key state anywhere.
  The page must be on the platform's domains (`Origin`, else `Referer`, and the
  event's `u`); on a mismatch the platform's `foreign_origin` policy refuses the hit or
  counts it with a `flagged:foreign_origin` counter.
- `registry=open` (development): every key counts under itself, as before the registry.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Final, TypedDict

from collector.registry.model import (
    APPLIED,
    APPROVED,
    COUNTING_STATES,
    REJECTED,
    REVOKED,
    SUSPENDED,
    Platform,
    RegistrySnapshot,
    origin_allowed,
)

ENFORCE, OPEN = "enforce", "open"
MODES = (ENFORCE, OPEN)
# The one app every registry refusal is counted under (rejected:unknown_app, ...).
UNREGISTERED = "(unregistered)"
FOREIGN_ORIGIN: Final = "foreign_origin"
# Offending keys remembered per worker, for the admin (/api/admin/refused-keys): the newest ones.
OFFENDERS_KEPT = 50
# (platform, host) judgements kept per worker: hosts come from clients, so the cache
# starts afresh when full (a few legitimate hosts per platform refill it at once).
HOSTS_CACHED = 4096
# Verdicts "counted under app" kept per worker (Admission.counted): afresh when full.
MAX_COUNTED_VERDICTS = 4096

REASON_BY_STATE = {
    APPLIED: "not_approved_app", REJECTED: "not_approved_app", SUSPENDED: "suspended_app", REVOKED: "revoked_app",
}
REASON_DETAILS = {
    "unknown_app": "the app key belongs to no registered platform",
    "expired_app_key": "the app key was rotated out and its overlap has ended: use the new key",
    "not_approved_app": "the platform's application is not approved",
    "suspended_app": "the platform is suspended",
    "revoked_app": "the platform is revoked",
    FOREIGN_ORIGIN: "the page is not on the platform's registered domains",
}


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do with one event. `app` is where it (or its rejection) is counted."""

    app: str
    refused: str = ""  # the reason, when the event is not counted
    flagged: str = ""  # a flag on a counted event


class Offender(TypedDict):
    """A refused app key, as the admin's /refused-keys lists it."""

    key: str
    reason: str
    hits: int
    last_seen: float  # epoch seconds


class Admission:
    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.snapshot: RegistrySnapshot | None = None  # set by registry/live.py; None until loaded
        # Approved platforms that had a verified hit: live.py activates them, off the hit path.
        self.first_hits: set[str] = set()
        # key -> {"key", "reason", "hits", "last_seen"}: a bounded sample of refused keys.
        self.offenders: OrderedDict[str, Offender] = OrderedDict()
        self._hosts: dict[tuple[str, str], bool] = {}
        self._counted: dict[str, Verdict] = {}  # app -> Verdict(app), see counted()

    @property
    def waiting(self) -> bool:
        """True while enforcing without a registry loaded yet: hits must wait (503)."""
        return self.mode == ENFORCE and self.snapshot is None

    def use(self, snapshot: RegistrySnapshot) -> None:
        self.snapshot = snapshot
        self._hosts = {}  # domains may have changed

    def take_first_hits(self) -> set[str]:
        taken, self.first_hits = self.first_hits, set()
        return taken

    def rejects_app(self, key: object, now: float) -> str:
        """Where an event rejected as bad input is counted when enforcing: its platform's
        series, or UNREGISTERED when the key is not a counting platform's."""
        platform = self._platform(key, now)
        return platform.series if platform is not None and platform.state in COUNTING_STATES else UNREGISTERED

    def page_host(self, origin: str | None, referer: str | None) -> str:
        """The page's host from the headers, as judge reads it: "" with `registry=open`,
        whose verdicts never look at it (parsing it cost ~0.15 µs a hit for nothing)."""
        if self.mode == OPEN:
            return ""
        return header_host(origin, referer)

    def judge(self, key: str, origin_host: str, page_url: str, now: float) -> Verdict:
        """The verdict on a valid event with app key `key` from a page on `origin_host`/`page_url`."""
        if self.mode == OPEN:
            return self.counted(key)
        platform = self._platform(key, now)
        if platform is None or platform.state not in COUNTING_STATES:
            return self._refuse(key, platform, now)
        app = platform.series
        if self._foreign(platform, origin_host, page_url):
            if platform.foreign_origin == "flag":
                return Verdict(app, flagged=FOREIGN_ORIGIN)
            self._remember(key, FOREIGN_ORIGIN, now)
            return Verdict(app, refused=FOREIGN_ORIGIN)
        if platform.state == APPROVED:
            self.first_hits.add(platform.id)
        return self.counted(app)

    def counted(self, app: str) -> Verdict:
        """Verdict(app), the verdict on nearly every event: one object per app (they are
        immutable), as making a frozen dataclass costs more than the rest of judge. With
        `registry=open` apps are whatever keys clients send, hence the bound."""
        verdict = self._counted.get(app)
        if verdict is None:
            if len(self._counted) >= MAX_COUNTED_VERDICTS:
                self._counted.clear()
            verdict = self._counted[app] = Verdict(app)
        return verdict

    def _platform(self, key: object, now: float) -> Platform | None:
        snapshot = self.snapshot
        if snapshot is None or not isinstance(key, str):
            return None
        return snapshot.platform_for_key(key, now)

    def _refuse(self, key: str, platform: Platform | None, now: float) -> Verdict:
        if platform is not None:
            reason = REASON_BY_STATE.get(platform.state, "not_approved_app")
        elif self.snapshot is not None and key in self.snapshot.by_key:
            reason = "expired_app_key"  # indexed, but past its overlap
        else:
            reason = "unknown_app"
        self._remember(key, reason, now)
        return Verdict(UNREGISTERED, refused=reason)

    def _remember(self, key: str, reason: str, now: float) -> None:
        """Keep the newest OFFENDERS_KEPT distinct keys: memory stays flat under any flood."""
        seen = self.offenders.pop(key, None)
        if seen is None:
            seen = {"key": key, "reason": reason, "hits": 0, "last_seen": now}
            if len(self.offenders) >= OFFENDERS_KEPT:
                self.offenders.popitem(last=False)
        seen["reason"], seen["hits"], seen["last_seen"] = reason, seen["hits"] + 1, now
        self.offenders[key] = seen

    def recent_offenders(self) -> list[Offender]:
        """The newest first (copies)."""
        return [found.copy() for found in reversed(self.offenders.values())]

    def _foreign(self, platform: Platform, origin_host: str, page_url: str) -> bool:
        """A page host we know of (from the headers, and from `u`) that is not the platform's.

        With neither — a server-side sender, or a browser told to send no referrer and
        no `u` in the event — there is nothing to judge, and the hit is not foreign.
        """
        if origin_host and not self._allowed(platform, origin_host):
            return True
        page_host = url_host(page_url) if page_url else ""
        return bool(page_host) and not self._allowed(platform, page_host)

    def _allowed(self, platform: Platform, host: str) -> bool:
        found = self._hosts.get((platform.id, host))
        if found is None:
            if len(self._hosts) >= HOSTS_CACHED:
                self._hosts = {}
            found = self._hosts[(platform.id, host)] = origin_allowed(platform, host)
        return found


def header_host(origin: str | None, referer: str | None) -> str:
    """The page's host as the browser reports it: the Origin header's, else the Referer's.

    `Origin: null` (sandboxed frames, file: pages) names no host: the Referer decides.
    """
    if origin and origin != "null":
        host = url_host(origin)
        if host:
            return host
    return url_host(referer) if referer else ""


def url_host(url: str) -> str:
    """The host[:port] of an absolute URL, lower case, without user info; "" if none."""
    # What follows the first "://" up to the path, query or fragment: user info, host,
    # port. By str.find, not a regex (a match object per call: this runs two or three
    # times a hit).
    start = url.find("://")
    if start < 0:
        return ""
    start += 3
    end = len(url)
    for stop in "/?#":
        found = url.find(stop, start, end)
        if found >= 0:
            end = found
    host = url[start:end]
    if "@" in host:
        host = host.rpartition("@")[2]
    return host.lower()[:253]

