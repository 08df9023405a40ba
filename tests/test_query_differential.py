"""decode_query and from_query against the code they replaced (session 11, issue 17).

They were rewritten for speed only: not one answer may change. The implementations as
they stood before (main 3aa3aac) are kept below as the specification, and both are run
on the same inputs — the test suite's own hostile cases, the bench's fuzzed GET queries
(bench/fuzz.py) and thousands of random query strings built from the pieces that matter
(bad and truncated escapes, '+', '=', '&', '#', repeated names, the fields that take
integers, JSON or are left encoded, invalid UTF-8, lone surrogates, NULs, huge values).
Compared are the exact results: the decoded parameters with their order, the event with
its order, and every problem (field, reason, detail) in order.
"""

from __future__ import annotations

import random
from urllib.parse import quote

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench import fuzz
from collector.hit import protocol
from collector.hit.protocol import (
    INT_FIELDS,
    STRING_FIELDS,
    UNCOUNTED_FIELDS,
    Event,
    Problem,
    decode_query,
    from_query,
    query_event,
    validate_event,
)
from collector.native import c_module

# ---- the specification: main 3aa3aac's code, copied unchanged ---------------------------


def spec_decode_query(raw: str) -> dict[str, str]:
    query: dict[str, str] = {}
    for part in raw.partition("#")[0].split("&"):
        name, _, value = part.partition("=")
        if "%" in part or "+" in part:
            if "%" in name or "+" in name:
                name = protocol._unquote(name)
            if ("%" in value or "+" in value) and not (name in UNCOUNTED_FIELDS and len(value) <= STRING_FIELDS[name]):
                value = protocol._unquote(value)
        elif not part:
            continue
        query[name] = value
    return query


def spec_from_query(query: dict[str, str]) -> tuple[Event, list[Problem]]:
    event: Event = {}
    problems: list[Problem] = []
    for name, text in query.items():
        if name in INT_FIELDS:
            if not protocol._is_integer_text(text):
                problems.append(Problem(0, name, "wrong_type", "expected an integer"))
            elif len(text) > protocol._INTEGER_DIGITS_MAX:
                lo, hi = INT_FIELDS[name]
                problems.append(Problem(0, name, "out_of_range", f"must be {lo}..{hi}"))
            else:
                event[name] = int(text)
        elif name == "p":
            try:
                event[name] = orjson.loads(text)
            except orjson.JSONDecodeError:
                problems.append(Problem(0, "p", "malformed_json", "p must be a JSON object"))
        else:
            event[name] = text
    return event, problems


# ---- the comparison -------------------------------------------------------------------


def query_event_of_a_copy(query: dict[str, str]) -> tuple[Event, list[Problem]]:
    """query_event, which makes the event of the dict it is given, on a copy (the GET path's)."""
    return query_event(dict(query))


def assert_same(raw: str, decode=decode_query, make_events=(from_query, query_event_of_a_copy)) -> None:
    expected = spec_decode_query(raw)
    decoded = decode(raw)
    assert list(decoded.items()) == list(expected.items()), raw
    for query in (expected, {name: value for name, value in reversed(expected.items())}):
        want_event, want_problems = spec_from_query(query)
        given = list(query.items())
        for make_event in make_events:
            event, problems = make_event(query)
            assert list(query.items()) == given, raw  # the query given is left as it is
            assert repr(list(event.items())) == repr(list(want_event.items())), raw  # (repr: 1 and 1.0, True and 1 differ)
            assert [(p.event, p.field, p.reason, p.detail) for p in problems] == [
                (p.event, p.field, p.reason, p.detail) for p in want_problems], raw


NAMES = ["k", "t", "u", "ti", "cs", "sw", "sh", "ts", "sn", "p", "img", "lang", "pos", "dur", "", "k%3D", "t+", "%74i", "x"]
VALUES = [
    "", "a", "1920", "-0012", "+5", " 12 ", "1_000", "١٢", "²", "9" * 21, "1" * 20, "-", "0", "%31%32",
    '{"x":1}', "%7B%22x%22%3A1%7D", "{oops", "[1]", "null", '{"a":1e400}', "%7B%22a%22%3A%22%5Cud83d%22%7D",
    "%", "%2", "%ZZ", "%%", "%FF", "%C3", "%C3%A9", "%E4%B8", "%E4%B8%AD", "%ED%A0%80", "%F0%9F%98%80", "%00", "\x00",
    "a+b", "++", "%2B", "%26", "%3D", "%23", "%25", "%3B", "\ud83d", "é", "中文", "\ufffd", "x" * 600, "%41" * 300,
]
PIECES = ["&", "=", "#", "%", "+", ";", "?", "%2", "%G0", "%e4%b8%ad", "%FF", "\x00", "\ud800", "中", "a", "9"]


