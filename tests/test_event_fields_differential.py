"""hit/_query.c's `fields_valid` (a POST event's fields judged in C, session 19) against the
field walk it lets validate_event skip, and its EventJudge (the whole event judged in C)
against protocol.event_problems, the Python validate_event answers with otherwise.

The walk (protocol._walk_fields) stays the reference: `fields_valid` may only say True when
the walk finds nothing, and validate_event's problems are the same with the judge as without
it, field for field and in order. For events the C judge is meant to take (no `p`, no
integer `uid`, integers within a C long long) it must also say True whenever the walk finds
nothing: otherwise the POST path would silently lose its fast answer. Since session 20 C
also judges `p` when it is a plain dict of plain values (str, int, bool, float). The inputs: every
string field at its cap ±1 (ASCII, CJK, astral characters), every integer field at its
bounds ±1 and past a C long long, values of every JSON type in every field, bool for int,
keys that are not ASCII or repeated in the body, the bench's realistic batches, and
thousands of random events. For the judge also: every type without each field it requires,
every action and without each field it requires, pairs halved, each progress boundary ±1,
positions and seconds watched at the duration's edges, URLs and app keys at the edges of
their rules; properties at the edges of their count, names' and values' lengths, of every
JSON type and not finite.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import orjson
import pytest
from test_protocol import MINIMAL  # the smallest valid event of each type

from bench import traffic
from bench.ippool import load_pool
from collector.hit import protocol
from collector.hit.protocol import (
    ACTIONS_BY_TYPE,
    EVENT_TYPES,
    INT_FIELDS,
    PROGRESS_BOUNDARIES,
    PROPS_MAX_KEY,
    PROPS_MAX_KEYS,
    PROPS_MAX_VALUE,
    REQUIRED_BY_TYPE,
    STRING_FIELDS,
    Problem,
    event_problems,
    validate_event,
)

compiled_only = pytest.mark.skipif(protocol._FIELDS_VALID is None, reason="the install compiled nothing")
Judge = Callable[[object], bool]

BASE = {"k": "app", "t": "pageview", "u": "https://e.edu/x"}
LONG_LONG = 2**63


def walk(event: dict) -> list[tuple[str, str, str]]:
    """The reference: what the field walk finds in (a copy of) `event`."""
    found: list[tuple[str, str, str]] = []
    protocol._walk_fields(dict(event), found)
    return found


def plain_props(props: object) -> bool:
    """Properties C judges (session 20): a plain dict of str names and plain values."""
    return type(props) is dict and all(
        type(name) is str and type(value) in (str, int, bool, float) for name, value in props.items())


def meant_for_c(event: dict) -> bool:
    """An event the C judge must take when its fields are within their rules: the walk
    alone judges `p` that is not plain_props and an integer `uid` (which it turns into text),
    and C never an int past a C long long or a dict that is not a plain one with str keys."""
    return (
        type(event) is dict and all(type(name) is str for name in event)
        and ("p" not in event or plain_props(event["p"])) and type(event.get("uid")) is not int
        and not any(type(v) is int and not -LONG_LONG <= v < LONG_LONG for v in event.values())
    )


def props_edges() -> list[object]:
    """`p` at the edges of _props_problem's rules, and of every JSON type (and beyond)."""
    props: list[object] = [{}, {"a": 1}, [], [1], "a", 1, None, True, 1.5]
    props += [{str(i): i for i in range(count)} for count in (PROPS_MAX_KEYS - 1, PROPS_MAX_KEYS, PROPS_MAX_KEYS + 1)]
    for unit in ("x", "中", "😀"):
        for length in (0, PROPS_MAX_KEY, PROPS_MAX_KEY + 1):
            props.append({unit * length: 1})
        for length in (0, PROPS_MAX_VALUE, PROPS_MAX_VALUE + 1):
            props.append({"a": unit * length})
    for value in (0, -1, 10**30, -(10**30), True, False, 0.0, -1.5, 1e308, float("inf"), float("-inf"), float("nan"),
                  None, [], [1], {}, {"b": 1}, "", b"a"):
        props += [{"a": value}, {"a": 1, "b": "x", "c": value}]

    class Props(dict):
        pass

    class Text(str):
        pass

    props += [Props(a=1), {"a": Text("x")}, {Text("a"): 1}]  # (JSON names are str: the walk takes no other)
    return props


def described(problems: list[Problem]) -> list[tuple[int | None, str | None, str, str]]:
    return [(p.event, p.field, p.reason, p.detail) for p in problems]


