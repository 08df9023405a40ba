"""Media (JY/T table 4): plays and reading of videos, audio, textbooks and documents.

Per event: wall-clock time playing or reading (`wt`), progress boundaries passed, the
viewer and the distinct resource (HyperLogLogs), for the counters hash, the resource
and each of its labels (resources.py).

A session's distinct seconds, completion and first play cannot be summed per event:
`ws` is cumulative and a session's events reach different flushes and workers. They go
to Redis as session progress (facts.Session), and the flush script keeps each
session's best so far and counts only the difference (media_sessions.lua, beside this
module, loaded by store/flush_script.py).
"""

from __future__ import annotations

from importlib import resources as package_files
from string import Template
from typing import Final

from collector.features.facts import KEY_STRINGS, DeepFacts, EventScope, Session, Shared
from collector.features.reading import BucketReading, ratio
from collector.features.resources import Resource, label_targets, resource_of
from collector.hit.caps import OTHER
from collector.store import keys, names

HLLS = (keys.MEDIA_VIEWERS, keys.RESOURCES)


def event_facts(ev: dict, scope: EventScope) -> DeepFacts:
    """A media event's facts (its own: its time and session progress are the event's). Of a
    kept resource, they say which of its parts (Resource.metric) make up their increments: the
    boundary's increments of 1 (shared) and the time's fields, times the time (scaled), so
    the aggregator counts them by a lookup or two, not per increment."""
    action: str = ev["n"]
    resource = resource_of(ev, scope)
    wt = ev["wt"]  # (untyped: put into each increment as the event's int object, not boxed anew)
    # Per target, in order: its time, then its progress boundary (the journal's order). A
    # boundary's increments of 1 are the resource's, made once (Metric.units).
    incs: list[tuple[str, str, int]] = []
    boundary: Shared | None = None
    played: Shared | None = None
    if action == "progress":
        progress = resource.metric(_progress_metric(ev["pb"]))
        boundary = progress.part
        if wt:
            watched = resource.metric("watch_ms")
            played = watched.part
            units = progress.units
            at = 0
            for suffix, field in watched.fields:
                incs.append((suffix, field, wt))
                incs.append(units[at])
                at += 1
        else:
            incs.extend(progress.units)
    elif wt:
        timed = resource.metric("read_ms" if action == "read" else "watch_ms")
        played = timed.part
        for suffix, field in timed.fields:
            incs.append((suffix, field, wt))
    members = resource.media_members
    if members is None or resource.members_scope is not scope:  # (made for another visitor)
        members = resource.media_members = _members(resource, scope)
        resource.members_scope = scope
    started = 1 if action == "play" or action == "read" else 0  # the actions that make a session a view
    # Sessions beyond the app's cap of the day share one, (other): their time and progress
    # events count above, but not their views and completion (the session hash stays bounded).
    session = Session(_session(resource, scope, ev["ms"]), ev["ws"], ev.get("dur", 0), started, resource.targets)
    # The members' list is the resource's for this scope, shared (DeepFacts are never changed).
    return DeepFacts(incs, members, session, boundary, played, wt)


def _session(resource: Resource, scope: EventScope, ms: str) -> str:
    """The session id `ms` as the caps admit it. The resource keeps the last one admitted
    as itself (whoever's: compared with `ms`): a request's media events of a resource are
    nearly all of one session."""
    last = resource.session
    if last is not None and last[0] == ms:
        return last[1]
    admitted = scope.admit("session", ms)
    if admitted != OTHER:
        resource.session = (ms, admitted)
    return admitted


