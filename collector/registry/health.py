"""Health (§8.4 健康监测) and scientific validation (科学校验) of one platform: pure logic.

The periodic job (web/health_job.py) reads a platform's rollups into an `Observation`,
`assess` turns it and the previous record into the new `HealthRecord`, and the Redis
side (registry/health_store.py) keeps the record and its history of transitions.
No I/O here, and the clock is the observation's `now`, so a synthetic timeline tests it.

States, in the order they win when several apply:
    pending    approved, no hit yet
    silent     no hits for `silent_minutes` in an hour that normally has traffic
               (the same hour on previous days), or none at all for 24 h
    degraded   hits arrive, but something is wrong with them (reasons below)
    receiving  the first hits came less than SETTLE_SECONDS ago
    healthy    otherwise
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from collector.registry.model import Platform
from collector.store.names import CLIENT_CLOCK_FLAG, FLAGGED_PREFIX, REPEATED_ID_FLAG

PENDING, RECEIVING, HEALTHY, SILENT, DEGRADED = "pending", "receiving", "healthy", "silent", "degraded"
HEALTH_NAMES = {PENDING: "待接入", RECEIVING: "接收中", HEALTHY: "健康", SILENT: "静默", DEGRADED: "异常"}

# A platform is "receiving" for its first hour of hits before it can be called healthy:
# one hour shows whether its pages send more than the integration test's few hits.
SETTLE_SECONDS = 3600
# Silence is only called when at least this many hits were expected in the quiet window:
# for Poisson traffic the chance of seeing none is e^-10 (1 in 22 000), so an ordinary
# quiet spell of a small platform is not an alarm.
SILENT_MIN_EXPECTED = 10
# No hit at all for a day ends "normal history" arguments: the same-hour median of a
# platform whose tag broke days ago is itself zero.
DAY = 86400
# Shares are judged only above this many events; 1 rejection of 2 events is not 50 %.
MIN_EVENTS_FOR_SHARES = 20
# A cached copy or a translation proxy sends a few foreign-origin hits; a tag copied onto
# another site sends many. Above 1 % of the events it is worth a look.
FOREIGN_SHARE = 0.01
# Page views without a page code, for a platform that declared page codes.
MISSING_PAGE_CODE_SHARE = 0.05

# The rollup counter that counts each protocol event type (docs/redis-keys.md).
EVENT_COUNTERS = {"pageview": "pv", "engagement": "engagements"}


def event_counter(event_type: str) -> str:
    return EVENT_COUNTERS.get(event_type, "ev:" + event_type)


def accepted_events(counters: Mapping[str, int]) -> int:
    """Events counted for a platform: page views, engagements, other types, and bots'."""
    return (counters.get("pv", 0) + counters.get("engagements", 0) + counters.get("bot_hits", 0)
            + sum(n for name, n in counters.items() if name.startswith("ev:")))


@dataclass(frozen=True)
class Thresholds:
    silent_minutes: int = 30
    reject_percent: float = 5.0


@dataclass(frozen=True)
class Observation:
    """What the rollups say about one platform at `now` (registry/health_store.py reads it)."""

    now: float
    recent_events: int  # accepted events in the last `silent_minutes`
    usual_per_hour: float | None  # median events of this hour on previous days; None: no history
    window_events: int  # accepted events in the current and the previous hour
    window_rejected: int  # rejected events (rejected:*) in the same window
    window_foreign: int  # foreign-origin hits (rejected or flagged) in the same window
    day_events: int  # accepted events in the last 24 hours
    day_by_type: Mapping[str, int]  # per protocol event type, the last 24 hours
    day_pv: int = 0
    day_pv_with_code: int = 0


@dataclass(frozen=True)
class Reason:
    code: str
    zh: str
    en: str
    figure: float | None = None


