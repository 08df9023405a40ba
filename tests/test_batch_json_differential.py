"""A POST body's JSON decoder in C (hit/_batch_json.c) against orjson.loads (session 22).

parse_body asks the C decoder first; it must answer exactly what orjson.loads answers, or
None (then orjson answers). Every test here decodes a body both ways: when the C decoder
answers, orjson must have answered too (not raised), with the same value, the same types
(an int is an int, never a bool or float; a str an exact str) and the same key order at
every level. And every key that is one of the protocol's field names must be the interned
str (the object the compiled code looks fields up with), while a client's other keys are
never interned (a client must not grow the interned strings).

Bodies: every body the bench traffic makes (bench/traffic.py post_request, post10 and
post50: all must be answered, or the fast path would not be taken), hostile values in
every field (controls, quotes, backslashes, escapes, surrogates, Chinese, 4-byte and
invalid UTF-8, huge and odd numbers, literals, nesting), hostile whole bodies (empty,
truncated at every byte, trailing garbage, whitespace everywhere, duplicate keys, large
objects), random byte mutations of bench bodies, and random JSON documents (hypothesis).
"""

from __future__ import annotations

import json
import random
import sys
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench import traffic
from bench.ippool import load_pool
from collector.hit import protocol
from collector.hit.protocol import INT_FIELDS, STRING_FIELDS
from collector.native import c_module

C_JSON = c_module("collector.hit._batch_json")
pytestmark = pytest.mark.skipif(C_JSON is None, reason="hit/_batch_json.c is not built (pip install -e .)")

# The names protocol.parse_body's decoder is made with. The decoder here is made with new
# copies of them (not the interned literals): it must intern them itself.
NAMES = (*STRING_FIELDS, *INT_FIELDS, "p", "img")
DECODE = C_JSON.Decoder(tuple(name.encode().decode() for name in NAMES)).decode if C_JSON is not None else None

REFUSED = object()  # orjson raised