def random_query(rng: random.Random) -> str:
    pairs = []
    for _ in range(rng.choice([0, 1, 2, 3, 5, 8, 14, 20])):
        name = rng.choice(NAMES)
        value = rng.choice(VALUES)
        if rng.random() < 0.3:
            value = quote(value.encode("utf-8", "surrogatepass"), safe=rng.choice(["", "/", "%+"]))
        pairs.append(name if rng.random() < 0.1 else f"{name}={value}")
    raw = "&".join(pairs)
    for _ in range(rng.choice([0, 0, 1, 3])):  # pieces dropped anywhere, cutting escapes and pairs
        at = rng.randrange(len(raw) + 1)
        raw = raw[:at] + rng.choice(PIECES) + raw[at:]
    return raw


def test_the_suites_own_cases_decode_as_before():
    for raw in [
        "", "&", "&&", "=", "==", "a", "a=", "=v", "a=1&", "&a=1", "a=1&&b=2", "#", "a=1#b=2", "#a=1", "a=1&#",
        "u=https%3A%2F%2Fx.edu%2Fc%3Fid%3D7%26tab%3D2%3Bx%23y&k=a%26b%3Dc%2Bd+e",
        "n=%FF%E4%B8%AD%E4%B8&r=%ZZ%&k=1&k=2&flag&=v", "sw=wide&p={oops", "sw=-0012", "sw=" + "9" * 5000,
        "ti=" + "%E4%B8%AD" * 170, "ti=" + "%E4%B8%AD" * 171, "cs=UTF%2D8", "cs=" + "%41" * 11, "ti+=a", "%74i=%41",
        "k=a&t=pageview&u=https://e.edu/&sw=1920&p=" + quote('{"x": 1}'), "a=%00&b=\x00&c=\ud83d&d=%ED%A0%80",
    ]:
        assert_same(raw)


def test_thousands_of_random_queries_decode_as_before():
    rng = random.Random(11)
    for _ in range(6000):
        assert_same(random_query(rng))


def test_the_bench_fuzzers_queries_decode_as_before():
    parts = fuzz.Parts.drawn(11, size=100)
    rng = random.Random(11)
    for _ in range(2000):
        request = fuzz.query(parts, rng)
        target = request.split(b" ", 2)[1]
        assert_same(target.partition(b"?")[2].decode("utf-8", "replace"))


@settings(max_examples=2000, deadline=None, database=None)
@given(st.lists(st.sampled_from([*PIECES, *NAMES, *VALUES[:45]]), max_size=40).map("".join), st.text(max_size=30))
def test_drawn_queries_decode_as_before(pieces, anything):
    assert_same(pieces)
    assert_same(anything)


def keeps_the_first_value(raw: str) -> dict[str, str]:
    return spec_decode_query("&".join(reversed(raw.partition("#")[0].split("&"))))


def keeps_a_bad_integer(query: dict[str, str]) -> tuple[Event, list[Problem]]:
    event, problems = spec_from_query(query)
    return {**event, **{p.field: query[p.field] for p in problems if p.field in INT_FIELDS}}, problems


def reorders(query: dict[str, str]) -> tuple[Event, list[Problem]]:
    event, problems = spec_from_query(query)
    return dict(sorted(event.items())), problems


def changes_the_query_given(query: dict[str, str]) -> tuple[Event, list[Problem]]:
    """from_query without its copy: the caller's query becomes the event."""
    return query_event(query)


@pytest.mark.parametrize("decode, make_event", [
    (keeps_the_first_value, from_query), (decode_query, keeps_a_bad_integer), (decode_query, reorders),
    (decode_query, changes_the_query_given),
])
def test_the_comparison_fails_on_a_difference(decode, make_event):
    """The comparison can fail: an implementation that differs in one corner is caught."""
    rng = random.Random(11)
    with pytest.raises(AssertionError):
        for _ in range(2000):
            assert_same(random_query(rng), decode, (make_event,))


# ---- the C decoder (hit/_query.c): a GET hit's target, by decode_target_query -------------

compiled_only = pytest.mark.skipif(protocol._ASCII_QUERY is None, reason="the install compiled nothing")