def reference(event: dict, checked_key: str = "") -> list[Problem]:
    """validate_event's answer all in Python: the walk's problems, then the rest."""
    return [Problem(3, *problem) for problem in walk(event)] + list(event_problems(dict(event), 3, checked_key, True))


def assert_judged_as_python(event: dict, judge: Judge | None) -> None:
    """`judge` (EventJudge's) says True only when the Python finds no problem, and True
    whenever it finds none in an event meant for C; validate_event answers as the Python."""
    want = reference(event)
    if judge is not None:
        if judge(event):
            assert not want, (event, described(want))
        elif meant_for_c(event):
            assert want, event
    for checked_key in ("", "app"):
        assert described(validate_event(dict(event), 3, checked_key)) == described(reference(event, checked_key)), event


def assert_judged_as_the_walk(event: dict, judge: Judge | None) -> None:
    """`judge` says True only when the walk finds nothing, and True whenever it does for an
    event meant for it; and validate_event (which asks the built judge, if any) gives the
    walk's problems, then the rest, for any app key already checked."""
    found = walk(event)
    if judge is not None:
        if judge(event):
            assert not found, (event, found)
        elif meant_for_c(event):
            assert found, event
    for checked_key in ("", "app"):
        want = [Problem(3, *problem) for problem in found] + list(validate_event(dict(event), 3, checked_key, True))
        assert described(validate_event(dict(event), 3, checked_key)) == described(want), event


def edge_events() -> list[dict]:
    """One field at each edge of its rule, or of the wrong type, beside a valid page view."""
    events = []
    for name, cap in STRING_FIELDS.items():
        for length in (0, cap - 1, cap, cap + 1, 4 * cap):
            for unit in ("x", "中", "😀", "\x00", "\ud800"):
                events.append({**BASE, name: unit * length})
    for name, (lo, hi) in INT_FIELDS.items():
        for number in (lo - 1, lo, hi, hi + 1, -hi, LONG_LONG - 1, LONG_LONG, -LONG_LONG, -LONG_LONG - 1, 10**30):
            events.append({**BASE, name: number})
        for wrong in (True, False, float(lo), str(lo), None, [lo], {"v": lo}):
            events.append({**BASE, name: wrong})
    for name in (*STRING_FIELDS, "p", "img", "x", "", "é", "中"):
        for wrong in (1, 0, -1, 1.5, True, None, [], ["a"], {}, {"a": 1}, "a"):
            events.append({**BASE, name: wrong})
    events += [{**BASE, "p": props} for props in props_edges()]
    return events


def test_every_field_at_the_edges_of_its_rule_is_judged_as_the_walk_judges_it():
    for event in edge_events():
        assert_judged_as_the_walk(event, protocol._FIELDS_VALID)


@compiled_only
def test_the_c_judge_takes_the_realistic_batches_and_refuses_each_edge():
    """Every event of the bench's POST-50 batches is taken, its custom ones (`p`) too since
    session 20; and of the edge cases exactly those within their rules are."""
    judge = protocol._FIELDS_VALID
    assert judge is not None
    pop = traffic.Population(load_pool(), 1000, seed=3)
    requests = traffic.realistic(pop, 20, "post50", 1_796_000_000_000)
    events = [event for request in requests for event in orjson.loads(request.body)]
    assert len(events) == 1000
    assert all(judge(event) for event in events) and any("p" in event for event in events)
    for name, cap in STRING_FIELDS.items():
        assert judge({**BASE, name: "中" * cap}) and not judge({**BASE, name: "中" * (cap + 1)}), name
    for name, (lo, hi) in INT_FIELDS.items():
        assert judge({**BASE, name: lo}) and judge({**BASE, name: hi}), name
        assert not judge({**BASE, name: lo - 1}) and not judge({**BASE, name: hi + 1}), name
        assert not judge({**BASE, name: lo == 1}) and not judge({**BASE, name: float(lo)}), name  # bools, floats