def reference(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return REFUSED


def assert_same(ours: Any, theirs: Any, where: str = "$") -> None:
    """Equal value, same types, same key order, at every level."""
    assert type(ours) is type(theirs), (where, ours, theirs)
    if isinstance(ours, dict):
        assert list(ours) == list(theirs), where
        for key in ours:
            assert type(key) is str, where
            assert_same(ours[key], theirs[key], f"{where}.{key}")
    elif isinstance(ours, list):
        assert len(ours) == len(theirs), where
        for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            assert_same(a, b, f"{where}[{i}]")
    else:
        assert ours == theirs, (where, ours, theirs)


def assert_interned(value: Any) -> None:
    """Each key that is a field name is the interned str of its text."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in NAMES:
                assert key is sys.intern(key), key
            assert_interned(item)
    elif isinstance(value, list):
        for item in value:
            assert_interned(item)


def check(body: bytes) -> Any:
    """The C decoder's answer for `body`, held to orjson's. Returns it (None: no answer)."""
    assert DECODE is not None
    ours = DECODE(body)
    if ours is not None:
        theirs = reference(body)
        assert theirs is not REFUSED, f"C decoded what orjson refuses: {body[:200]!r}"
        assert_same(ours, theirs)
        assert_interned(ours)
    return ours


def bench_bodies(shape: str, n: int) -> list[bytes]:
    pop = traffic.Population(load_pool(), 500, seed=3)
    return [request.body for request in traffic.realistic(pop, n, shape, 1_764_000_000_000)]


@pytest.fixture(scope="module")
def post_bodies() -> list[bytes]:
    return bench_bodies("post10", 60) + bench_bodies("post50", 30)


def test_every_bench_body_is_decoded_as_orjson_decodes_it(post_bodies: list[bytes]) -> None:
    """The traffic the POST bench sends is all answered in C (none left to orjson), and
    answered right."""
    for body in post_bodies:
        assert check(body) is not None, body[:200]


def test_parse_body_answers_with_the_c_decoder(post_bodies: list[bytes]) -> None:
    """parse_body takes the C decoder's answer when built: the field names are interned."""
    assert protocol._BATCH_JSON is not None
    events = protocol.parse_body(post_bodies[0])
    assert_same(events, orjson.loads(post_bodies[0]))
    keys = [key for event in events for key in event]
    assert keys and all(key is sys.intern(key) for key in keys if key in NAMES)


def test_parse_body_falls_back_where_c_has_no_answer() -> None:
    """A float, a lone surrogate (the stdlib slow path scrubs it), a huge number: the answer
    is orjson's or the slow path's, and what is not JSON is still refused."""
    assert protocol.parse_body(b'{"p":{"x":1.5}}') == {"p": {"x": 1.5}}
    assert protocol.parse_body(b'[{"ti":"a\\ud83d"}]') == [{"ti": "a\ufffd"}]
    assert protocol.parse_body(b"[1e400]") == [float("inf")]
    assert protocol.parse_body(b"[12345678901234567890]") == [12345678901234567890]
    for body in (b"[", b"[NaN]", b'["\xff"]', b"[01]"):
        with pytest.raises(ValueError):
            protocol.parse_body(body)


def test_other_keys_are_not_interned() -> None:
    """A client's own keys are new str objects: interning them would let a client grow the
    interpreter's interned strings without bound. (sys.intern of a fresh copy returns the
    decoder's object only if the decoder interned it.)"""
    assert DECODE is not None
    unique = f"zq{random.randrange(10**12)}"
    decoded = DECODE(b'[{"%s":1,"p":{"%s":2}}]' % (unique.encode(), (unique + "p").encode()))
    assert decoded is not None
    event = decoded[0]
    own = next(iter(event))
    assert own == unique and sys.intern("".join(unique)) is not own
    inner = next(iter(event["p"]))
    assert sys.intern("".join(unique + "p")) is not inner
    assert next(iter(DECODE(b'{"u":1}'))) is sys.intern("u")


# Raw JSON texts of hostile values (as they would stand in a body).
HOSTILE_VALUES: list[bytes] = [
    b'""', b'"plain"', b'"\x01"', b'"a\x1fb"', b'"\x7f"', b'"a\\"b"', b'"\\\\"', b'"\\/"', b'"\\b\\f\\n\\r\\t"',
    b'"\\u0041"', b'"\\u00e9"', b'"\\u4e2d"', b'"\\u0000"', b'"\\uFFFF"', b'"\\ud83d\\ude00"', b'"\\uD83D\\uDE00"',
    b'"\\ud83d"', b'"\\ude00"', b'"\\ud83dx"', b'"\\ud83d\\u0041"', b'"\\ud83d\\ud83d"', b'"\\u12"', b'"\\u12g4"',
    b'"\\x41"', b'"\\U0041"', b'"\\', b'"\\"', b'"abc', b'"\xe4\xb8\xad\xe6\x96\x87"', b'"\xf0\x9f\x98\x80"',
    b'"\xc0\xaf"', b'"\xed\xa0\x80"', b'"\xff"', b'"\xe4\xb8"', b'"\xe4\xb8\\n"', b'"\xf4\x90\x80\x80"',
    b'"\xc3\xa9\\u00e9\\n\xf0\x9f\x98\x80"', b'"' + b"x" * 600 + b'\\n"', b'"' + "中".encode() * 300 + b'"',
    b"0", b"-0", b"00", b"01", b"-01", b"-", b"+1", b"1", b"-1", b"123456789012345678", b"-123456789012345678",
    b"1234567890123456789", b"99999999999999999999999", b"18446744073709551615", b"-9223372036854775808",
    b"1.0", b"1.", b".5", b"1e5", b"1E+5", b"-1.5e-3", b"1e400", b"0x10", b"Infinity", b"NaN", b"-Infinity",
    b"true", b"tru", b"truex", b"false", b"fals", b"null", b"nul", b"None", b"True",
    b"[]", b"{}", b"[1,]", b"[,1]", b'{"a":1,}', b'{"a" 1}', b'{"a":}', b"{1:2}", b"[1 2]", b'["a",{"b":[null]}]',
    b'{"p":{"p":{"p":{"p":1}}}}', b"[" * 7 + b"]" * 7, b"[" * 8 + b"]" * 8, b"[" * 40 + b"]" * 40,
    b"[" * 40, b" \t\n\r 1 \t\n\r ", b"\x0c1", b"1\x00",
]


def template_event(field: str, raw: bytes) -> bytes:
    """A bench-like event with `field`'s value replaced by `raw`."""
    event = {"t": "click", "ts": 1764000000000, "id": "abc", "sid": "s1", "vid": "v1", "n": "nav", "k": "app1"}
    event[field] = "@@"
    return orjson.dumps(event).replace(b'"@@"', raw)


def test_hostile_values_in_every_field() -> None:
    for field in (*NAMES, "custom", "中文"):
        for raw in HOSTILE_VALUES:
            check(b"[" + template_event(field, raw) + b"]")
            check(template_event(field, raw))
            check(b'[{"k":"a","p":{"%s":%s}}]' % (field.encode(), raw))


def test_answers_on_the_values_the_beacon_sends() -> None:
    """Not None for what the fast path is for (else the tests above would pass vacuously)."""
    for raw in (b'"\\u00e9"', b'"\\ud83d\\ude00"', b'"a\\"b"', b'"\xe4\xb8\xad"', b"-0", b"123456789012345678",
                b"true", b"null", b"[]", b"{}", b'{"a":[1,"b"]}'):
        assert check(b"[" + template_event("ti", raw) + b"]") is not None, raw


def test_hostile_bodies() -> None:
    bodies = [
        b"", b" ", b"[", b"]", b"{", b"}", b"[]", b"{}", b" [ ] ", b"\n{\n}\n", b"[] x", b"[]\x00", b"[]]", b"[][]",
        b"\xef\xbb\xbf[]", b"null", b"1", b'"x"', b"true", b'{"a":1,"b":2,"a":3}', b'{"t":"a","u":"x","t":"b"}',
        b'[{"k":"a"},{"k":"b"},{"k":"a","k":"c"}]', b'[\t{ "k" :\r"a" ,\n"t":"click" } , {} ]',
        b'{"":1}', b'{"\\u0074":1}', b'{"t\\u0000":1}', b'{"\xe4\xb8\xad":1}', b'{"\xff":1}', b'{"\\ud800":1}',
        b"[" * 100_000, b"[" * 5_000 + b"]" * 5_000, b'{"a":' * 5_000 + b"1" + b"}" * 5_000,
        b'["' + b"\\n" * 50_000 + b'"]', b'["' + b"x" * 100_000, b"[" + b"1," * 50_000 + b"1]",
    ]
    for n in (0, 1, 31, 32, 33, 40, 64, 65, 200):  # an object's first 32 pairs are held, then its dict made
        pairs = [f'"f{i}":{i}'.encode() for i in range(n)] + [b'"f0":"again"', b'"t":"x"', b'"f1":null']
        bodies.append(b"{" + b",".join(pairs) + b"}")
        bodies.append(b"[{" + b",".join(pairs[::-1]) + b"}]")
    for body in bodies:
        check(body)


# The scan reads a string 16 bytes at a time (SSE2; 8 elsewhere) and stops at a quote, a
# backslash, a control byte or the first byte of 0x80 and above; integers are read 8 digits
# at a time (session 24). So each special byte at each place of strings of 0 to 70 bytes
# (across the blocks' edges), as a key (one of the names, or not) and as a value, in the
# middle of a body and at its very end (fewer than a block's bytes left).
SPECIALS = [b'\\"', b"\\\\", b"\\n", b"\\u00e9", b"\x01", b"\x1f", b"\x7f", b"\x80", b"\xc3\xa9", b"\xe4\xb8\xad",
            b"\xf0\x9f\x98\x80", b"\xff", b"\xe4\xb8", b" ", b"~"]


def test_every_special_byte_at_every_place_of_a_string() -> None:
    answered = 0
    for length in (*range(0, 40), *range(44, 50), *range(60, 71)):
        for place in range(length + 1):
            for special in SPECIALS:
                text = b"a" * place + special + b"b" * (length - place)
                for body in (b'[{"t":"' + text + b'","k":"app"}]', b'[{"' + text + b'":1,"k":"app"}]',
                             b'{"u":"' + text + b'"}', b'["' + text + b'"]', b'{"t' + text + b'":1}'):
                    answered += check(body) is not None
    assert answered > 10_000  # (most are JSON the C decoder answers)


def test_integers_across_the_eight_digit_steps() -> None:
    answered = 0
    for digits in range(1, 22):
        number = b"".join(b"%d" % ((i * 7 + 3) % 10) for i in range(digits))
        for sign in (b"", b"-"):
            for text in (b"1" + number[1:], b"9" * digits, b"0" + number[1:], number):
                for after in (b"", b",1", b"}", b".5", b"e3", b"E3", b"x", b" ", b"/", b":"):
                    for body in (b"[" + sign + text + after + b"]", b'{"ts":' + sign + text + after + b"}",
                                 b'[{"ts":' + sign + text + after + b',"k":"aaaaaaaaaaaaaaaaaaaa"}]'):
                        answered += check(body) is not None
            for place in range(digits):  # a byte beside the digits ('/' and ':') or a letter in its place
                for odd in (b"/", b":", b"a", b" ", b"\x00", b"\xb0"):
                    text = b"1" * place + odd + b"2" * (digits - place - 1)
                    check(b"[" + sign + text + b"]")
                    check(b'[{"ts":' + sign + text + b',"k":"aaaaaaaaaaaaaaaaaaaa"}]')
    assert answered > 500


def test_every_truncation_of_a_bench_body(post_bodies: list[bytes]) -> None:
    body = post_bodies[0]
    for end in range(len(body)):
        assert check(body[:end]) is None  # no prefix is a whole document


def test_random_mutations_of_bench_bodies(post_bodies: list[bytes]) -> None:
    rng = random.Random(22)
    pieces = [b'"', b"\\", b"\\u", b"\\ud83d", b"{", b"}", b"[", b"]", b",", b":", b" ", b"\x00", b"\xff", b"\xe4",
              b"-", b"0", b"9", b".", b"e", b"null", b"\n"]
    for _ in range(3000):
        body = bytearray(rng.choice(post_bodies[:20]))
        for _ in range(rng.randrange(1, 4)):
            at = rng.randrange(len(body))
            action = rng.randrange(3)
            if action == 0:
                del body[at:at + rng.randrange(1, 4)]
            elif action == 1:
                body[at:at] = rng.choice(pieces)
            else:
                body[at] = rng.randrange(256)
        check(bytes(body))


_KEYS = st.sampled_from([*NAMES, "", "a", "p", "中", "\u00e9", "x\ny", '"', "\\", "\ud83d", "\U0001f600"]) | st.text(max_size=8)
_SCALARS = (
    st.none() | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.integers(min_value=-(10**18) + 1, max_value=10**18 - 1)
    | st.sampled_from([0, -1, 1, 10**17, 10**18 - 1, 10**18, 2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1])
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x7F), max_size=40)
)
_DOCUMENTS = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(_KEYS, inner, max_size=12),
    max_leaves=40,
)