def assert_target_same(raw: str) -> None:
    """decode_target_query of `raw` as a request target's bytes (after "/c?", and alone)
    against the specification; the C decoder itself answers for ASCII text only. And
    decode_target_event's: see assert_event_same."""
    target = raw.encode("utf-8", "surrogatepass")
    spec_query = spec_decode_query(target.decode("utf-8", "replace"))
    expected = list(spec_query.items())
    for prefix in (b"/c?", b""):
        assert list(protocol.decode_target_query(prefix + target, len(prefix)).items()) == expected, raw
        if protocol._ASCII_QUERY is not None:
            decoded = protocol._ASCII_QUERY(prefix + target, len(prefix))
            if target.partition(b"#")[0].isascii():
                assert decoded is not None and list(decoded.items()) == expected, raw
            else:
                assert decoded is None, raw
        assert_event_same(raw, prefix + target, len(prefix), spec_query)


def event_of_target(target: bytes, start: int) -> tuple[Event, list[Problem], bool, bool]:
    """The GET path's event of a target (web/hit_head.py get_hit, hit/ingest.py hit_query):
    decode_target_event, then query_event unless it said clean."""
    query, clean, valid = protocol.decode_target_event(target, start)
    event, problems = (query, []) if clean else query_event(query)
    return event, problems, clean, valid


def described(problems: list[Problem]) -> list[tuple[int | None, str | None, str, str]]:
    return [(p.event, p.field, p.reason, p.detail) for p in problems]


def assert_event_same(raw: str, target: bytes, start: int, spec_query: dict[str, str]) -> None:
    """decode_target_event (C's `event` when built and ASCII) then query_event unless clean:
    the specification's event and problems, exactly (values, their types, order). Clean
    only when query_event would change nothing and find nothing (it is then run anyway, to
    check). And validate_event told the fields are valid (the GET path's, when `event` said
    so) gives exactly the problems of its whole walk, for any app key already checked; valid
    only when clean. Without the C decoder it is never clean nor valid."""
    want_event, want_problems = spec_from_query(spec_query)
    want = (repr(list(want_event.items())), described(want_problems))
    event, problems, clean, valid = event_of_target(target, start)
    assert (repr(list(event.items())), described(problems)) == want, raw
    if clean:
        again, problems = query_event(dict(event))
        assert repr(list(again.items())) == repr(list(event.items())) and not problems, raw
    for checked_key in ("", "a"):
        walked = validate_event(dict(event), 0, checked_key)
        assert described(validate_event(dict(event), 0, checked_key, valid)) == described(walked), raw
    if valid:
        assert clean, raw
    if protocol._ASCII_EVENT is None or not target[start:].partition(b"#")[0].isascii():
        assert not clean and not valid, raw


HOSTILE = [
    "", "&", "&&", "=", "==", "a", "a=", "=v", "a=1&", "&a=1", "a=1&&b=2", "#", "a=1#b=2", "#a=1", "a=1&#", "a&b&a",
    "u=https%3A%2F%2Fx.edu%2Fc%3Fid%3D7%26tab%3D2%3Bx%23y&k=a%26b%3Dc%2Bd+e", "k=1&k=2&k", "k&k=2",
    "n=%FF%E4%B8%AD%E4%B8&r=%ZZ%&k=1&k=2&flag&=v", "sw=wide&p={oops", "sw=-0012", "sw=" + "9" * 5000,
    "ti=" + "%E4%B8%AD" * 170, "ti=" + "%E4%B8%AD" * 171, "cs=UTF%2D8", "cs=" + "%41" * 11, "cs=" + "%41" * 10 + "%4",
    "ti+=a", "%74i=%41", "%74i=" + "%41" * 171, "t%69=%41", "k=a&t=pageview&u=https://e.edu/&sw=1920&p=" + quote('{"x": 1}'),
    "a=%00&b=%ED%A0%80&c=%C0%AF&d=%F4%90%80%80&e=%F0%9F%98&f=%E0%80%80&g=%80&h=%C3%28&i=%C3%A9x%A9",
    "u=" + "%41" * 3000, "u=" + "%E4%B8%AD" * 1000 + "+" * 100, "r=" + "x" * 9000 + "%", "%" * 7 + "=" + "+" * 7,
    "k=%", "k=%2", "k=%2G", "k=%g2", "k=%%41", "k=%4%41", "k=+%2B+", "k=%2b%2B%2b", "k=%E4+%B8%AD", "k=%E4%2", "a=b=c&=&==",
    "k=a#%FF", "k=é", "k=\x00", "\x00=\x00", "k=%E4%B8%AD#中", "ti=中", "中=1", "k=\ud800",
]
PAGE_VIEW = "k=a&t=pageview&u=https://e.edu/"


