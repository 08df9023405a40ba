"""Resources (videos, audio, textbooks, documents): the targets a media or interaction
event counts under, and the catalogue a platform uploads of how many it has.

A resource's counts go to the counters hash, to the resource's own row and to a row of
each label it carries (type, subject, stage, source): the breakdowns of
docs/redis-keys.md's `m:resource` … `m:source`.
"""

from __future__ import annotations

from typing import Any, Final, cast

from collector.features.facts import KEY_STRINGS, DeepFacts, EventScope, Shared
from collector.hit.caps import OTHER
from collector.store import keys, names

RESOURCE_TYPES: Final = frozenset({"video", "audio", "textbook", "document"})
# Event field -> the label dimension it fills. (resource_of reads these fields out, for speed:
# a field added here goes there and to Resource's name too, or two resources differing in it
# would share targets.)
LABEL_FIELDS: Final = (("subj", "subject"), ("stage", "stage"), ("src", "source"))
CATALOGUE_NAME_MAX = 128


# Resources an app's day keeps (Resource, EventScope.resources) before it starts afresh: a
# request's events name a few (the bench's batches one a page), its pages a catalogue.
RESOURCES_KEPT: Final = 256


class Metric:
    """What an event naming a resource adds to one metric of each of its targets (resource
    targets, in order), made once per resource and metric (Resource.metric): where the metric
    is added (fields), the increments of 1 to it (units: KEY_STRINGS.unit_inc's, added to an
    event's facts as they are), and, of a kept resource, those as one Shared (part) and as
    whole facts (facts: an event adding 1 and nothing else, such as a like), which the events
    naming the resource share (DeepFacts.shared, .scaled). None of a resource not kept: an
    event naming it then counts its own increments.
    One object where a media event looked up each of these by the metric's name (~150
    instructions a lookup, 2 or 3 an event: bench/RESULTS.md, session 26)."""

    __slots__ = ("fields", "units", "part", "facts")

    def __init__(self, targets: tuple[tuple[str, str], ...], metric: str, kept: bool) -> None:
        self.units: tuple[Any, ...] = tuple(KEY_STRINGS.unit_inc(dim, metric, value) for dim, value in targets)
        self.fields: tuple[tuple[str, str], ...] = tuple((suffix, field) for suffix, field, _ in self.units)
        self.part: Shared | None = None
        self.facts: DeepFacts | None = None
        if kept:
            part = self.part = Shared(list(self.units))
            self.facts = DeepFacts(part.incs, [], shared=part)


class Resource:
    """A resource as an app's day's events name it (EventScope.resources): its targets
    (resource_targets), and what is made of them, made once. A batch's media and interaction
    events nearly all name their page's resource, and each one admitted it and its labels
    in the caps and looked up its key strings again (bench/RESULTS.md, session 19); each
    request made it anew until session 21.
    Kept only when no target value went to (other): each such event must still be counted
    as overflowing (caps.admit), and admitted values stay admitted while the scope's caps
    generation holds."""

    __slots__ = (
        "rid", "rt", "subj", "stage", "src", "targets", "_metrics", "kept", "media_keys", "media_members",
        "members_scope", "session",
    )

    def __init__(self, rid: str, rt: str, subj: str, stage: str, src: str, targets: tuple[tuple[str, str], ...]) -> None:
        # The event fields it was made of (resource_of's; "" for an absent label).
        self.rid, self.rt, self.subj, self.stage, self.src = rid, rt, subj, stage, src
        self.targets = targets
        self._metrics: dict[str, Metric] = {}
        # Whether resource_of keeps it (no value of it went to (other)): only then are its
        # parts and facts shared by the events naming it (an event whose value went to
        # (other) is counted on its own, as the memos' entries: facts.py EventScope.memo).
        self.kept = False
        # features/media.py's: its HyperLogLog keys and members that are the same whoever
        # views it (made once), and its members for a visitor: those of the scope they were
        # made in (members_scope, compared by identity).
        self.media_keys: Any = None
        self.media_members: list[tuple[str, str, str]] | None = None
        self.members_scope: EventScope | None = None
        # media.count's last session id (`ms`) and what the caps admitted it as, when itself.
        self.session: tuple[str, str] | None = None

    def named(self, rid: str, rt: str, subj: str, stage: str, src: str) -> bool:
        """Whether these are the fields it was made of (compared as strings: a tuple of them,
        made and compared per event, cost ~1,000 instructions)."""
        return rid == self.rid and rt == self.rt and subj == self.subj and stage == self.stage and src == self.src

    def metric(self, metric: str) -> Metric:
        """Its Metric of `metric`, made once (the resource's `kept` is settled by then:
        resource_of sets it before handing the resource out)."""
        found = self._metrics.get(metric)
        if found is None:
            found = self._metrics[metric] = Metric(self.targets, metric, self.kept)
        return found

    def unit_facts(self, metric: str) -> DeepFacts:
        """The facts of an event adding 1 to `metric` of each target (an interaction's, such
        as a like): one DeepFacts, shared by the events naming the resource while it is kept;
        of a resource not kept (made for this one event), its own."""
        made = self.metric(metric)
        facts = made.facts
        return facts if facts is not None else DeepFacts(list(made.units), [])