class MediaKeys:
    """A resource's media HyperLogLogs that are the same whoever views it, made once
    (Resource.media_keys): the viewers' key suffixes (the app's media, the resource, each
    label's value) and the resource's own members (among the app's resources, each label
    value's). Each request (a new visitor: _members) made them again, ~7,000 instructions
    (bench/RESULTS.md, session 26)."""

    __slots__ = ("viewers", "resources")

    def __init__(self, targets: tuple[tuple[str, str], ...], rid: str) -> None:
        self.viewers: tuple[str, ...] = tuple(
            KEY_STRINGS.viewers_suffix(dim, value) if dim else keys.MEDIA_VIEWERS for dim, value in targets
        )
        # Distinct resources are HyperLogLogs, a few KB however many ids: the raw id, not capped.
        resources = [(keys.RESOURCES, rid, rid)]
        for dim, value in label_targets(targets):
            resources.append((KEY_STRINGS.resources_suffix(dim, value), rid, rid))
        self.resources: tuple[tuple[str, str, str], ...] = tuple(resources)


def _members(resource: Resource, scope: EventScope) -> list[tuple[str, str, str]]:
    """A media event's HyperLogLog members: the viewer of the app's media, of the resource,
    of each label's value; then the resource among the app's, the label values' resources."""
    media_keys: MediaKeys | None = resource.media_keys  # (typed Any there: resources.py cannot import this module)
    if media_keys is None:
        media_keys = resource.media_keys = MediaKeys(resource.targets, resource.rid)
    visitor, month_visitor = scope.visitor_members()
    members = [(suffix, visitor, month_visitor) for suffix in media_keys.viewers]
    members.extend(media_keys.resources)
    return members


# A progress event's metric by its boundary (validated: one of PROGRESS_BOUNDARIES), made once.
PROGRESS_METRICS: Final[dict[int, str]] = {pb: names.progress_metric(pb) for pb in names.PROGRESS_BOUNDARIES}


def _progress_metric(pb: int) -> str:
    found = PROGRESS_METRICS.get(pb)
    return found if found is not None else names.progress_metric(pb)


# ---- figures ------------------------------------------------------------------------


def row_figures(m: dict[str, int]) -> dict:
    """Views, time and completion of a set of media sessions (a bucket, a resource, ...)."""
    sessions = m.get("completion_n", 0)
    return {
        "views": m.get("views", 0),
        "watch_ms": m.get("watch_ms", 0),
        "read_ms": m.get("read_ms", 0),
        "watched_s": m.get("watched_s", 0),
        "completion": {
            "sessions": sessions,
            "avg": ratio(m.get("completion_milli", 0), 1000 * sessions),
            "histogram": {
                f"{lo}-{hi}": m.get(names.completion_bin_metric(lo, hi), 0) for lo, hi in names.COMPLETION_BINS
            },
            "completed": m.get("completed", 0),
            "completed_rate": ratio(m.get("completed", 0), sessions),
        },
        "progress": {str(pb): m.get(names.progress_metric(pb), 0) for pb in names.PROGRESS_BOUNDARIES},
    }


def figures(reading: BucketReading) -> dict:
    """The `media` figures of a bucket or range."""
    media = row_figures(reading.counters)
    resources = reading.hlls[keys.RESOURCES]
    catalogue_total = reading.catalogue_total
    media["viewers"] = reading.hlls[keys.MEDIA_VIEWERS]
    media["resources_viewed"] = resources
    media["avg_views_per_resource"] = ratio(media["views"], catalogue_total or resources)
    # The standard's 资源总数 (table 4 row 1): the uploaded catalogue's total, None without one.
    media["catalogue_resources"] = catalogue_total or None
    return media


# ---- the flush script's part ----------------------------------------------------------


def sessions_lua() -> str:
    """media_sessions.lua with the completion bins of store/names.py filled in."""
    source = package_files.files("collector.features").joinpath("media_sessions.lua").read_text(encoding="utf-8")
    return Template(source).substitute(completion_bins=_lua_completion_bins())


def _lua_completion_bins() -> str:
    """{{upper bound as a fraction of the duration, field}, ...}, lowest bin first."""
    bins = (f"{{{hi / 100!r}, '{names.completion_bin_metric(lo, hi)}'}}" for lo, hi in names.COMPLETION_BINS)
    return "{" + ", ".join(bins) + "}"