def boundary_queries() -> list[str]:
    """A page view with one field at each edge of its rule: a string field's cap ±1 (its
    text plain, escaped ASCII, and escaped CJK — three bytes a character — which ti and cs
    keep encoded within their cap), an integer field's bounds ±1 (and as 19 digits with
    leading zeros, past a C long long's 18); a repeated name, last value in or out."""
    queries = []
    for name, cap in STRING_FIELDS.items():
        for length in (cap - 1, cap, cap + 1):
            for text in ("x" * length, "%41" * length, "%E4%B8%AD" * length, "x" * max(length - 1, 0) + "+"):
                queries.append(f"{PAGE_VIEW}&{name}={text}")
        queries.append(f"{PAGE_VIEW}&{name}={'x' * (cap + 1)}&{name}=ok")
        queries.append(f"{PAGE_VIEW}&{name}=ok&{name}={'x' * (cap + 1)}")
    for name, (lo, hi) in INT_FIELDS.items():
        for number in (lo - 1, lo, hi, hi + 1, -hi, -(10**17), 10**18 - 1):
            queries.append(f"{PAGE_VIEW}&{name}={number}")
        queries.append(f"{PAGE_VIEW}&{name}={str(lo).zfill(19)}")
        queries.append(f"{PAGE_VIEW}&{name}={str(hi + 1).zfill(20)}")
        queries.append(f"{PAGE_VIEW}&{name}={hi + 1}&{name}={lo}")
        queries.append(f"{PAGE_VIEW}&{name}={lo}&{name}={hi + 1}")
    return queries


@compiled_only
def test_the_c_decoder_decodes_the_hostile_cases_as_the_specification():
    for raw in HOSTILE:
        assert_target_same(raw)


def test_fields_at_the_edges_of_their_rules_are_judged_as_the_walk_judges_them():
    """valid (validate_event's field walk skipped) exactly when the walk finds nothing:
    every string field at its cap ±1, every integer field at its bounds ±1."""
    valid = 0
    for raw in boundary_queries():
        assert_target_same(raw)
        valid += event_of_target(raw.encode(), 0)[3]
    assert (valid > 0) == (protocol._ASCII_EVENT is not None)  # (the fast answer is given at all)


def test_a_target_that_ends_before_its_query_has_an_empty_one():
    """`GET /c` (no "?"): the fast path asks from offset 3 of a 2-byte target. The C decoder
    refuses a start past the end (ValueError); answered 500 until the fuzz test of CI found it."""
    expected = spec_decode_query("")
    for target in (b"/c", b"/", b""):
        assert protocol.decode_target_query(target, 3) == expected


def test_a_targets_query_decodes_as_the_specification():
    """With the C decoder or without it (a pure install): random and fuzzed queries."""
    rng = random.Random(16)
    for _ in range(20000):
        assert_target_same(random_query(rng))
    parts = fuzz.Parts.drawn(16, size=100)
    for _ in range(2000):
        assert_target_same(fuzz.query(parts, rng).split(b" ", 2)[1].partition(b"?")[2].decode("utf-8", "replace"))


@settings(max_examples=3000, deadline=None, database=None)
@given(st.lists(st.sampled_from([*PIECES, *NAMES, *VALUES]), max_size=40).map("".join),
       st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=40))
def test_drawn_targets_decode_as_the_specification(pieces, ascii_text):
    assert_target_same(pieces)
    assert_target_same(ascii_text)


@compiled_only
def test_the_c_decoder_gives_the_protocols_own_names_and_refuses_bad_calls():
    query = protocol._ASCII_QUERY(b"/c?k=a&sw=1&zz=2", 3)
    assert query is not None
    own = {name: name for name in (*STRING_FIELDS, *INT_FIELDS)}
    assert [own.get(name) is name for name in query] == [True, True, False]
    with pytest.raises(ValueError):
        protocol._ASCII_QUERY(b"k=1", 4)
    with pytest.raises(ValueError):
        protocol._ASCII_QUERY(b"k=1", -1)
    with pytest.raises(TypeError):
        protocol._ASCII_QUERY("k=1", 0)  # type: ignore[arg-type]


