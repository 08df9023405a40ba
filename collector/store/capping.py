"""The cardinality caps of the whole deployment, decided in Redis when a batch is flushed.

Each worker's own caps (hit/caps.py) bound what it holds; they cannot bound the
deployment: W workers admit W × N values, and a restarted worker N more. So before a
batch part is built into writes, the capped values it carries that this worker has not
had decided yet are sent to Redis, one script call per app and day (admit_caps.lua, all
keys in that day's slot): a cap set per app, day and kind admits values while it holds
fewer than the cap. The part is then rewritten with the refused values as `(other)`,
and written as usual.

The decisions are final (a set only grows, and only below its cap), so a batch asked
again — a retry, a journal replay after a crash — is rewritten the same way and its
writes are the very same: the per-slot sequence markers still skip exactly what landed.
Decisions are remembered here (two days, bounded), so steady traffic asks nothing.

Where the values are in a snapshot (`_values` reads them, `_rewrite` replaces them): the
cube key's page, page code, referrer and a bot's name; the deep-tag metrics (`m:DIM`,
field METRIC:VALUE) and HyperLogLogs (`u:DIM:VALUE`, `rs:DIM:VALUE`); media sessions
(their id and targets).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import Any, cast

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from collector.enrich.device import Device
from collector.features.deep import Session
from collector.hit.caps import MARKERS, OTHER, TRACKED_MAX, CardinalityCaps
from collector.hit.record import Cell, CellEntry, DeviceFields, named_cell
from collector.store import keys, redis_client
from collector.store.aggregate import Snapshot
from collector.store.buckets import Calendar
from collector.store.pacing import no_pacing
from collector.untracked import untracked, untracked_set

ADMIT_CAPS_LUA = resources.files("collector.store").joinpath("admit_caps.lua").read_text(encoding="utf-8")

# The cap kind of each deep-tag dimension's values (rtype has five values: no cap).
KIND_OF_DIMENSION = {
    "resource": "resource", "subject": "label", "stage": "label", "source": "label", "channel": "label",
    "target": "target", "track": "component", "item": "component",
}
# Values of one call at most: a set's values beyond go to the next call (same slot).
CALL_VALUES = 10_000
# Decisions remembered per app, day and kind, as a multiple of its cap: refused values
# beyond are forgotten (and asked again if they come back).
REMEMBERED = 3

CapKey = tuple[str, str, str]  # (app, day id, kind)
Refused = dict[CapKey, frozenset[str]]
# One script call: app, day, KEYS, ARGV, and the (kind, value) pairs asked, in order.
_Call = tuple[str, str, list[str], list[redis_client.Arg], list[tuple[str, str]]]


@dataclass(slots=True)
class _Wanted:
    """One app and day's values to ask about, by kind, and when its sets expire."""

    expire_at: int
    values: dict[str, set[str]] = field(default_factory=dict)


# The values to ask Redis about, per (app, day id): what `undecided` finds for `decide`.
Wanted = dict[tuple[str, str], _Wanted]
# A snapshot's capped values per (app, day id, kind), and each app and day's expiry (`present`).
Present = tuple[dict[CapKey, set[str]], dict[tuple[str, str], int]]