def resource_of(ev: dict, scope: EventScope) -> Resource:
    """The event's resource: the one kept by `scope` for the same fields, else a new one
    (resource_targets), kept unless a value of it went to (other)."""
    # rid, rt and LABEL_FIELDS, each read once. An absent label and an empty one are alike
    # (resource_targets counts neither); validated, each present one is a string.
    rid: str = ev["rid"]
    rt: str = ev.get("rt") or ""
    subj: str = ev.get("subj") or ""
    stage: str = ev.get("stage") or ""
    src: str = ev.get("src") or ""
    # The scope's last resource first: a request's events nearly all name the same one, and
    # comparing the fields' strings with its own is cheaper than hashing them for the lookup.
    last = scope.current_resource()
    if last is not None and cast(Resource, last).named(rid, rt, subj, stage, src):
        return cast(Resource, last)
    kept = scope.resources()
    key = (rid, rt, subj, stage, src)
    found = kept.get(key)
    if found is not None:
        scope.last_resource = found
        return cast(Resource, found)
    resource = Resource(rid, rt, subj, stage, src, resource_targets(scope, rid, rt, subj, stage, src))
    if all(value != OTHER for _, value in resource.targets):
        if len(kept) >= RESOURCES_KEPT:
            kept.clear()
        kept[key] = resource
        resource.kept = True
        scope.last_resource = resource
    return resource


def resource_targets(scope: EventScope, rid: str, rt: str, subj: str, stage: str, src: str) -> tuple[tuple[str, str], ...]:
    """Where a resource's counts go: the counters hash (""), the resource, each label it has."""
    targets = [("", ""), ("resource", scope.admit("resource", rid))]
    if rt:
        targets.append(("rtype", rt if rt in RESOURCE_TYPES else "other"))
    for value, (_, dim) in zip((subj, stage, src), LABEL_FIELDS, strict=True):
        if value:
            targets.append((dim, scope.admit("label", value)))
    return tuple(targets)


def label_targets(targets: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """The label targets among resource_targets (after the counters hash and the resource)."""
    return targets[2:]


def parse_catalogue(body: object) -> dict[str, int]:
    """An uploaded catalogue — {"total": N, "rtype": {"video": N, ...}, "subject": {...}, ...}
    — as fields of the catalogue hash. Raises ValueError naming what is wrong."""
    if not isinstance(body, dict) or not body:
        raise ValueError("expected a JSON object: {\"total\": n, \"rtype\": {\"video\": n}, ...}")
    fields: dict[str, int] = {}
    for dim, counts in body.items():
        if dim == "total":
            if type(counts) is not int or counts < 0:
                raise ValueError("total must be a non-negative integer")
            fields["total"] = counts
            continue
        if dim not in names.RESOURCE_LABELS:
            raise ValueError(f"unknown dimension {dim!r}; one of total, " + ", ".join(names.RESOURCE_LABELS))
        if not isinstance(counts, dict):
            raise ValueError(f"{dim} must map values to resource counts")
        for value, n in counts.items():
            if type(n) is not int or n < 0 or len(value) > CATALOGUE_NAME_MAX:
                raise ValueError(f"{dim}.{value[:40]}: a non-negative integer count, names up to {CATALOGUE_NAME_MAX} characters")
            fields[keys.metric_field(dim, value)] = n
    return fields
