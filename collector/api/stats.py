"""The read API's figures: what `/api/stats` and `/api/apps` answer, straight from the Redis rollups.

The HTTP handlers are in web/stats_routes.py.

Derived figures (bounce rate, PV per 100 visitors, pages per visitor, averages) are
computed here, never stored. UV over several buckets, and over the platforms of a group,
is the union of their HyperLogLogs (store/hll_union.py, safe on Redis Cluster), never a sum.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis
from redis.typing import EncodableT, FieldT

from collector.api.topn import summed_fields, top_fields
from collector.enrich.geo import DBIP_ATTRIBUTION, describe_region_key
from collector.features import pages
from collector.features.figures import DEEP_BREAKDOWNS, FEATURE_HLLS, MAX_ROW_LIMIT, ROW_LIMIT, deep_figures
from collector.features.reading import BucketReading, ratio, split_metrics
from collector.store import keys, names
from collector.store.buckets import GRANULARITIES, Bucket, Calendar
from collector.store.hll_union import UnionTooLarge, count_unions

MAX_BUCKETS = 2000
BASIC_BREAKDOWNS = pages.BREAKDOWNS  # the page-view breakdowns: page, page_code, referrer, ..., region, bot
BREAKDOWNS = BASIC_BREAKDOWNS + tuple(DEEP_BREAKDOWNS)
# HyperLogLogs counted per bucket and over the range: UV, first-party UV, and those of
# the deep tag's features (media viewers, distinct resources viewed, logged-in users).
BUCKET_HLLS = (keys.VISITORS, keys.FIRST_PARTY, *FEATURE_HLLS)
REGION_LEVELS = pages.REGION_LEVELS  # the `region` breakdown's dimensions
# What one read may cost (issue 13): hash entries of its breakdowns over all its buckets
# (checked with HLEN before anything is read; a 50,000-page day reads in about 1.5 s, so ten such days),
# per-value HyperLogLogs counted (rows x buckets), and the answer's size (about; rows'
# text and figures). Over any of them the read is a 400 saying which, never 100 MB.
MAX_READ_ENTRIES = 500_000
MAX_HLL_KEYS = 200_000
MAX_ANSWER_BYTES = 8 << 20
# (app, bucket) cells one read covers: a group's platforms times its buckets (a province
# of 600 platforms over a month by day). Each cell is a counters hash and a key in every
# UV union.
MAX_CELLS = 20_000
ROW_OVERHEAD_BYTES = 64  # a row's figures and field names, besides its value


class BadQuery(ValueError):
    pass


class ReadBudget:
    """Counts what a read costs as it goes; BadQuery (a 400 with the reason) once over."""

    def __init__(self) -> None:
        self.hll_keys = 0
        self.answer_bytes = 0

    @staticmethod
    def check_entries(entries: int) -> None:
        if entries > MAX_READ_ENTRIES:
            raise BadQuery(f"the breakdowns asked hold {entries} entries over these buckets, more than "
                           f"{MAX_READ_ENTRIES} a read may scan; ask fewer breakdowns or buckets, or a coarser granularity")

    def count_hlls(self, n: int) -> None:
        self.hll_keys += n
        if self.hll_keys > MAX_HLL_KEYS:
            raise BadQuery(f"the UV of these rows over these buckets needs more than {MAX_HLL_KEYS} HyperLogLogs; "
                           "ask a lower limit or fewer buckets")

    def add_rows(self, rows: list[dict]) -> None:
        self.answer_bytes += sum(len(str(row.get("value", ""))) + ROW_OVERHEAD_BYTES for row in rows)
        if self.answer_bytes > MAX_ANSWER_BYTES:
            raise BadQuery(f"the answer would be over {MAX_ANSWER_BYTES >> 20} MB; ask a lower limit or fewer breakdowns")


def derive(counters: dict[str, int], hlls: dict[str, int], catalogue_total: int = 0) -> dict:
    """The figures the monitoring reports need, from raw counters of a bucket or range
    and the PFCOUNT of each of BUCKET_HLLS."""
    pv = counters.get("pv", 0)
    uv = hlls[keys.VISITORS]
    visits = counters.get("visits", 0)
    bounces = max(visits - counters.get("visits_multi", 0), 0)
    engagements = counters.get("engagements", 0)
    scrolls = counters.get("scroll_count", 0)
    return {
        "pv": pv,
        "uv": uv,
        "uv_first_party": hlls[keys.FIRST_PARTY],
        "visits": visits,
        "bounces": bounces,
        "bounce_rate": ratio(bounces, visits),
        "engaged_ms": counters.get("engaged_ms", 0),
        "engagements": engagements,
        "avg_engaged_ms_per_visit": ratio(counters.get("engaged_ms", 0), visits),
        # A page view may report engagement more than once (hidden, shown, hidden again):
        # per page view means per PV, not per report.
        "avg_engaged_ms_per_pageview": ratio(counters.get("engaged_ms", 0), pv),
        "avg_scroll_depth": ratio(counters.get("scroll_sum", 0), scrolls),
        "pv_per_100_visitors": ratio(100 * pv, uv),
        "pages_per_visitor": ratio(pv, uv),
        "bot_pv": counters.get("bot_pv", 0),
        "bot_hits": counters.get("bot_hits", 0),
        "events": _strip_prefix(counters, names.EVENT_COUNTER_PREFIX),
        "rejected": _strip_prefix(counters, names.REJECTED_PREFIX),
        # Counted events with a remark (flagged:foreign_origin: a page off the platform's domains).
        "flagged": _strip_prefix(counters, names.FLAGGED_PREFIX),
        **deep_figures(BucketReading(counters, hlls, catalogue_total)),
    }


def _strip_prefix(counters: dict[str, int], prefix: str) -> dict[str, int]:
    """The counters whose name starts with `prefix`, by the rest of their name."""
    return {name[len(prefix):]: n for name, n in counters.items() if name.startswith(prefix)}


def _hll_counts(counts: list[int]) -> dict[str, int]:
    """PFCOUNT answers in BUCKET_HLLS order, by suffix."""
    return dict(zip(BUCKET_HLLS, counts, strict=True))


def _add_into(total: dict[str, int], counts: dict[str, int]) -> None:
    for name, n in counts.items():
        total[name] = total.get(name, 0) + n


def _ints(raw: dict) -> dict[str, int]:
    return {_text(k): int(v) for k, v in raw.items()}


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


class StatsReader:
    def __init__(self, redis: aioredis.Redis, calendar: Calendar, clock: Callable[[], float]) -> None:
        self.redis = redis
        self.calendar = calendar
        self.clock = clock

    def parse(self, query) -> tuple[str, str, list[Bucket], list[str], int]:
        """(app or group id, granularity, buckets, breakdowns, limit); exactly one of app
        and group (which one: `subject_kind`)."""
        subject = query.get("app", "") or query.get("group", "")
        if not subject:
            raise BadQuery("app or group is required")
        if query.get("app") and query.get("group"):
            raise BadQuery("give app or group, not both")
        granularity = query.get("granularity", "day")
        if granularity not in GRANULARITIES:
            raise BadQuery("granularity must be one of " + ", ".join(GRANULARITIES))
        now = datetime.fromtimestamp(self.clock(), self.calendar.tz)
        try:
            start = self.calendar.parse_instant(query["from"]) if "from" in query else now
            end = self.calendar.parse_instant(query["to"]) if "to" in query else start if "from" in query else now
        except ValueError as exc:
            raise BadQuery(f"from/to: {exc}") from exc
        if end < start:
            raise BadQuery("to is before from")
        buckets = self.calendar.span(granularity, start, end)
        if len(buckets) > MAX_BUCKETS:
            raise BadQuery(f"more than {MAX_BUCKETS} buckets; use a coarser granularity")
        breakdowns = [b for b in query.get("breakdown", "").split(",") if b]
        unknown = [b for b in breakdowns if b not in BREAKDOWNS]
        if unknown:
            raise BadQuery(f"unknown breakdown {unknown[0]!r}; one of " + ", ".join(BREAKDOWNS))
        try:
            limit = int(query.get("limit", ROW_LIMIT))
        except ValueError:
            raise BadQuery("limit must be an integer") from None
        if not 1 <= limit <= MAX_ROW_LIMIT:
            raise BadQuery(f"limit must be 1..{MAX_ROW_LIMIT}")
        return subject, granularity, buckets, breakdowns, limit

    @staticmethod
    def subject_kind(query) -> str:
        """"group" when the query names a group, else "app"."""
        return "group" if query.get("group") and not query.get("app") else "app"

    async def read(self, apps: str | Sequence[str], granularity: str, buckets: list[Bucket], breakdowns: list[str],
                   limit: int = ROW_LIMIT, label: str | None = None, row_uv: bool = True) -> dict:
        """The figures of one app, or of several together (a group): counters summed over
        them, UVs the union of all their HyperLogLogs (a distinct count across the apps).
        `label` is the answer's `app` (default: the one app's name); without `row_uv` the
        page-view breakdowns' rows carry no UV (a report's region table needs only PV)."""
        apps = [apps] if isinstance(apps, str) else list(apps)
        g = granularity
        cells = [(app, b) for b in buckets for app in apps]
        if len(cells) > MAX_CELLS:
            raise BadQuery(f"{len(apps)} platforms over {len(buckets)} buckets are more than {MAX_CELLS} platform-buckets "
                           "a read may cover; ask a coarser granularity or a shorter period")
        pipe = self.redis.pipeline(transaction=False)
        for app, b in cells:
            pipe.hgetall(keys.counters(app, g, b.id))
        for app in apps:
            pipe.hgetall(keys.catalogue(app))
        results = await pipe.execute()
        counters_of = [_ints(raw) for raw in results[: len(cells)]]
        catalogue: dict[str, int] = {}
        for raw in results[len(cells) :]:
            _add_into(catalogue, _ints(raw))
        total = catalogue.get("total", 0)
        # One union per bucket and HLL (over the apps), then one per HLL over everything.
        unions = [[keys.bucket_key(app, g, b.id, suffix) for app in apps] for b in buckets for suffix in BUCKET_HLLS]
        unions += [[keys.bucket_key(app, g, b.id, suffix) for app, b in cells] for suffix in BUCKET_HLLS]
        counts = await self._unions(unions)
        width = len(BUCKET_HLLS)
        series: list[dict[str, Any]] = []
        total_counters: dict[str, int] = {}
        for i, b in enumerate(buckets):
            counters: dict[str, int] = {}
            for c in counters_of[i * len(apps) : (i + 1) * len(apps)]:
                _add_into(counters, c)
            _add_into(total_counters, counters)
            entry = {"bucket": b.label, "start": b.start}
            entry.update(derive(counters, _hll_counts(counts[width * i : width * (i + 1)]), catalogue_total=total))
            series.append(entry)
        out: dict[str, Any] = {
            "app": label if label is not None else apps[0] if apps else "",
            "granularity": g,
            "timezone": str(self.calendar.tz),
            "from": buckets[0].label,
            "to": buckets[-1].label,
            "totals": derive(total_counters, _hll_counts(counts[-width:]), catalogue_total=total),
            "series": series,
        }
        if breakdowns:
            out["breakdowns"], out["breakdown_rows"] = {}, {}
            scope = _Scope(apps, g, buckets, row_uv)
            await self._check_entries(scope, breakdowns)
            budget = ReadBudget()
            for dim in breakdowns:
                if dim in DEEP_BREAKDOWNS:
                    rows, total_rows = await self._deep_breakdown(scope, dim, limit, catalogue, budget)
                else:
                    rows, total_rows = await self._breakdown(scope, dim, limit, budget)
                out["breakdowns"][dim] = rows
                out["breakdown_rows"][dim] = total_rows  # before `limit` cut them
            if "region" in breakdowns:
                out["attribution"] = DBIP_ATTRIBUTION
        return out

    async def _unions(self, unions: list[list[str]]) -> list[int]:
        """PFCOUNT of each union (store/hll_union.py); BadQuery when Redis Cluster would need too many copies."""
        try:
            return await count_unions(self.redis, unions)
        except UnionTooLarge as exc:
            raise BadQuery(str(exc)) from None

    async def _check_entries(self, scope: _Scope, breakdowns: list[str]) -> None:
        """Refuse (ReadBudget) before reading when the breakdowns' hashes are too large in all."""
        pipe = self.redis.pipeline(transaction=False)
        for dim in breakdowns:
            for suffix in _hash_suffixes(dim):
                for key in scope.keys(suffix):
                    pipe.hlen(key)
        ReadBudget.check_entries(sum(await pipe.execute()))

    async def _summed_hash(self, scope: _Scope, suffix: str) -> dict[str, int]:
        """A hash of every bucket (of every app), summed field by field; read in chunks (api/topn.py)."""
        return _ints(await summed_fields(self.redis, scope.keys(suffix)))

    async def _deep_breakdown(
        self, scope: _Scope, dim: str, limit: int, catalogue: dict[str, int], budget: ReadBudget
    ) -> tuple[list[dict], int]:
        """The top `limit` rows of a deep-tag breakdown (features/figures.py DEEP_BREAKDOWNS),
        and how many rows there are in all."""
        breakdown = DEEP_BREAKDOWNS[dim]
        summed = await self._summed_hash(scope, keys.metrics_suffix(dim))
        rows = [breakdown.row(value, m) for value, m in split_metrics(summed).items()]
        rows.sort(key=breakdown.sort_key)
        total_rows = len(rows)
        rows = rows[:limit]
        budget.add_rows(rows)
        if dim in names.RESOURCE_DIMENSIONS and rows:
            labels = dim in names.RESOURCE_LABELS
            budget.count_hlls(len(rows) * len(scope.cells) * (2 if labels else 1))
            unions = []
            for row in rows:
                unions.append(scope.keys(keys.dimension_visitors_suffix(dim, row["value"])))
                if labels:
                    unions.append(scope.keys(keys.resources_suffix(dim, row["value"])))
            counts = iter(await self._unions(unions))
            for row in rows:
                row["viewers"] = next(counts)
                if labels:
                    seen = row["resources_viewed"] = next(counts)
                    known = catalogue.get(keys.metric_field(dim, row["value"]), 0)
                    row["catalogue_resources"] = known or None
                    row["avg_views_per_resource"] = ratio(row["views"], known or seen)
        return rows, total_rows

    async def upload_catalogue(self, app: str, fields: dict[str, int]) -> None:
        """Replace the app's catalogue (its true resource counts per dimension value)."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(keys.catalogue(app))
        mapping: dict[FieldT, EncodableT] = {name: n for name, n in fields.items()}  # (redis-py's Mapping key is invariant)
        pipe.hset(keys.catalogue(app), mapping=mapping)
        await pipe.execute()

    async def _breakdown(self, scope: _Scope, dim: str, limit: int, budget: ReadBudget):
        """The top `limit` rows of a page-view breakdown and how many rows there are in
        all; `region` answers each of REGION_LEVELS so (a dict of each)."""
        if dim == "region":
            levels = {level: await self._breakdown(scope, level, limit, budget) for level in REGION_LEVELS}
            return {level: rows for level, (rows, _) in levels.items()}, {level: n for level, (_, n) in levels.items()}
        top, total_rows = await top_fields(self.redis, scope.keys(keys.dimension_suffix(dim)), limit)
        rows: list[dict[str, Any]] = [{"value": _text(value), "pv": n} for value, n in top]  # JSON rows
        budget.add_rows(rows)
        if dim in pages.UV_DIMENSIONS and scope.row_uv:
            budget.count_hlls(len(rows) * len(scope.cells))
            unions = [scope.keys(keys.dimension_visitors_suffix(dim, row["value"])) for row in rows]
            for row, uv in zip(rows, await self._unions(unions), strict=True):
                row["uv"] = uv
        if dim in REGION_LEVELS:
            for row in rows:
                row.update(describe_region_key(*_region_parts(row["value"])))
        return rows, total_rows

    async def apps(self) -> list[str]:
        return sorted(_text(a) for a in await self.redis.smembers(keys.APPS))


class _Scope:
    """The (app, bucket) cells a read covers: one app's buckets, or those of every app of a group."""

    def __init__(self, apps: list[str], granularity: str, buckets: list[Bucket], row_uv: bool = True) -> None:
        self.granularity = granularity
        self.row_uv = row_uv
        self.cells = [(app, b.id) for b in buckets for app in apps]

    def keys(self, suffix: str) -> list[str]:
        return [keys.bucket_key(app, self.granularity, bucket_id, suffix) for app, bucket_id in self.cells]


def _hash_suffixes(dim: str) -> tuple[str, ...]:
    """The per-bucket hashes a breakdown reads."""
    if dim in DEEP_BREAKDOWNS:
        return (keys.metrics_suffix(dim),)
    return tuple(keys.dimension_suffix(level) for level in (REGION_LEVELS if dim == "region" else (dim,)))


def _region_parts(value: str) -> tuple[str, str, str]:
    parts = [("" if p == "(unknown)" else p) for p in value.split("/", 2)] + ["", ""]
    return parts[0], parts[1], parts[2]