@settings(max_examples=2500, deadline=None)
@given(document=_DOCUMENTS.filter(lambda d: isinstance(d, (list, dict))), ascii_only=st.booleans(),
       spaced=st.booleans())
def test_random_documents(document: Any, ascii_only: bool, spaced: bool) -> None:
    """Random JSON written by the stdlib (escaped or raw UTF-8, spaced or compact; lone
    surrogates written as escapes when ascii_only, else the body is not UTF-8)."""
    text = json.dumps(document, ensure_ascii=ascii_only, separators=(", ", ": ") if spaced else (",", ":"),
                      indent=1 if spaced and ascii_only else None)
    body = text.encode("utf-8", "surrogatepass")
    check(body)
    check(b" \n" + body + b"\t\r\n")
    check(body + b"x")


@settings(max_examples=500, deadline=None)
@given(document=st.lists(st.dictionaries(st.sampled_from(NAMES), _SCALARS, max_size=20), min_size=1, max_size=5))
def test_random_batches_of_field_names(document: list[dict[str, Any]]) -> None:
    """Events of field names only, as orjson writes them: answered unless a value is a
    float or too large an integer, and every key interned."""
    if not _orjson_can(document):
        return
    body = orjson.dumps(document)
    ours = check(body)
    plain = all(not isinstance(v, float) and not (isinstance(v, int) and abs(v) >= 10**18)
                for event in document for v in event.values())
    assert (ours is not None) == plain