@compiled_only
def test_what_the_c_judge_leaves_to_the_walk():
    judge = protocol._FIELDS_VALID
    assert judge is not None
    assert judge({}) and judge(dict(BASE)) and judge({**BASE, "img": [1], "x": None, "中": 2})  # no rule, anything
    assert judge({**BASE, "p": {"a": 1, "b": "x", "c": 1.5, "d": True}})  # plain properties: C judges them
    assert not judge({**BASE, "p": {"a": [1]}}) and not judge({**BASE, "p": {"a": float("nan")}})
    assert not judge({**BASE, "uid": 12345})  # the walk turns it into text
    assert not judge({**BASE, 1: "a"}) and not judge({**BASE, None: "a"})
    assert not judge([BASE]) and not judge("k") and not judge(None)

    class Event(dict):
        pass

    assert not judge(Event(BASE))

    class Text(str):
        pass

    assert not judge({**BASE, "k": Text("app")})  # the walk wants exactly str (its `type(value) is str`)
    event = {**BASE, "uid": 12345}
    assert [(p.field, p.reason) for p in validate_event(event, 0)] == [] and event["uid"] == "12345"


def test_a_body_with_a_repeated_field_is_judged_as_the_walk_judges_it():
    for body in (b'{"k":"app","t":"pageview","u":"https://e.edu/","sw":999999999,"sw":1}',
                 b'{"k":"app","t":"pageview","u":"https://e.edu/","sw":1,"sw":999999999}',
                 b'{"k":"app","t":"pageview","u":"https://e.edu/","k":"' + b"a" * 65 + b'","k":"a"}'):
        assert_judged_as_the_walk(orjson.loads(body), protocol._FIELDS_VALID)


NAMES = [*STRING_FIELDS, *INT_FIELDS, "p", "img", "x", "", "é", "K", "sw ", "kk"]


def random_value(rng: random.Random, name: str) -> object:
    if name in INT_FIELDS and rng.random() < 0.6:
        lo, hi = INT_FIELDS[name]
        return rng.choice([lo, hi, lo - 1, hi + 1, rng.randint(lo, hi), rng.randint(-2**70, 2**70), True])
    if name in STRING_FIELDS and rng.random() < 0.6:
        cap = STRING_FIELDS[name]
        return rng.choice(["x", "中", "😀", "\x7f"]) * rng.choice([0, 1, cap - 1, cap, cap + 1])
    return rng.choice([None, 0, 1, -1, 1.5, 1e300, True, False, "", "a", [], [1], {}, {"a": "b"}, {"a": [1]}, 10**20])


def random_event(rng: random.Random) -> dict:
    event = dict(BASE) if rng.random() < 0.5 else {}
    for _ in range(rng.choice([0, 1, 2, 4, 8, 16])):
        name = rng.choice(NAMES)
        event[name] = random_value(rng, name)
    return event


def test_thousands_of_random_events_are_judged_as_the_walk_judges_them():
    rng = random.Random(19)
    for _ in range(5000):
        assert_judged_as_the_walk(random_event(rng), protocol._FIELDS_VALID)


@pytest.mark.parametrize("mutant", ["no_caps", "no_bounds", "bools_are_ints", "always", "props_any_dict",
                                    "props_uncapped"])
def test_the_comparison_fails_on_a_judge_that_is_wrong(mutant):
    """assert_judged_as_the_walk can fail: a judge that ignores caps, or bounds, or takes a
    bool for an int, or says True always, or takes any dict for properties, or ignores the
    length of their values, is caught on the edge cases."""

    def judge(event: object) -> bool:
        if not isinstance(event, dict) or mutant == "always":
            return mutant == "always"
        for name, value in event.items():
            if name in STRING_FIELDS:
                if type(value) is not str or (mutant != "no_caps" and len(value) > STRING_FIELDS[name]):
                    return False
            elif name in INT_FIELDS:
                lo, hi = INT_FIELDS[name]
                if not (type(value) is int or (mutant == "bools_are_ints" and isinstance(value, int))):
                    return False
                if mutant != "no_bounds" and not lo <= value <= hi:
                    return False
            elif name == "p":
                if mutant == "props_any_dict":
                    if type(value) is not dict:
                        return False
                elif not plain_props(value) or protocol._props_problem(
                        {k: v[:1] if mutant == "props_uncapped" and type(v) is str else v for k, v in value.items()}):
                    return False
        return True

    with pytest.raises(AssertionError):
        for event in edge_events():
            assert_judged_as_the_walk(event, judge)


# ---- the whole event: EventJudge ------------------------------------------------------------


