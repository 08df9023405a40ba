"""A request's resources made once (features/resources.py Resource, session 19): the deep
facts of media and interaction events are the same as when every event makes its own.

The reference is a new DeepCounter for every event (so no Resource is ever found again);
the counter under test shares one scope across a batch, as a request's events do. Both have caps of their own with the same
small limits, so that resources and labels go to (other) partway through: each event's facts
(as the journal writes them) and the events counted as overflowing must agree.
"""

from __future__ import annotations

import random

from collector.features.deep import DeepCounter
from collector.features.resources import RESOURCES_KEPT
from collector.hit.caps import OTHER, CardinalityCaps
from collector.hit.protocol import PROGRESS_BOUNDARIES, validate_event

LIMITS = {"resource": 3, "label": 4, "session": 5, "target": 3, "component": 3}
VISITOR, MONTH_VISITOR = b"\x01" * 16, b"\x02" * 16


def events(rng: random.Random, n: int) -> list[dict]:
    out = []
    for _ in range(n):
        rid = rng.choice(["r1", "r2", "r3", "r4", "r5"])
        labels = {name: rng.choice(["a", "b", "c", "d", "e", "f", ""]) for name in ("rt", "subj", "stage", "src")
                  if rng.random() < 0.7}
        if rng.random() < 0.7:
            action = rng.choice(["play", "pause", "seek", "progress", "ping", "ended", "read"])
            event = {"k": "app", "t": "media", "n": action, "rid": rid, "ms": rng.choice(["m1", "m2"]) + rid,
                     "pos": rng.randrange(0, 100), "ws": rng.randrange(0, 100), "wt": rng.choice([0, 1, 5000]),
                     "dur": 100, **labels}
            if action == "progress":
                event["pb"] = rng.choice(sorted(PROGRESS_BOUNDARIES))
        else:
            action = rng.choice(["rate", "like", "share", "favorite", "comment"])
            event = {"k": "app", "t": "interaction", "n": action, "rid": rid, **labels}
            if action == "rate":
                event["score"] = rng.randrange(1, 6)
        assert not validate_event(dict(event)), event
        out.append(event)
    return out


def facts_json(counter: DeepCounter, event: dict, shared: bool) -> object:
    # Not shared: a new counter with the same caps, so no memo of its app's day (its
    # resources: session 21) and another scope every event.
    if not shared:
        counter = DeepCounter(counter.caps)
    facts = counter.facts(event, "app", "2026-12-01", VISITOR, MONTH_VISITOR, None)
    return facts.as_json() if facts is not None else None


def test_a_batchs_resources_made_once_give_the_facts_of_each_event_made_alone():
    """Fails when a Resource whose value went to (other) is kept (tried): its later events
    are no longer counted as overflowing."""
    rng = random.Random(19)
    for batch in range(40):
        shared_caps, alone_caps = CardinalityCaps(dict(LIMITS)), CardinalityCaps(dict(LIMITS))
        shared, alone = DeepCounter(shared_caps), DeepCounter(alone_caps)
        for event in events(rng, 60):
            assert facts_json(shared, event, True) == facts_json(alone, event, False), (batch, event)
        assert shared_caps.overflowed == alone_caps.overflowed, batch
        assert shared_caps.overflowed["resource"] + shared_caps.overflowed["label"] > 0  # (other) was reached


def test_a_resource_is_made_again_once_the_caps_may_answer_otherwise():
    """A refusal learnt between two events of one scope (the caps' generation moves): the
    second event's resource goes to (other) as the caps now say. Fails with the kept
    Resource used regardless (tried)."""
    caps = CardinalityCaps(dict(LIMITS))
    counter = DeepCounter(caps)
    event = {"k": "app", "t": "interaction", "n": "like", "rid": "r1"}
    first = counter.facts(event, "app", "2026-12-01", VISITOR, MONTH_VISITOR, None)
    assert first is not None and any("r1" in field for _, field, _ in first.incs)
    caps.learn("resource", "app", "2026-12-01", {"r1"})
    again = counter.facts(dict(event), "app", "2026-12-01", VISITOR, MONTH_VISITOR, None)
    assert again is not None and not any("r1" in field for _, field, _ in again.incs)
    assert any(OTHER in field for _, field, _ in again.incs)