def _orjson_can(document: Any) -> bool:
    try:
        orjson.dumps(document)
    except TypeError:  # an int past 64 bits, a lone surrogate
        return False
    return True


# A value string that repeats within one body is one str object (session 22, values22): the
# decoder keeps a small table, local to the call, of the values it made, keyed by their raw
# bytes (slot by length and first/last 8 bytes, then memcmp), a slot overwritten on a
# collision. The tests below hold it to orjson's values (equal text, never a neighbour's),
# to its bound (no reference kept past the call, any number of distinct values) and check
# that it shares at all (else the session's saving would be vacuous).


def test_repeated_values_in_one_body_are_one_object() -> None:
    """Each repeated value of a bench-like body (plain, escaped, non-ASCII, up to 64 bytes)
    comes back as one object across the events; a value over 64 bytes is not shared. (No
    unique values here: a slot is overwritten on a collision, so in a bench body an event's
    unique `id` may cost a repeated value one more object.)"""
    values = ["app1", "s-1764000000-abcdef", "v-99", "click", "nav-home", "中文资源", 'a"b', "x" * 64]
    events = [{"t": values[3], "k": values[0], "sid": values[1], "vid": values[2], "n": values[4],
               "rt": values[5], "ti": values[6], "u": values[7], "pc": "y" * 65} for i in range(50)]
    for body in (orjson.dumps(events), json.dumps(events).encode(), json.dumps(events, ensure_ascii=False).encode()):
        decoded = check(body)
        assert decoded is not None
        for field in ("t", "k", "sid", "vid", "n", "rt", "ti", "u"):
            assert len({id(event[field]) for event in decoded}) == 1, (field, body[:80])
        assert len({id(event["pc"]) for event in decoded}) == 50