def whole_event_edges() -> list[dict]:
    events = []
    for etype, fields in MINIMAL.items():
        event = {"k": "app", "t": etype, **fields}
        events.append(event)
        events += [{name: value for name, value in event.items() if name != dropped} for dropped in event]
        events += [{**event, "etr": "t"}, {**event, "epos": 1}, {**event, "etr": "t", "epos": 1},
                   {**event, "tr": "t"}, {**event, "pos": 1}, {**event, "tr": "t", "pos": 1}, {**event, "pb": 10}]
        for action, needs in ACTIONS_BY_TYPE.get(etype, {}).items():
            full = {**event, "n": action, **{name: 10 if name == "pb" else 1 for name in needs}}
            events.append(full)
            events += [{name: value for name, value in full.items() if name != dropped} for dropped in needs]
        events.append({**event, "n": "nonesuch"})
    media = {"k": "app", "t": "media", "n": "progress", "rid": "r", "ms": "m", "ws": 0, "wt": 0, "pos": 0, "pb": 10}
    for pb in sorted(PROGRESS_BOUNDARIES):
        events += [{**media, "pb": pb}, {**media, "pb": pb - 1}, {**media, "pb": pb + 1}]
    events.append({"k": "app", "t": "engagement", "et": 1, "pb": 11})  # not deep: pb unjudged together
    for etype in ("media", "click", "interaction", "engagement"):
        base = {**MINIMAL[etype], "k": "app", "t": etype, "n": "play" if etype == "media" else MINIMAL[etype].get("n", "x")}
        if etype == "media":
            base["pos"] = 0
        for dur in (0, 1, 100):
            for pos in (dur - 1, dur, dur + 1):
                events.append({**base, "dur": dur, "pos": max(pos, 0)})
            for ws in (dur, dur + 1, dur + 2):
                events.append({**base, "dur": dur, "ws": ws})
    for url in ("", "http://", "https://", "https://e.edu/中", "HTTP://e.edu/", "ftp://e.edu/", "http:/e", "https:", "中"):
        events.append({"k": "app", "t": "pageview", "u": url})
        events.append({"k": "app", "t": "engagement", "et": 1, "u": url})
    for key in ("", "a", "a" * 64, "\x00", "a\x1f", "a\x20", "a~", "a\x7f", "a\x80", "a{", "a}", "a|", "中", "\u2028", "😀"):
        events.append({"k": key, "t": "custom"})
    events += [{"t": "custom"}, {"k": "app"}, {"k": "app", "t": "nonesuch"}, {"k": "app", "t": "Custom"}, {}]
    return events


def test_the_whole_event_at_the_edges_of_its_rules_is_judged_as_python_judges_it():
    judge = protocol._EVENT_CLEAN
    clean = 0
    for event in [*whole_event_edges(), *edge_events()]:
        assert_judged_as_python(event, judge)
        clean += bool(judge and judge(event))
    assert (clean > 100) == (judge is not None)  # (the fast answer is given at all)


def test_thousands_of_random_whole_events_are_judged_as_python_judges_them():
    rng = random.Random(1919)
    types = [*EVENT_TYPES, "nonesuch", ""]
    for _ in range(5000):
        event = random_event(rng)
        if rng.random() < 0.7:
            etype = rng.choice(types)
            event.update({"k": rng.choice(["app", "a{", "a\x01", ""]), "t": etype, **MINIMAL.get(etype, {})})
            for name in rng.sample(sorted({*REQUIRED_BY_TYPE.get(etype, ()), "n", "pos", "ws", "dur", "pb", "etr", "epos",
                                           "tr", "u"}), rng.choice([0, 1, 2])):
                event.pop(name, None) if rng.random() < 0.5 else event.update({name: random_value(rng, name)})
        assert_judged_as_python(event, protocol._EVENT_CLEAN)


@compiled_only
def test_the_judge_takes_the_realistic_batches():
    judge = protocol._EVENT_CLEAN
    assert judge is not None
    pop = traffic.Population(load_pool(), 1000, seed=4)
    events = [event for request in traffic.realistic(pop, 20, "post50", 1_796_000_000_000)
              for event in orjson.loads(request.body)]
    assert all(judge(event) for event in events) and any("p" in event for event in events)


@pytest.mark.parametrize("mutant", ["no_pairs", "no_progress", "no_key_scan", "no_required"])
def test_the_whole_event_comparison_fails_on_a_judge_that_is_wrong(mutant):
    """assert_judged_as_python can fail: a judge that takes the fields' rules alone and skips
    one rule of fields together is caught on the edge cases."""

    def judge(event: object) -> bool:
        if not isinstance(event, dict) or walk(event) or "p" in event:
            return False
        problems = {(p.field, p.reason) for p in event_problems(dict(event), 0, "", True)}
        ignored = {
            "no_pairs": {("epos", "missing_field"), ("etr", "missing_field"), ("pos", "missing_field"), ("tr", "missing_field")},
            "no_progress": {("pb", "invalid_value")},
            "no_key_scan": {("k", "invalid_value")},
            "no_required": {(name, "missing_field") for name in ("u", "et", "n", "rid", "ms", "ws", "wt")},
        }[mutant]
        return not problems - ignored

    with pytest.raises(AssertionError):
        for event in whole_event_edges():
            assert_judged_as_python(event, judge)