@pytest.mark.parametrize("mutant", ["always_clean", "never_an_int", "always_valid"])
def test_the_event_comparison_fails_on_a_difference(monkeypatch, mutant):
    """assert_event_same can fail: an event step that says clean with work left, or one that
    leaves query_event an int's text while saying clean, is caught; so is one that says
    valid whenever it says clean (caps and bounds not judged)."""
    def always_clean(target: bytes, start: int) -> tuple[dict[str, object], bool, bool]:
        return dict(protocol.decode_target_query(target, start)), True, False

    def never_an_int(target: bytes, start: int) -> tuple[dict[str, object], bool, bool]:
        query = dict(protocol.decode_target_query(target, start))
        return query, "p" not in query, False

    real = protocol.decode_target_event

    def always_valid(target: bytes, start: int) -> tuple[dict[str, object], bool, bool]:
        query, clean, _ = real(target, start)
        return query, clean, clean

    if mutant == "always_valid" and protocol._ASCII_EVENT is None:
        pytest.skip("without the C decoder nothing is clean, so nothing may be valid")
    mutants = {"always_clean": always_clean, "never_an_int": never_an_int, "always_valid": always_valid}
    monkeypatch.setattr(protocol, "decode_target_event", mutants[mutant])
    with pytest.raises(AssertionError):
        for raw in [*HOSTILE, *boundary_queries()]:
            assert_target_same(raw)


@compiled_only
def test_the_c_decoders_event_is_clean_only_without_work_left():
    """`event`: integer text as ints at once, and clean exactly when nothing is left for
    query_event; the integers at their bounds (18 digits in a C long long, 19 and 20 as
    Python ints, 21 left as text for query_event's out_of_range). Valid: clean and each
    field within its cap or bounds (an int past 18 digits never is)."""
    event = protocol._ASCII_EVENT
    assert event is not None
    assert event(b"/c?k=a&sw=1920&ts=1796120692128&sn=-0012&t=x&img=1", 3) == (
        {"k": "a", "sw": 1920, "ts": 1796120692128, "sn": -12, "t": "x", "img": "1"}, True, False)  # sn < 1
    assert event(b"/c?k=a&sw=1920&ts=1796120692128&sn=0012&t=x&img=1", 3) == (
        {"k": "a", "sw": 1920, "ts": 1796120692128, "sn": 12, "t": "x", "img": "1"}, True, True)
    for digits in (18, 19, 20):
        text = "9" * digits
        assert event(f"sw={text}&sh=-{text[1:]}".encode(), 0) == ({"sw": int(text), "sh": -int(text[1:])}, True, False)
    assert event(b"sw=" + b"0" * 17 + b"1", 0) == ({"sw": 1}, True, True)
    assert event(b"sw=" + b"0" * 18 + b"1", 0) == ({"sw": 1}, True, False)  # (19 digits: not judged in C)
    for raw, query in [
        (b"sw=" + b"9" * 21, {"sw": "9" * 21}), (b"sw=-", {"sw": "-"}), (b"sw=", {"sw": ""}), (b"sw", {"sw": ""}),
        (b"sw=1%32", {"sw": "12"}), (b"sw=+1", {"sw": " 1"}), (b"%73w=1", {"sw": "1"}), (b"x%3D=1", {"x=": "1"}),
        (b"p=%7B%7D", {"p": "{}"}), (b"sw=x&sw=5", {"sw": 5}), (b"sw=1_0", {"sw": "1_0"}),
    ]:
        assert event(raw, 0) == (query, False, False), raw
    assert event(b"k=\xc3\xa9", 0) is None
    assert event(b"k=a&u=https://e.edu/?sw=1&ti=%41", 0) == (
        {"k": "a", "u": "https://e.edu/?sw=1", "ti": "%41"}, True, True)
    assert event(b"k=" + b"a" * 64 + b"&ti=" + b"%41" * 171, 0) == ({"k": "a" * 64, "ti": "A" * 171}, True, True)
    assert event(b"k=" + b"a" * 65, 0) == ({"k": "a" * 65}, True, False)
    assert event(b"k=" + b"a" * 65 + b"&k=a", 0) == ({"k": "a"}, True, False)  # (judged as each value comes)


@compiled_only
def test_the_c_decoder_refuses_rules_it_cannot_hold():
    module = c_module("collector.hit._query")
    for caps, bounds in [({"x": 1}, {}), ({"k": -1}, {}), ({"sw": 1}, {}), ({}, {"k": (0, 1)}), ({}, {"sw": (0,)}),
                         ({}, {"sw": (0, 10**20)}), ({}, {"sw": [0, 1]})]:
        with pytest.raises((ValueError, TypeError, OverflowError)):
            module.QueryDecoder(("k", "sw"), {}, integers=("sw",), caps=caps, bounds=bounds)


def test_the_c_decoder_is_built_with_the_compiled_modules():
    from collector import native
    assert (protocol._ASCII_QUERY is not None) == native.in_use()