@dataclass(frozen=True)
class HealthRecord:
    platform: str
    state: str
    since: float  # when it entered this state
    checked_at: float
    first_hit_at: float = 0.0
    reasons: tuple[Reason, ...] = ()
    figures: dict = field(default_factory=dict)
    validation: dict | None = None  # the latest daily validation (validate())

    def as_dict(self) -> dict:
        shown = dataclasses.asdict(self)
        shown["state_zh"] = HEALTH_NAMES[self.state]
        return shown

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HealthRecord:
        values = {f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data}
        values["reasons"] = tuple(Reason(**r) for r in data.get("reasons", ()))
        return cls(**values)

    def replace(self, **changes: Any) -> HealthRecord:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Transition:
    platform: str
    at: float
    before: str  # "" for the first record
    after: str
    reasons: tuple[str, ...]

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def assess(
    platform: Platform, obs: Observation, previous: HealthRecord | None, thresholds: Thresholds
) -> tuple[HealthRecord, Transition | None]:
    """The platform's new health record, and the transition when its state changed."""
    first_hit = previous.first_hit_at if previous and previous.first_hit_at else 0.0
    if not first_hit and (obs.recent_events or obs.window_events or obs.day_events):
        first_hit = obs.now
    silence = _silence(obs, first_hit, thresholds)
    troubles = degradations(platform, obs, first_hit, thresholds)
    if not first_hit:
        state = PENDING
    elif silence:
        state = SILENT
    elif troubles:
        state = DEGRADED
    elif obs.now - first_hit < SETTLE_SECONDS:
        state = RECEIVING
    else:
        state = HEALTHY
    before = previous.state if previous else ""
    record = HealthRecord(
        platform=platform.id,
        state=state,
        since=previous.since if previous and before == state else obs.now,
        checked_at=obs.now,
        first_hit_at=first_hit,
        reasons=tuple(silence + troubles),
        figures=_figures(obs),
        validation=previous.validation if previous else None,
    )
    if before == state:
        return record, None
    return record, Transition(platform.id, obs.now, before, state, tuple(r.code for r in record.reasons))


def _silence(obs: Observation, first_hit: float, thresholds: Thresholds) -> list[Reason]:
    if not first_hit or obs.recent_events:
        return []
    if obs.day_events == 0 and obs.now - first_hit >= DAY:
        return [Reason("no_hits_24h", "24 小时内没有收到命中", "no hits in 24 hours")]
    if obs.usual_per_hour is None:
        return []
    expected = obs.usual_per_hour * thresholds.silent_minutes / 60
    if expected < SILENT_MIN_EXPECTED:
        return []
    minutes = thresholds.silent_minutes
    return [Reason(
        "silent", f"{minutes} 分钟没有命中，往日此时约 {expected:.0f} 次",
        f"no hits for {minutes} minutes; about {expected:.0f} expected at this hour", round(expected, 1),
    )]


def degradations(platform: Platform, obs: Observation, first_hit: float, thresholds: Thresholds) -> list[Reason]:
    """What is wrong with the hits that do arrive (an empty list: nothing)."""
    found = []
    total = obs.window_events + obs.window_rejected
    if total >= MIN_EVENTS_FOR_SHARES:
        share = obs.window_rejected / total
        if share * 100 > thresholds.reject_percent:
            found.append(Reason(
                "rejections", f"近两小时 {share:.1%} 的事件被拒绝", f"{share:.1%} of the events of the last two hours were rejected",
                round(share, 4),
            ))
        foreign = obs.window_foreign / total
        if foreign > FOREIGN_SHARE:
            found.append(Reason(
                "foreign_origin", f"近两小时 {obs.window_foreign} 次命中来自未登记域名",
                f"{obs.window_foreign} hits of the last two hours came from unregistered domains", round(foreign, 4),
            ))
    # A declared event type is only "missing" once the platform has sent for a whole day.
    if first_hit and obs.now - first_hit >= DAY and obs.day_events:
        missing = [t for t in platform.scope.events if not obs.day_by_type.get(t)]
        if missing:
            found.append(Reason(
                "missing_events", f"24 小时内未收到申报的事件：{', '.join(missing)}",
                f"declared event types not seen in 24 hours: {', '.join(missing)}",
            ))
    if platform.scope.page_codes and obs.day_pv >= MIN_EVENTS_FOR_SHARES:
        missing_share = 1 - obs.day_pv_with_code / obs.day_pv
        if missing_share > MISSING_PAGE_CODE_SHARE:
            found.append(Reason(
                "missing_page_codes", f"24 小时内 {missing_share:.1%} 的浏览没有页面编码",
                f"{missing_share:.1%} of the page views of the last 24 hours had no page code", round(missing_share, 4),
            ))
    return found