class DeploymentCaps:
    def __init__(self, limits: dict[str, int], calendar: Calendar, worker_caps: CardinalityCaps | None = None) -> None:
        self.limits = limits
        self.calendar = calendar
        self.worker_caps = worker_caps  # told what the deployment refused (hit/caps.py learn)
        self._decided: dict[CapKey, dict[str, bool]] = {}
        self._days: list[str] = []
        self._sha: str | None = None
        self.asked = 0  # values sent to Redis: the cost of the caps, for benches and tests
        self.refused = 0  # distinct values refused by the deployment's sets

    # ---- the decision ---------------------------------------------------------------

    def undecided(
        self, snap: Snapshot, pace: Callable[[], None] = no_pacing
    ) -> tuple[dict[tuple[str, str], _Wanted], dict[CapKey, set[str]]]:
        """The snapshot's capped values not decided yet, per app and day; and all its
        capped values per (app, day, kind). No I/O: the flusher runs it in a thread,
        `pace` called as it reads the snapshot (store/pacing.py)."""
        return self.undecided_of(self.present(snap, pace))

    def present(self, snap: Snapshot, pace: Callable[[], None] = no_pacing) -> Present:
        """All the snapshot's capped values per (app, day, kind), and when each app and
        day's sets expire. Reads nothing of what was decided: a queued batch's are taken
        when it is packed, in a thread, while flushes decide (store/flusher.py)."""
        present: dict[CapKey, set[str]] = {}
        expiry: dict[tuple[str, str], int] = {}
        for (app, minute, kind), values in _values(snap, pace).items():
            bucket = self.calendar.buckets_of_minute(minute)[2]
            expiry[(app, bucket.id)] = bucket.end + keys.SALT_LIFETIME
            found = present.get((app, bucket.id, kind))
            if found is None:
                present[(app, bucket.id, kind)] = values
            else:
                found |= values
        return present, expiry

    def undecided_of(self, found: Present) -> tuple[dict[tuple[str, str], _Wanted], dict[CapKey, set[str]]]:
        """`undecided` of the values `present` found."""
        present, expiry = found
        wanted: dict[tuple[str, str], _Wanted] = {}
        for (app, day, kind), values in present.items():
            decided = self._decided.get((app, day, kind))
            new = values - decided.keys() if decided else values
            if new:
                ask = wanted.get((app, day))
                if ask is None:
                    ask = wanted[(app, day)] = _Wanted(expiry[(app, day)])
                ask.values[kind] = new
        return wanted, present

    async def decide(
        self, redis: aioredis.Redis, wanted: dict[tuple[str, str], _Wanted], present: dict[CapKey, set[str]],
        timeout: float,
    ) -> Refused:
        """Ask Redis about the undecided values (`undecided`), remember its answers, and
        return the refused values among those present, per (app, day, kind)."""
        answers: dict[CapKey, dict[str, bool]] = {}
        if wanted:
            calls = [call for (app, day), ask in sorted(wanted.items()) for call in self._calls(app, day, ask)]
            for (app, day, _, _, asked), flags in zip(calls, await self._send(redis, calls, timeout), strict=True):
                for (kind, value), admitted in zip(asked, flags, strict=True):
                    answers.setdefault((app, day, kind), {})[value] = bool(admitted)
        refused: Refused = {}
        for cap_key, values in present.items():
            fresh, known = answers.get(cap_key, {}), self._decided.get(cap_key, {})
            no = frozenset(v for v in values if fresh.get(v, known.get(v, True)) is False)
            if no:
                refused[cap_key] = no
        for cap_key, decided in answers.items():  # after: remembering may forget older refusals
            self._remember(cap_key, decided)
        return refused

    async def _send(self, redis: aioredis.Redis, calls: list[_Call], timeout: float) -> list[Any]:
        sha = self._sha
        if sha is None:
            sha = self._sha = await redis.script_load(ADMIT_CAPS_LUA)
        replies: list[Any] = []
        try:
            if redis_client.is_cluster(redis):
                replies = await self._send_routed(redis, sha, calls, timeout)
            else:
                commands = [redis_client.pack("EVALSHA", sha, len(cap_keys), *cap_keys, *args)
                            for _, _, cap_keys, args, _ in calls]
                for chunk in redis_client.chunks(commands, 200, 2 << 20):
                    replies += await redis_client.send_packed(redis, chunk, timeout)
        except NoScriptError:
            self._sha = None  # Redis restarted and lost its scripts: load it again on the retry
            raise
        return replies

    @staticmethod
    async def _send_routed(redis: aioredis.Redis, sha: str, calls: list[_Call], timeout: float) -> list[Any]:
        """On a Redis Cluster: each call goes to the master of its app-day slot, 200 at a
        time (the cluster client's pipeline refuses EVALSHA; a decision is idempotent, so
        the client's own retry after MOVED is safe)."""
        replies: list[Any] = []
        for start in range(0, len(calls), 200):
            sent = [redis.evalsha(sha, len(cap_keys), *cap_keys, *args)
                    for _, _, cap_keys, args, _ in calls[start : start + 200]]
            replies += await asyncio.wait_for(asyncio.gather(*sent), timeout)
        return replies

    def _calls(self, app: str, day: str, ask: _Wanted) -> Iterator[_Call]:
        """(app, day, KEYS, ARGV, the (kind, value) asked in order) of each call for one app and day."""
        cap_keys: list[str] = []
        args: list[redis_client.Arg] = [ask.expire_at]
        asked: list[tuple[str, str]] = []
        for kind in sorted(ask.values):
            values = sorted(ask.values[kind])
            for start in range(0, len(values), CALL_VALUES):
                part = values[start : start + CALL_VALUES]
                if asked and len(asked) + len(part) > CALL_VALUES:
                    yield app, day, cap_keys, args, asked
                    cap_keys, args, asked = [], [ask.expire_at], []
                cap_keys.append(keys.cap_set(app, day, kind))
                args.extend((self.limits[kind], len(part), *part))
                asked.extend((kind, value) for value in part)
        if asked:
            yield app, day, cap_keys, args, asked

    def _remember(self, cap_key: CapKey, answers: dict[str, bool]) -> None:
        app, day, kind = cap_key
        self._new_day(day)
        decided = self._decided.get(cap_key)
        if decided is None:
            if len(self._decided) >= TRACKED_MAX:
                self._decided.clear()  # a flood of app keys: start afresh (asked again if they return)
            decided = self._decided[cap_key] = {}
        elif len(decided) + len(answers) > REMEMBERED * self.limits[kind]:
            for forgotten in [v for v, yes in decided.items() if not yes]:
                del decided[forgotten]
        decided.update(answers)
        no = {value for value, yes in answers.items() if not yes}
        self.asked += len(answers)
        self.refused += len(no)
        if self.worker_caps is not None and no:
            self.worker_caps.learn(kind, app, day, no)

    def _new_day(self, day: str) -> None:
        # Like the worker's caps: late events reach back a day; older decisions go.
        if day in self._days:
            return
        self._days = sorted([*self._days, day])
        if len(self._days) > 2:
            old = set(self._days[:-2])
            self._days = self._days[-2:]
            for cap_key in [k for k in self._decided if k[1] in old]:
                del self._decided[cap_key]

    # ---- the rewrite --------------------------------------------------------------

    def rewritten(self, snap: Snapshot, refused: Refused) -> Snapshot:
        """`snap` with every refused value counted as (other). No I/O (runs in a thread)."""
        if not refused:
            return snap
        day_of = self._day_of

        def capped(app: str, minute: int, kind: str, value: str) -> str:
            no = refused.get((app, day_of(minute), kind))
            return OTHER if no is not None and value in no else value

        return _rewrite(snap, capped)

    def _day_of(self, minute: int) -> str:
        return self.calendar.buckets_of_minute(minute)[2].id