def fresh(text: str) -> str:
    """A new str object of `text` (not orjson's kept key, not an interned literal)."""
    return "".join(list(text))


@compiled_only
def test_keys_known_by_identity_are_judged_as_python_judges_them():
    """hit/_query.c keeps what each dict key is by the key's identity (KEY_SLOTS of them,
    each holding its key): keys made anew for each event, so that a key freed at once would
    leave its address to the next (a known name out of its bounds, then an unknown name of
    the same length with the same value), more distinct keys than it keeps, and orjson's
    kept keys again, are each judged as the Python judges them."""
    judge = protocol._EVENT_CLEAN
    assert judge is not None
    for round_ in range(600):
        name = ("sd", "zq", "et", "qz")[round_ % 4]  # sd and et: integer fields of bounds 0..100, 0..
        assert_judged_as_python({**BASE, fresh(name): -5}, judge)
        assert_judged_as_python({fresh("k"): "app", fresh("t"): "pageview", fresh("u"): "https://e.edu/x", fresh(name): 50},
                                judge)
        assert_judged_as_python({**BASE, fresh(f"x{round_}"): 1, fresh("sd"): 101}, judge)
    body = orjson.dumps([{**BASE, "sd": sd, "zq": -1, f"y{n % 300}": 1} for n, sd in enumerate((1, 101, -1, 50) * 200)])
    for event in orjson.loads(body) + orjson.loads(body):
        assert_judged_as_python(event, judge)


@compiled_only
def test_types_and_app_keys_known_by_identity_are_judged_as_python_judges_them():
    """EventJudge keeps the type objects it found among the types (TYPE_SLOTS of them) and
    the app key it last found clean by identity, each slot holding its str (session 24):
    fresh objects for each event, so that a freed one would leave its address to the next
    (a type, then a text of the same length that is none; a clean key, then one with a '{'
    or empty), more types than it keeps, and the one object the batch decoder gives for a
    value repeated within a body, are each judged as the Python judges them."""
    judge = protocol._EVENT_CLEAN
    assert judge is not None
    types = sorted(EVENT_TYPES)
    for round_ in range(600):
        etype = types[round_ % len(types)]
        # (each event and its str freed before the next is made)
        assert_judged_as_python({**MINIMAL[etype], "k": fresh("app"), "t": fresh(etype)}, judge)
        assert_judged_as_python({**MINIMAL[etype], "k": fresh("app"), "t": fresh(etype.upper())}, judge)
        assert_judged_as_python({**MINIMAL[etype], "k": fresh("app"), "t": fresh(etype)}, judge)
        assert_judged_as_python({**MINIMAL[etype], "k": fresh("ap{"), "t": fresh(etype)}, judge)
        assert_judged_as_python({**MINIMAL[etype], "k": fresh(""), "t": fresh(etype)}, judge)
    events = [{**MINIMAL.get(etype, {}), "k": key, "t": etype}
              for etype in (*types, "nonesuch", "Custom") for key in ("app", "a{b", "app", "", "app")]
    body = orjson.dumps(events * 3)
    decoded = protocol.parse_body(body)
    assert decoded[0]["t"] is decoded[len(events)]["t"]  # (the batch decoder's repeats: one object)
    for event in decoded:
        assert_judged_as_python(event, judge)


def test_urls_of_every_kind_of_str_at_the_edges_of_their_rule():
    """The URL's scheme is compared character by character in C (session 24): URLs that are
    1-, 2- and 4-byte str, with and without the schemes, cut inside them."""
    judge = protocol._EVENT_CLEAN
    for rest in ("", "e.edu/", "é", "中", "😀"):
        for url in ("http://", "https://", "http:/", "https:/", "http:", "htt", "h", "HTTP://", "https//", "httpx://",
                    "ftp://", "http:\\\\", "ｈttp://", "http：//"):
            for event in ({"k": "app", "t": "pageview", "u": url + rest}, {"k": "app", "t": "pageview", "u": rest + url}):
                assert_judged_as_python(event, judge)