def test_a_scope_keeps_a_bounded_number_of_resources():
    counter = DeepCounter(CardinalityCaps({"resource": 10**6, "label": 10**6, "session": 10**6}))
    for n in range(RESOURCES_KEPT * 3):
        counter.facts({"k": "app", "t": "interaction", "n": "like", "rid": f"r{n}"}, "app", "d", VISITOR, MONTH_VISITOR,
                      None)
    scope = counter._scope
    assert scope is not None and 0 < len(scope.resources()) <= RESOURCES_KEPT


def test_a_resource_named_again_and_again_gives_the_facts_of_each_event_made_alone():
    """A request's events in runs naming the same resource, as real batches do: the scope's
    last resource (resource_of) is found without a lookup, and a run of another resource, or
    the same one with other labels, gets its own targets."""
    rng = random.Random(20)
    for batch in range(40):
        shared_caps, alone_caps = CardinalityCaps(dict(LIMITS)), CardinalityCaps(dict(LIMITS))
        shared, alone = DeepCounter(shared_caps), DeepCounter(alone_caps)
        for event in events(rng, 20):
            for _ in range(rng.randrange(1, 4)):
                assert facts_json(shared, dict(event), True) == facts_json(alone, dict(event), False), (batch, event)
        assert shared_caps.overflowed == alone_caps.overflowed, batch


def test_the_last_resource_is_the_one_of_the_events_fields():
    counter = DeepCounter(CardinalityCaps({"resource": 10**6, "label": 10**6, "session": 10**6}))
    like = {"k": "app", "t": "interaction", "n": "like", "rid": "r1", "subj": "math"}
    targets = []
    for event in (like, {**like, "subj": "art"}, like, {**like, "rid": "r2"}, {**like, "subj": None}):
        facts = counter.facts(event, "app", "d", VISITOR, MONTH_VISITOR, None)
        assert facts is not None
        targets.append(sorted(field for _, field, _ in facts.incs))
    assert targets[0] == targets[2] and len({tuple(t) for t in targets}) == 4
    assert any("art" in field for field in targets[1]) and any("r2" in field for field in targets[3])


def test_only_a_kept_resource_s_events_share_its_parts():
    """A resource whose value went to (other) is not kept (resource_of): its events count
    their own increments, never its parts or facts (Resource.metric), so that each is counted
    as overflowing again. Fails with a Metric's parts made whether its resource is kept or not
    (tried)."""
    counter = DeepCounter(CardinalityCaps({"resource": 1, "label": 10**6, "session": 10**6}))
    play = {"k": "app", "t": "media", "n": "progress", "pb": 25, "ms": "s", "ws": 5, "wt": 900, "pos": 5}
    like = {"k": "app", "t": "interaction", "n": "like"}
    rate = {"k": "app", "t": "interaction", "n": "rate", "score": 4}
    for rid, kept in (("r1", True), ("r2", False)):  # the cap of 1 resource: r2 goes to (other)
        made = [counter.facts({**ev, "rid": rid}, "app", "d", VISITOR, MONTH_VISITOR, None)
                for ev in (play, like, rate, play, like, rate)]
        assert all(facts is not None for facts in made)
        for facts in made:
            assert facts is not None and (facts.shared is not None) is kept, (rid, facts)
        for facts in (made[0], made[2]):
            assert facts is not None and (facts.scaled is not None) is kept and facts.amount in (900, 4)
        liked = made[1]
        assert liked is not None and (liked is made[4]) is kept  # the resource's facts, or each event's own
        assert any(OTHER in field for _, field, _ in liked.incs) is not kept
