"""`GET /metrics`: the collector's figures in Prometheus's text format.

**Several workers, one answer.** With `--workers N` the workers share one port
(SO_REUSEPORT): a scrape reaches whichever worker the kernel picks, and each knows only
its own counters. So every worker publishes a snapshot of its figures, once a second,
to `DATA_DIR/metrics/wN.json` (an atomic rename), and whichever worker is scraped
answers for all of them: its own figures live, the others' from their snapshots, each
series labelled `worker="N"`. Every scrape through the shared port thus gives the whole
deployment's figures (at most PUBLISH_EVERY old for the other workers), and a
worker's counters are still its own series — a restarted worker's counters start at 0
again without making a sum of all workers go backwards, which Prometheus' rate() reads
as a reset of that series alone. Sum over `worker` in queries.

Why not prometheus_client's multiprocess mode: every observation goes through its
mmap'ed values and their lock, a cost the hit fast path cannot pay per request; it
needs an environment variable set before the import, and leaves the files of dead
workers to clean up. Nor one endpoint per worker: the port is shared, so a worker
cannot be addressed, and a second port per worker would need to be configured and
opened. Here the hit path keeps plain ints (http_limits.HttpStats, histogram.py) and
every figure is read when a snapshot is made; the sources are those /api/collector
and /readyz answer from (health.backlog), counted once.

**Labels** come from fixed sets only: answer status codes, rejection reasons (the
protocol's and the registry's own names), cap kinds, cache names, worker numbers —
never a client's value or an app key.

**Access**: like /api/collector (stats_routes.operator_refusal): open on a
loopback-only collector, otherwise the `api_token` or an admin token as a Bearer token
(Prometheus: `authorization: {credentials: ...}`).

**Adding a figure**: write a function `(app) -> Iterable[Family]` and add it to
SOURCES; the snapshot, the files, the worker label and the exposition follow.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import resource
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from aiohttp import web
from prometheus_client.core import Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

from collector import native
from collector.histogram import Histogram
from collector.store.build_worker import THREAD_BUILD_REASONS
from collector.store.periodic import Periodic
from collector.web.appkeys import (
    AGGREGATOR,
    FLUSHER,
    GEO,
    HTTP_STATS,
    INGEST,
    METRICS_BOARD,
    REDIS_OUTAGE,
    SETTINGS,
    WORKER_NUMBER,
)
from collector.web.health import backlog
from collector.web.stats_routes import operator_refusal

log = logging.getLogger(__name__)

PREFIX = "edubeacon_"
PUBLISH_EVERY = 1.0  # seconds between a worker's snapshots
# A snapshot older than this is a worker that is gone (or stuck): left out of scrapes,
# so a stopped deployment's last figures are not served for ever.
STALE_AFTER = 15.0
# A label value that is not one of the code's own names (a reason, a phase) is not shown as is.
SAFE_LABEL = re.compile(r"^[a-z][a-z0-9_:]{0,47}$")
# The text format generate_latest writes; named outright, as every Prometheus version reads it.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class Family:
    """One metric: name (PREFIX added; counters without `_total`, which the samples carry),
    type (counter, gauge, histogram), help, and its samples (suffix, labels, value)."""

    name: str
    type: str
    help: str
    samples: list[tuple[str, dict[str, str], float]] = field(default_factory=list)

    def add(self, value: float, suffix: str = "", **labels: str) -> Family:
        self.samples.append((suffix, labels, value))
        return self

    def as_json(self) -> list:
        return [self.name, self.type, self.help, self.samples]

    @classmethod
    def from_json(cls, data: list) -> Family:
        name, typ, help_text, samples = data
        return cls(name, typ, help_text, [(s, dict(labels), v) for s, labels, v in samples])


def counter(name: str, help_text: str, value: float | None = None) -> Family:
    family = Family(name, "counter", help_text)
    return family.add(value, "_total") if value is not None else family


def gauge(name: str, help_text: str, value: float | None = None) -> Family:
    family = Family(name, "gauge", help_text)
    return family.add(value) if value is not None else family


def histogram(name: str, help_text: str, hist: Histogram) -> Family:
    family = Family(name, "histogram", help_text)
    for le, n in hist.cumulative():
        family.add(n, "_bucket", le=le)
    family.add(hist.count, "_count")
    family.add(hist.sum, "_sum")
    return family


def safe_label(value: str) -> str:
    return value if SAFE_LABEL.match(value) else "other"


# ---- the sources ---------------------------------------------------------------------

OUTCOMES = {200: "ok", 204: "ok", 400: "rejected", 413: "rejected", 503: "unavailable"}


def hit_requests(app: web.Application) -> Iterable[Family]:
    http = app[HTTP_STATS]
    requests = counter("hit_requests", "Requests to /c answered, by outcome and HTTP status (preflights included).")
    for status, n in sorted(http.hit_answers.items()):
        requests.add(n, "_total", outcome=OUTCOMES.get(status, "error"), code=str(status))
    yield requests
    yield histogram(
        "hit_request_duration_seconds",
        "Seconds from a hit's head parsed to its answer made, in this process (queueing before it excluded).",
        http.hit_seconds,
    )


def events(app: web.Application) -> Iterable[Family]:
    taken, reasons = app[AGGREGATOR].totals()
    yield counter("events_accepted", "Events counted (acknowledged and journaled).", taken)
    rejected = counter("events_rejected", "Events (or whole requests) rejected, by reason.")
    flagged = counter("events_flagged", "Counted events carrying a remark, by reason.")
    for reason, n in sorted(reasons.items()):
        kind, _, name = reason.partition(":") if reason.startswith("flagged:") else ("", "", reason)
        (flagged if kind else rejected).add(n, "_total", reason=safe_label(name))
    yield rejected
    yield flagged
    capped = counter("events_capped", "Values counted under (other) because a cardinality cap was full, by kind.")
    for kind, n in sorted(app[INGEST].caps.overflowed.items()):
        capped.add(n, "_total", kind=safe_label(kind))
    yield capped


def flush_and_journal(app: web.Application) -> Iterable[Family]:
    """The figures /api/collector answers (health.backlog), as metrics."""
    b = backlog(app)
    yield counter("flushes", "Batches applied to Redis.", b["flushes"])
    yield counter("flush_retries", "Failed flush attempts (each is retried; the journal keeps the events).",
                  b["flush_retries"])
    yield counter("flush_round_trips", "Redis round trips made by flushes.", b["flush_round_trips"])
    yield counter("events_flushed", "Events applied to Redis.", b["events_flushed"])
    yield counter("flush_early_seals", "Batches sealed early because they grew past batch_max_cells.", b["early_seals"])
    yield counter("flush_paced_seconds", "Seconds flush builds slept so the hit loop kept the CPU (flush_cpu_share).",
                  b["flush_paced_seconds"])
    yield counter("flush_parts_built_apart", "Batch parts whose commands the build process built (flush_build_process).",
                  b["flush_parts_built_apart"])
    yield counter("flush_parts_built_in_thread", "Batch parts whose commands the flusher's thread built.",
                  b["flush_parts_built_in_thread"])
    why = counter("flush_thread_builds", "Batch parts built in the flusher's thread while a build process runs, by "
                  "reason: behind (batches pending), starting, busy (finishing a late part), late, failed.")
    for reason in THREAD_BUILD_REASONS:
        why.add(b[f"flush_parts_built_in_thread_{reason}"], "_total", reason=reason)
    yield why
    yield counter("journal_batches_recovered", "Batches found in the journal at start and replayed.",
                  b["batches_recovered"])
    yield counter("flush_batches_rebuilt", "This run's batches that waited on disk and were rebuilt from the journal.",
                  b["batches_rebuilt"])
    yield counter("flush_events_rebuilt", "Events of the batches rebuilt from the journal (flush_batches_rebuilt).",
                  b["events_rebuilt"])
    yield counter("flush_batches_spilled", "This run's queued batches whose packed parts waited in a spill file.",
                  b["batches_spilled"])
    yield counter("flush_spills_lost", "Spill files that could not be read back (their batches rebuilt from the journal).",
                  b["spills_lost"])
    yield histogram("flush_duration_seconds", "Seconds to apply one batch to Redis.", _flusher_durations(app))
    yield gauge("flush_last_success_timestamp_seconds", "Unix time of the last batch applied (0: none yet).",
                b["last_flush"] or 0)
    yield gauge("flush_backlog_batches", "Batches sealed and not yet in Redis.", b["pending_flushes"])
    yield gauge("flush_backlog_age_seconds", "Seconds the oldest batch not yet in Redis has waited.",
                b["backlog_age_s"])
    yield gauge("flush_backlog_events", "Events counted in memory and not yet in Redis.", b["pending_events"])
    if b["journal_bytes"] is not None:
        yield gauge("journal_bytes", "Bytes of journal on disk (events not yet in Redis).", b["journal_bytes"])
        yield gauge("journal_max_bytes", "The journal's disk budget (journal_max_bytes).", b["journal_max_bytes"])
    yield counter("journal_records_quarantined", "Journal records replay could not decode (set aside).",
                  b["records_quarantined"])
    redis_errors = counter("redis_errors", "Redis commands that failed, by what needed them.")
    redis_errors.add(b["flush_retries"], "_total", operation="flush")
    redis_errors.add(app[REDIS_OUTAGE].errors, "_total", operation="read")
    yield redis_errors


def _flusher_durations(app: web.Application) -> Histogram:
    return app[FLUSHER].stats.durations


def http_connections(app: web.Application) -> Iterable[Family]:
    http = app[HTTP_STATS]
    yield gauge("http_connections_open", "Client connections open (as of the last second's tick).",
                http.open_connections)
    yield gauge("http_connections_max", "Connections this process takes (max_connections, or the file limit).",
                http.max_connections)
    yield counter("http_connections_refused", "Connections answered 503 at the connection cap.", http.refused)
    yield counter("http_connections_evicted", "Idle connections closed at the cap to make room.", http.evicted)
    timeouts = counter("http_timeouts", "Connections closed at a deadline, by the phase they were in.")
    for phase, n in sorted(http.timed_out.items()):
        timeouts.add(n, "_total", phase=safe_label(phase))
    yield timeouts
    malformed = counter("http_malformed_requests", "Requests aiohttp could not parse (answered 400), by reason.")
    for reason, n in sorted(http.malformed.items()):
        malformed.add(n, "_total", reason=safe_label(reason))
    yield malformed


def process_state(app: web.Application) -> Iterable[Family]:
    """What each process keeps in memory, and how big it is."""
    ingest = app[INGEST]
    entries = gauge("cache_entries", "Entries held by a per-process cache.")
    capacity = gauge("cache_capacity_entries", "Entries a per-process cache may hold.")
    lookups = counter("cache_lookups", "Lookups in a per-process cache, by result.")
    caches = [("device", ingest.devices.cache_info()), ("device_memo", ingest.devices.memo_info())]
    geo = app[GEO]
    if geo is not None:
        caches.append(("geo", geo.cache_info()))
    for name, info in caches:
        entries.add(info.currsize, cache=name)
        capacity.add(info.maxsize or 0, cache=name)
        lookups.add(info.hits, "_total", cache=name, result="hit")
        lookups.add(info.misses, "_total", cache=name, result="miss")
    yield from (entries, capacity, lookups)
    state = gauge("state_entries", "Entries of per-process state kept between hits.")
    state.add(len(ingest.visits), state="visit_tracker")
    state.add(len(ingest.recent_ids), state="recent_event_ids")
    state.add(len(ingest.admission.offenders), state="registry_offenders")
    state.add(app[AGGREGATOR].pending_cells, state="aggregator_cells")
    yield state
    yield gauge("process_resident_memory_bytes", "Resident memory of this process.", _resident_bytes())
    yield gauge("native_modules", "1 when the hot modules run compiled by mypyc (collector/native.py), 0 as pure Python.",
                int(native.in_use()))


def guards(app: web.Application) -> Iterable[Family]:
    """The rate limits', the UV guard's and the re-send dedupe's own figures (their
    refusals and flags per app are already in events_rejected / events_flagged)."""
    ingest = app[INGEST]
    state = gauge("guard_entries", "Entries held by a per-process guard (rate-limit buckets, UV guard identities).")
    limits = ingest.limits
    for name, table in (("client", limits.client), ("address", limits.address), ("app", limits.app)):
        if table is not None:
            state.add(len(table), guard=f"rate_limit_{name}")
    if ingest.uv_guard is not None:
        state.add(len(ingest.uv_guard), guard="uv_guard")
    yield state
    yield counter("uv_guard_unjudged", "Identities counted without the UV guard's judgement (its minute's memory was full).",
                  ingest.uv_guard.unjudged if ingest.uv_guard is not None else 0)
    stats = app[FLUSHER].stats
    resent = counter("resent_events", "Re-sent events (re=1) checked against their first send, by outcome.")
    resent.add(stats.resent_admitted, "_total", outcome="admitted")
    resent.add(stats.resent_duplicates, "_total", outcome="duplicate")
    yield resent
    yield counter("resent_unchecked_waits", "Times other writers did not catch up within dedupe_hold_max.",
                  stats.resent_unchecked_waits)


def _resident_bytes() -> int:
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):  # not Linux: the peak is what there is
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


SOURCES: tuple[Callable[[web.Application], Iterable[Family]], ...] = (
    hit_requests,
    events,
    flush_and_journal,
    http_connections,
    process_state,
    guards,
)


def snapshot(app: web.Application) -> list[Family]:
    return [family for source in SOURCES for family in source(app)]


# ---- publishing and answering --------------------------------------------------------


class MetricsBoard:
    """This worker's snapshots in DATA_DIR/metrics, and everyone's when scraped."""

    def __init__(self, app: web.Application, directory: Path, worker: int, workers: int) -> None:
        self.app = app
        self.directory = directory
        self.worker = worker
        self.workers = workers
        self._loop = Periodic("metrics", self._publish, PUBLISH_EVERY)
        self._failed = False

    def start(self) -> None:
        self._loop.start()

    async def close(self) -> None:
        await self._loop.close()
        self._remove_own()  # a worker stopped on purpose: its figures leave with it

    async def _publish(self) -> float:
        # The figures are read on the loop (consistent), the file is written in a thread:
        # writing it and renaming it over the last one took 1 to 5 ms of the hit loop's
        # time each second on ext4 (issue 17, bench/RESULTS.md session 8).
        await asyncio.to_thread(self._write, self._snapshot_bytes())
        return PUBLISH_EVERY

    def publish(self) -> None:
        self._write(self._snapshot_bytes())

    def _snapshot_bytes(self) -> bytes:
        return orjson.dumps({"at": time.time(), "families": [f.as_json() for f in snapshot(self.app)]})

    def _write(self, body: bytes) -> None:
        path = self._path(self.worker)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(".tmp")
            temporary.write_bytes(body)
            temporary.replace(path)  # atomic: a scrape never reads half a snapshot
            self._failed = False
        except OSError as exc:
            if not self._failed:  # once per run of failures, not every second
                log.warning("metrics: cannot publish this worker's snapshot to %s: %s", path, exc)
            self._failed = True

    def everyone(self) -> Iterator[tuple[int, float, list[Family]]]:
        """(worker, snapshot age in seconds, families): this worker's live, the others' as published."""
        yield self.worker, 0.0, snapshot(self.app)
        now = time.time()
        for other in range(self.workers):
            if other == self.worker:
                continue
            try:
                data = orjson.loads(self._path(other).read_bytes())
            except (OSError, ValueError):
                continue  # not started yet, or gone
            age = max(now - data["at"], 0.0)
            if age <= STALE_AFTER:
                yield other, age, [Family.from_json(f) for f in data["families"]]

    def _path(self, worker: int) -> Path:
        return self.directory / f"w{worker}.json"

    def _remove_own(self) -> None:
        try:
            self._path(self.worker).unlink(missing_ok=True)
        except OSError:
            pass


class DeploymentCollector(Collector):
    """prometheus_client's view of every worker's families, each sample labelled with its worker."""

    def __init__(self, board: MetricsBoard) -> None:
        self.board = board

    def collect(self) -> Iterator[Metric]:
        merged: dict[str, Metric] = {}
        ages = Metric(PREFIX + "metrics_snapshot_age_seconds", "Age of each worker's figures in this answer.", "gauge")
        for worker, age, families in self.board.everyone():
            label = str(worker)
            ages.add_sample(ages.name, {"worker": label}, round(age, 3))
            for family in families:
                name = PREFIX + family.name
                metric = merged.get(name)
                if metric is None:
                    metric = merged[name] = Metric(name, family.help, family.type)
                for suffix, labels, value in family.samples:
                    metric.add_sample(name + suffix, {"worker": label, **labels}, value)
        yield ages
        yield from merged.values()


def add_metrics_routes(app: web.Application) -> None:
    app.router.add_get("/metrics", metrics)


async def metrics_ctx(app: web.Application) -> AsyncIterator[None]:
    """This worker's snapshots, published from startup to cleanup. Last of app.RESOURCES:
    its figures come from every resource before it, and it stops before they do."""
    settings = app[SETTINGS]
    directory = Path(settings.data_dir) / "metrics"
    board = app[METRICS_BOARD] = MetricsBoard(app, directory, app[WORKER_NUMBER], settings.workers)
    board.publish()
    board.start()
    yield
    await board.close()


async def metrics(request: web.Request) -> web.Response:
    refused = await operator_refusal(request)
    if refused is not None:
        return refused
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DeploymentCollector(request.app[METRICS_BOARD]))
    return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE})