def _figures(obs: Observation) -> dict:
    return {
        "recent_events": obs.recent_events,
        "usual_per_hour": obs.usual_per_hour,
        "window_events": obs.window_events,
        "window_rejected": obs.window_rejected,
        "window_foreign": obs.window_foreign,
        "day_events": obs.day_events,
        "day_by_type": dict(obs.day_by_type),
    }


# ---- scientific validation (科学校验), once a day over the previous day -----------------

# n/a: not measurable. No check gives it today (client_clock and repeated_ids once did,
# before the hit path counted them); validation records and the API keep the word.
PASS, WARN, NOT_MEASURED = "pass", "warn", "n/a"
# HyperLogLog counts UV with a standard error of 0.81 %: UV may exceed PV by that much
# on an honest day where every visitor viewed one page.
UV_TOLERANCE = 1.03
# The beacon sends one engagement per page view when the page is hidden or left, and one
# more each time it is shown and hidden again; more than 3 per view means double tags.
MAX_ENGAGEMENTS_PER_PV = 3.0
# A platform that declared engagement should report it for most page views (a page
# closed by a crash or a killed app sends none).
MIN_ENGAGEMENTS_PER_PV = 0.2
# Progress boundaries may exceed views a little: a session started before midnight reaches
# its boundaries in the new day.
MEDIA_SLACK = 1.05
MAX_BOT_SHARE = 0.5
# Client clocks (flagged:client_clock, hit/remarks.py): an event is flagged only when its
# `ts` lies over `client_ts_window` (a day) in the past or over a minute ahead — a
# network-synced phone or PC is seconds off, so these are devices with a wrong date, or
# a beacon that held events for days. A few such devices are ordinary; one event in
# twenty means a platform-wide cause (an app's own clock, a proxy replaying old hits),
# and those events count at receipt, so the hours they belong to are short of them.
MAX_CLIENT_CLOCK_SHARE = 0.05
# Repeated ids (flagged:repeated_id): the beacon gives each event a random id and replays
# it (next page load) only after a send failed, so a repeat is a send whose answer was
# lost — rare, and a double count; the hit path sees the repeats within one worker only,
# so the figure is a lower bound. Over 1 % of the events: ids that are not unique (a tag of the platform's
# own) or a resend loop, and the counts are inflated by about that share.
MAX_REPEATED_ID_SHARE = 0.01
PROGRESS_BOUNDARIES = (10, 25, 50, 75, 90, 100)


@dataclass(frozen=True)
class Check:
    code: str
    zh: str
    en: str
    figure: float | None
    verdict: str  # pass, warn, or n/a (not measurable)
    note: str = ""


def validate(platform: Platform, day: str, counters: Mapping[str, int], uv: int) -> dict:
    """The day's checks of completeness and consistency, each with its figure and verdict."""
    pv = counters.get("pv", 0)
    checks = [
        _uv_within_pv(pv, uv),
        _engagement_per_pv(platform, pv, counters.get("engagements", 0)),
        _media_progress(platform, counters),
        _bot_share(pv, counters.get("bot_pv", 0)),
        *_flag_shares(counters),
    ]
    verdict = WARN if any(c.verdict == WARN for c in checks) else PASS
    return {"day": day, "verdict": verdict, "checks": [dataclasses.asdict(c) for c in checks]}