# ---- where the capped values are in a snapshot ------------------------------------------

Capper = Callable[[str, int, str, str], str]  # (app, minute, kind, value) -> value to count


def _values(snap: Snapshot, pace: Callable[[], None] = no_pacing) -> dict[tuple[str, int, str], set[str]]:
    """The capped values in the snapshot, per (app, minute, kind), markers left out;
    `pace` called as the cube is read (_cube_values).

    The rollup's hottest data: read by position and grouped per minute first, so that a
    value costs a set insertion, not a call."""
    found: dict[tuple[str, int, str], set[str]] = {}

    def values(app: str, minute: int, kind: str) -> set[str]:
        group = found.get((app, minute, kind))
        if group is None:
            group = found[(app, minute, kind)] = untracked_set()  # strings only: see hit/caps.py _KindOfDay
        return group

    _cube_values(snap, values, pace)
    for (app, minute), of_suffix in snap.deep_incs.items():
        for suffix, names in of_suffix.items():
            metrics_kind = _kind_of_metrics(suffix)
            if metrics_kind is not None:
                values(app, minute, metrics_kind).update(name.partition(":")[2] for name in names)
    for (app, minute), members in snap.deep_members.items():
        # A member per visitor and suffix, its value a suffix's: each suffix read once (~0.15
        # members a POST-50 event, ~0.01 distinct suffixes: bench/RESULTS.md, session 23).
        for suffix in {member[0] for member in members}:
            parts = _valued_parts(suffix)
            if parts is not None:
                values(app, minute, parts[0]).add(parts[1])
    for (app, ms), (minute, session) in snap.sessions.items():
        values(app, minute, "session").add(ms)
        for dim, value in session.targets:
            target_kind = KIND_OF_DIMENSION.get(dim)
            if target_kind is not None:
                values(app, minute, target_kind).add(value)
    for group in found.values():
        group -= MARKERS
    return found


# Cube keys between two calls of `pace` in _values: ~0.25 ms of this pure-Python walk
# (~1 µs a key; the compiled split takes 1,024 entries, aggregate.PACE_ENTRIES).
PACE_KEYS = 256


def _cube_values(snap: Snapshot, values: Callable[[str, int, str], set[str]], pace: Callable[[], None]) -> None:
    """_values of the page views (the cube's keys), `pace` called every PACE_KEYS keys."""
    for n, key in enumerate(snap.cube):
        if n % PACE_KEYS == PACE_KEYS - 1:
            pace()
        app, minute = key[0], key[1]
        for position, kind in _CELL_VALUES:
            if key[position]:
                values(app, minute, kind).add(key[position])  # type: ignore[arg-type]
        device = cast(DeviceFields, key[_DEVICE])
        if device[_DEVICE_CLASS] == "bot":  # Device.is_bot
            values(app, minute, "bot").add(device[_BROWSER])