def test_repeats_are_not_kept_past_the_call() -> None:
    """The table's references are dropped when decode returns: a value made 3 times is held
    by the 3 places of the answer only (plus `text` and getrefcount's argument)."""
    assert DECODE is not None
    for body in (b'["abc-unique-1","abc-unique-1","abc-unique-1"]', b'[{"a":"abc-unique-2","a":1},'
                 b'"abc-unique-2","abc-unique-2","abc-unique-2"]'):
        decoded = DECODE(body)
        assert decoded is not None
        text = decoded[-1]
        assert sys.getrefcount(text) == 3 + 2, body


def test_values_that_share_a_slot_stay_apart() -> None:
    """Distinct values of one length, and values alike in their first and last 8 bytes (one
    slot by construction), decode to their own text: a table that matched on the length or
    the slot alone would hand back a neighbour's."""
    same_length = [f"{i:04d}" for i in range(200)] + [f"v{i:062d}" for i in range(200)]
    alike = ["01234567" + f"{i:05d}" + "89abcdef" for i in range(500)]
    for values in (same_length, alike, same_length[::-1] + same_length, alike + alike[::-1]):
        assert check(orjson.dumps(values)) is not None
        assert check(orjson.dumps([{"t": value, "n": "x", "k": value} for value in values])) is not None


def test_the_table_is_bounded_on_bodies_of_distinct_values() -> None:
    """10,000 distinct strings (and 10,000 alike in their slot key) decode right."""
    rng = random.Random(2217)
    distinct = [f"{rng.random():.17f}"[: rng.randrange(1, 20)] + str(i) for i in range(10_000)]
    alike = ["head1234" + f"{i:06d}" + "tail5678" for i in range(10_000)]
    for values in (distinct, alike, [value + "é" for value in distinct]):
        assert check(orjson.dumps(values)) is not None
        assert check(orjson.dumps([{"k": value, "n": value[::-1]} for value in values])) is not None