def _uv_within_pv(pv: int, uv: int) -> Check:
    figure = round(uv / pv, 4) if pv else None
    bad = uv > pv * UV_TOLERANCE + 1
    return Check("uv_le_pv", "UV ≤ PV（访客数不超过浏览量）", "UV ≤ PV", figure, WARN if bad else PASS,
                 "visitors without page views: events sent without a pageview" if bad else "")


def _engagement_per_pv(platform: Platform, pv: int, engagements: int) -> Check:
    figure = round(engagements / pv, 4) if pv else None
    declared = "engagement" in platform.scope.events
    too_many = pv > 0 and engagements > pv * MAX_ENGAGEMENTS_PER_PV
    too_few = declared and pv >= MIN_EVENTS_FOR_SHARES and engagements < pv * MIN_ENGAGEMENTS_PER_PV
    note = "more engagement reports than page views allow: a doubled tag?" if too_many else (
        "declared engagement, but few page views report it" if too_few else "")
    return Check("engagement_per_pv", "每次浏览的停留上报数", "engagement reports per page view", figure,
                 WARN if too_many or too_few else PASS, note)


def _media_progress(platform: Platform, counters: Mapping[str, int]) -> Check:
    views = counters.get("views", 0)
    reached = [counters.get(f"progress{b}", 0) for b in PROGRESS_BOUNDARIES]
    figure = round(reached[0] / views, 4) if views else None
    problems = []
    if reached[0] > views * MEDIA_SLACK + 1:
        problems.append("more sessions reached 10 % than started")
    if any(later > earlier * MEDIA_SLACK + 1 for earlier, later in itertools.pairwise(reached)):
        problems.append("a later progress boundary was reached more often than an earlier one")
    if counters.get("completed", 0) > views * MEDIA_SLACK + 1:
        problems.append("more completed sessions than views")
    if "media" in platform.scope.events and not views and not any(reached):
        return Check("media_progress", "媒体进度与播放次数", "media progress against media views", None, PASS,
                     "no media views that day")
    return Check("media_progress", "媒体进度与播放次数", "media progress against media views", figure,
                 WARN if problems else PASS, "; ".join(problems))


def _bot_share(pv: int, bot_pv: int) -> Check:
    total = pv + bot_pv
    share = bot_pv / total if total else None
    bad = share is not None and total >= MIN_EVENTS_FOR_SHARES and share > MAX_BOT_SHARE
    return Check("bot_share", "机器流量占比", "share of bot page views", round(share, 4) if share is not None else None,
                 WARN if bad else PASS, "more bots than people: the pages are crawled or the counts inflated" if bad else "")


# A daily check of flagged events against the day's events: (code, flag, limit, zh, en, note).
FLAG_CHECKS = (
    ("client_clock", FLAGGED_PREFIX + CLIENT_CLOCK_FLAG, MAX_CLIENT_CLOCK_SHARE,
     "客户端时间偏离接收时间的事件占比", "share of events whose client timestamp is far from receipt",
     "many clients' clocks are off by over a day (or over a minute ahead): their events count at receipt"),
    ("repeated_ids", FLAGGED_PREFIX + REPEATED_ID_FLAG, MAX_REPEATED_ID_SHARE,
     "事件编号重复的事件占比", "share of events with an id seen before",
     "event ids repeat: resent events are counted twice, or the ids are not unique"),
)


def _flag_shares(counters: Mapping[str, int]) -> list[Check]:
    """The hit path's remarks (hit/remarks.py), each as a share of the day's events."""
    events = accepted_events(counters)
    checks = []
    for code, counter, limit, zh, en, note in FLAG_CHECKS:
        share = counters.get(counter, 0) / events if events else None
        bad = share is not None and events >= MIN_EVENTS_FOR_SHARES and share > limit
        checks.append(Check(code, zh, en, round(share, 4) if share is not None else None,
                            WARN if bad else PASS, note if bad else ""))
    return checks