# Cube key positions of the capped page-view values (hit/record.py Cell), and the device's.
_CELL_VALUES = tuple((Cell._fields.index(kind), kind) for kind in ("page", "page_code", "referrer"))
_DEVICE = Cell._fields.index("device")
# A kept key's device is a plain tuple (hit/record.py): its fields by position too.
_DEVICE_CLASS, _BROWSER = Device._fields.index("device_class"), Device._fields.index("browser")


@functools.lru_cache(maxsize=4096)
def _kind_of_metrics(suffix: str) -> str | None:
    """The cap kind of a metrics hash's values (m:DIM), None when its values are not capped."""
    return KIND_OF_DIMENSION.get(keys.metrics_dimension(suffix) or "")


def _valued_parts(suffix: str) -> tuple[str, str] | None:
    """(cap kind, value) of a u:DIM:VALUE or rs:DIM:VALUE suffix whose values are capped."""
    parts = keys.valued_suffix_parts(suffix)
    if parts is None:
        return None
    kind = KIND_OF_DIMENSION.get(parts[0])
    return (kind, parts[1]) if kind is not None else None


def _cell(key: CellEntry, cap: Capper) -> CellEntry:
    cell = named_cell(key)
    app, minute, device = cell.app, cell.minute, cell.device
    if device.is_bot:
        name = cap(app, minute, "bot", device.browser)
        if name != device.browser:
            device = device._replace(browser=name)
    capped = cell._replace(
        device=device,
        page=cap(app, minute, "page", cell.page) if cell.page else "",
        page_code=cap(app, minute, "page_code", cell.page_code) if cell.page_code else "",
        referrer=cap(app, minute, "referrer", cell.referrer) if cell.referrer else "",
    )
    return cast(CellEntry, tuple(capped))


def _metric_field(app: str, minute: int, suffix: str, name: str, cap: Capper) -> str:
    kind = KIND_OF_DIMENSION.get(keys.metrics_dimension(suffix) or "")
    if kind is None:
        return name
    metric, sep, value = name.partition(":")
    return keys.metric_field(metric, cap(app, minute, kind, value)) if sep else name


def _member_suffix(app: str, minute: int, suffix: str, cap: Capper) -> str:
    parts = keys.valued_suffix_parts(suffix)
    kind = KIND_OF_DIMENSION.get(parts[0]) if parts else None
    if parts is None or kind is None:
        return suffix
    value = cap(app, minute, kind, parts[1])
    return suffix if value == parts[1] else keys.with_value(suffix, value)


def _session_targets(app: str, minute: int, session: Session, cap: Capper) -> tuple[tuple[str, str], ...]:
    targets = []
    for dim, value in session.targets:
        kind = KIND_OF_DIMENSION.get(dim)
        targets.append((dim, cap(app, minute, kind, value) if kind else value))
    return tuple(targets)


def _rewrite(snap: Snapshot, cap: Capper) -> Snapshot:
    """A copy of `snap` with every capped value passed through `cap`; entries that become
    equal are merged (sums added, sessions merged)."""
    # What holds no capped value (visitors, rejections, event ids, ...) is shared, unchanged.
    out = replace(snap, cube={}, deep_incs={}, deep_members={}, sessions={})
    for key, sums in snap.cube.items():
        cell = _cell(key, cap)
        held = out.cube.get(cell)
        out.cube[cell] = list(sums) if held is None else [a + b for a, b in zip(held, sums, strict=True)]
    for (app, minute), of_suffix in snap.deep_incs.items():
        out_of_suffix = out.deep_incs[(app, minute)] = {}
        for suffix, names in of_suffix.items():
            out_names = out_of_suffix[suffix] = {}
            for name, amount in names.items():
                capped = _metric_field(app, minute, suffix, name, cap)
                out_names[capped] = out_names.get(capped, 0) + amount
    for (app, minute), members in snap.deep_members.items():
        out.deep_members[(app, minute)] = untracked({
            (_member_suffix(app, minute, suffix, cap), day_member, month_member)
            for suffix, day_member, month_member in members
        })
    for (app, ms), (minute, session) in snap.sessions.items():
        moved = replace(session, ms=cap(app, minute, "session", ms), targets=_session_targets(app, minute, session, cap))
        merged = out.sessions.get((app, moved.ms))
        if merged is None:
            out.sessions[(app, moved.ms)] = [minute, moved]
        else:
            merged[0] = min(merged[0], minute)
            merged[1].merge(moved)
    return out
