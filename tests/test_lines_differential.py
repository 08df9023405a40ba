"""The journal's line encoder in C (store/_lines.c) against store/records.py's Python one,
the reference it stands in for (orjson): the very bytes for every line it writes, and None
(Python then writes the line, or raises what it raises) for every value it leaves alone.

The journal is the crash-safety record: a line written wrong replays to wrong counts, or is
quarantined. So the rows the collector really writes (every event type and deep-tag feature,
re-sent events) are compared, then hostile strings and integers field by field, then random
hits."""

from __future__ import annotations

import random

import orjson
import pytest
from test_ingest import headers, pv

from collector.enrich.device import Device
from collector.enrich.geo import Region
from collector.features.facts import DeepFacts, Session
from collector.hit.record import Hit
from collector.native import c_module
from collector.store import records
from collector.store.journal import DECODERS, Interned
from collector.web.appkeys import INGEST

C_LINES = c_module("collector.store._lines")
pytestmark = pytest.mark.skipif(C_LINES is None, reason="store/_lines.c is not built (pip install -e .)")

DEVICE = Device("pc", "Chrome", "Windows")
REGION = Region("CN", "330000", "330100", "中国", "浙江省", "杭州市")
SESSION = Session("ms1", 30, 120, 1, (("", ""), ("resource", "r1")))
DEEP = DeepFacts([("m:resource", "watch_ms:r1", 30_000), ("c", "pv_logged_in", 1)],
                 [("u:media", "01" * 8, "11" * 8)], SESSION)

# Strings orjson must escape or write as UTF-8: every control character, quote, backslash,
# DEL, the line separators JSON allows raw, 2-, 3- and 4-byte UTF-8, long runs.
HOSTILE_TEXTS = (
    "", "a", "".join(map(chr, range(0x20))), '"', "\\", '\\"\\', "/", "\x7f", "\x80\xff", "\u2028\u2029",
    "é", "页面/首页", "🎓", "a🎓b\x00c\"d", "\ufeff\uffff", "\U0010ffff", "x" * 10_000, '"' * 3000,
    "é" * 5000, "\n" * 2000, "mixed é \x01 🎓 \\ end",
)
# A str holding a surrogate: orjson refuses it (a TypeError), so must encode_hits.
SURROGATES = ("\ud800", "a\udfffb", "\ud83c\udf93", "🎓\udc00")
INTS = (0, 1, -1, 9, 10, -10, 2**31, -(2**31), 2**53, 2**63 - 1, -(2**63), 29_000_000, 86_400_000)

STR_FIELDS = ("app", "etype", "page", "page_code", "referrer", "first_party_id", "lang", "event_id")
INT_FIELDS = ("minute", "visit_flag", "engaged_ms", "scroll", "resent")


def a_hit(**fields) -> Hit:
    base = dict(app="a", minute=29_000_000, etype="pageview", device=DEVICE, region=REGION, visitor=b"\x01" * 8,
                month_visitor=b"\x02" * 8, page="https://e.edu/", page_code="pc1", referrer="(direct)", visit_flag=1,
                first_party_id="vid1", lang="zh-cn", event_id="e1", resent=0, deep=DEEP)
    return Hit(**{**base, **fields})


def python_or_error(hits: list) -> list[bytes] | str:
    try:
        return records.python_lines(hits)
    except Exception as error:  # noqa: BLE001 - the type is the answer compared
        return type(error).__name__


def assert_same(hits: list) -> list[bytes] | None:
    """The C encoder writes the reference's lines, or leaves them to it (None); then
    encode_hits answers as the reference does. Returns what C wrote."""
    ours = C_LINES_ENCODE(hits)
    reference = python_or_error(hits)
    if ours is not None:
        assert ours == reference, hits
    try:
        answered: list[bytes] | str = records.encode_hits(hits)
    except Exception as error:  # noqa: BLE001
        answered = type(error).__name__
    assert answered == reference
    return ours


C_LINES_ENCODE = records._C_LINES if records._C_LINES is not None else (lambda hits: None)


def test_encode_hits_runs_the_c_encoder_when_built():
    assert records._C_LINES is not None
    lines = records.encode_hits([a_hit(), a_hit(page="/2")])
    assert lines == records.python_lines([a_hit(), a_hit(page="/2")]) and len(lines) == 1


async def test_every_row_the_collector_writes_is_the_reference_line(collector_client):
    """Events of every type and deep-tag feature (media with its session, interactions,
    click tracks and exposures, logged-in page views, engagement), re-sent ones, and hostile
    strings where a client may put them, through the real collector into its journal: each
    line it wrote is the line the Python reference writes for the hits it replays to, and
    the C encoder's."""
    client = await collector_client(flush_interval=3600)
    ingest = client.server.app[INGEST]
    video = {"rid": "v1", "rt": "video", "subj": "math", "stage": "junior", "src": "zjer", "dur": 100}
    nasty = 'q"b\\s/\x01\x1f\x7f\u2028é页🎓'
    bodies = [
        [pv(), pv(uid="42", etr="nav", epos=2, lang="zh-CN", r="https://www.baidu.com/s?q=x", pc="c1"),
         {"k": "app1", "t": "engagement", "et": 15_000, "sd": 80}],
        [{"k": "app1", "t": "media", "n": n, "ms": "s1", "ws": ws, "wt": ws * 1000, "pos": ws, "pb": 50, **video}
         for n, ws in (("play", 0), ("progress", 50), ("ended", 100))]
        + [{"k": "app1", "t": "media", "n": "rewind", "ms": "s1", "ws": 0, "wt": 0, "pos": 0, **video}],  # rejected
        [{"k": "app1", "t": "interaction", "n": n, "rid": "v1", "rt": "video", "subj": "math", **extra}
         for n, extra in (("rate", {"score": 4}), ("like", {}), ("unlike", {}), ("favorite", {}), ("comment", {}),
                          ("share", {"ch": "wechat"}))],
        [{"k": "app1", "t": "exposure", "tr": "banner", "pos": 1, "n": "a"}, {"k": "app1", "t": "exposure", "n": "card"},
         {"k": "app1", "t": "click", "n": "slide-a", "tr": "banner", "pos": 1}, {"k": "app1", "t": "click", "n": "signup"},
         {"k": "app1", "t": "custom", "n": "x"}],
        [pv(id="ev-1"), pv(id="ev-2", re=1), {"k": "app1", "t": "click", "n": "signup", "id": "ev-3", "re": 1}],
        [pv(url=f"https://e.edu/{nasty}", r=f"https://r.edu/{nasty}", pc=nasty, lang="zh-CN", vid=nasty, id=nasty),
         {"k": "app1", "t": "click", "n": nasty, "tr": nasty, "pos": 3},
         {"k": "app1", "t": "media", "n": "play", "ms": nasty, "ws": 0, "wt": 0, "pos": 0, **video, "rid": nasty,
          "subj": nasty}],
        [pv()] * 50,
    ]
    for body in bodies:
        resp = await client.post("/c", data=orjson.dumps(body), headers=headers())  # a browser: bots count no deep facts
        assert resp.status in (204, 400) and "rewind" not in str(body) or resp.status == 400, await resp.text()
    lines = ingest.journal._active.path.read_bytes().splitlines(keepends=True)
    decode = DECODERS[orjson.loads(lines[0])["eb_journal"]](orjson.loads(lines[0]))
    seen = {"deep": 0, "session": 0, "resent": 0, "hostile": 0, "hits": 0}
    for line in lines[1:]:
        value = orjson.loads(line)
        if len(value) == 3:  # a reject or a flag: encode_reject, unchanged
            continue
        hits = [args[0] for _, args in decode(value, Interned())]
        assert records.python_lines(hits) == [line]
        assert C_LINES_ENCODE(hits) == [line]
        seen["hits"] += len(hits)
        seen["deep"] += sum(hit.deep is not None for hit in hits)
        seen["session"] += sum(hit.deep is not None and hit.deep.session is not None for hit in hits)
        seen["resent"] += sum(hit.resent for hit in hits)
        seen["hostile"] += line.count(b"\\u001f")
    assert seen["hits"] >= 70 and seen["session"] >= 3 and seen["deep"] >= 15 and seen["resent"] >= 2 and seen["hostile"] >= 3, seen


@pytest.mark.parametrize("text", HOSTILE_TEXTS)
@pytest.mark.parametrize("field", STR_FIELDS)
def test_a_hostile_string_in_any_str_field_is_the_reference_bytes(field, text):
    assert assert_same([a_hit(**{field: text})]) is not None
    assert assert_same([a_hit(), a_hit(**{field: text}), a_hit(**{field: text})]) is not None


@pytest.mark.parametrize("text", HOSTILE_TEXTS)
def test_a_hostile_string_in_the_device_region_and_deep_facts_is_the_reference_bytes(text):
    hits = [
        a_hit(device=Device(text, "Chrome", text)), a_hit(region=Region("CN", text, "", text, "", "")),
        a_hit(deep=DeepFacts([(text, text, 1)], [(text, "x", text)], Session(text, 1, 2, 0, ((text, text),)))),
    ]
    for hit in hits:
        assert assert_same([hit]) is not None
    assert assert_same(hits) is not None


@pytest.mark.parametrize("text", SURROGATES)
@pytest.mark.parametrize("field", ("page", "app", "event_id"))
def test_a_surrogate_is_left_to_python_which_refuses_it_as_orjson_does(field, text):
    hits = [a_hit(), a_hit(**{field: text})]
    assert C_LINES_ENCODE(hits) is None
    with pytest.raises(TypeError):  # orjson.JSONEncodeError
        records.encode_hits(hits)


@pytest.mark.parametrize("number", INTS)
@pytest.mark.parametrize("field", INT_FIELDS)
def test_an_int_of_64_bits_in_any_int_field_is_the_reference_bytes(field, number):
    negated = -number if -number < 2**63 else number  # -(-2**63) is past 64 bits
    assert assert_same([a_hit(**{field: number}), a_hit(**{field: negated})]) is not None
    assert assert_same([a_hit(deep=DeepFacts([("c", "f", number)], [], Session("m", number, 0, 0, ())))]) is not None


@pytest.mark.parametrize("value", (2**63, -(2**63) - 1, 2**64 - 1, 2**64, 10**30, True, False, 1.5, b"x", object()))
def test_what_it_leaves_to_python_it_answers_none_and_encode_hits_answers_as_python(value):
    """Past 64 bits, a bool, a float, another type: C answers None; Python writes it
    (orjson writes up to 2**64 - 1 and true/false, _row puts them in the row as they are)
    or raises; encode_hits answers the same either way."""
    for hit in (a_hit(scroll=value), a_hit(page=value), a_hit(deep=DeepFacts([("c", "f", value)], []))):
        assert assert_same([a_hit(), hit]) is None


class Text(str):
    pass


class Number(int):
    pass


@pytest.mark.parametrize("hits", [
    [a_hit(page=Text("p"))],  # subclasses: orjson writes them, C leaves them
    [a_hit(minute=Number(5))],
    [a_hit(device=["pc", "Chrome", "Windows"])],  # not a tuple
    [a_hit(visitor=bytearray(b"\x01" * 8))],  # not bytes
    [a_hit(deep=DeepFacts([], [], Session("m", 1, 1, 1, ("ab",))))],  # a target that list() splits
    [a_hit(deep=SESSION)],  # a session outside deep facts: Python refuses it
    [tuple(a_hit())],  # not a Hit
])
def test_values_of_other_types_are_left_to_python(hits):
    assert assert_same(hits) is None


def test_not_a_list_is_left_to_python():
    """(encode_hits itself, compiled, takes only a list.)"""
    assert C_LINES_ENCODE((a_hit(),)) is None


def test_nesting_is_bounded():
    deep: list = []
    nested = deep
    for _ in range(40):
        nested.append([])
        nested = nested[0]
    assert assert_same([a_hit(deep=DeepFacts([("c", "f", 1)], deep))]) is None
    shallow: list = [[[["x"]]]]
    assert assert_same([a_hit(deep=DeepFacts([("c", "f", 1)], shallow))]) is not None


def test_runs_of_shared_request_fields_split_lines_as_python_does():
    """A new line where a hit's request fields differ from its run's first hit's (equal
    values count as shared, not only the same objects)."""
    hits = [a_hit(), a_hit(visitor=bytes(b"\x01" * 8)), a_hit(device=Device("pc", "Chrome", "Windows")),
            a_hit(region=REGION._replace(city_name="x")), a_hit(app="b"), a_hit(app="b", first_party_id=""),
            a_hit(app="b", first_party_id="", month_visitor=b"\x03" * 8), a_hit(month_visitor=b"\x03" * 8)]
    lines = assert_same(hits)
    assert lines is not None and len(lines) == 6
    assert assert_same([]) == []


def _text(rng: random.Random) -> str:
    alphabet = rng.choice(("abcxyz:/_-.?=&0123456789", "aé页🎓\x00\x1f\"\\\n\x7f\u2028 "))
    return "".join(rng.choice(alphabet) for _ in range(rng.choice((0, 1, 3, 12, 40, 300))))


def _int(rng: random.Random) -> int:
    if rng.random() < 0.2:
        return min(rng.choice(INTS) * rng.choice((1, -1)), 2**63 - 1)
    return rng.getrandbits(rng.randint(1, 63)) * rng.choice((1, -1))


def _deep(rng: random.Random) -> DeepFacts | None:
    if rng.random() < 0.2:
        return None
    incs = [(_text(rng), _text(rng), _int(rng)) for _ in range(rng.randint(0, 6))]
    members = [(_text(rng), _text(rng), _text(rng)) for _ in range(rng.randint(0, 3))]
    session = None
    if rng.random() < 0.3:
        targets = tuple((_text(rng), _text(rng)) for _ in range(rng.randint(0, 4)))
        session = Session(_text(rng), _int(rng), _int(rng), rng.randint(0, 1), targets)
    return DeepFacts(incs, members, session)


def _random_hit(rng: random.Random, like: Hit | None) -> Hit:
    fields = {name: _text(rng) for name in STR_FIELDS} | {name: _int(rng) for name in INT_FIELDS}
    fields |= dict(device=Device(*(_text(rng) for _ in Device._fields)), region=Region(*(_text(rng) for _ in Region._fields)),
                   visitor=rng.randbytes(rng.choice((0, 8, 16))), month_visitor=rng.randbytes(16), deep=_deep(rng))
    if like is not None and rng.random() < 0.8:  # mostly a request's next hit: its request fields
        fields |= {name: getattr(like, name) for name in records.REQUEST_FIELDS}
    return Hit(**fields)


def test_random_hits_are_the_reference_lines():
    rng = random.Random(20261201)
    written = hits_written = 0
    for _ in range(600):
        hits: list[Hit] = []
        for _ in range(rng.choice((1, 1, 2, 7, 50))):
            hits.append(_random_hit(rng, hits[-1] if hits else None))
        ours = C_LINES_ENCODE(hits)
        assert ours is not None and ours == records.python_lines(hits), hits
        written += len(ours)
        hits_written += len(hits)
    assert hits_written > 3000 and written > 600


def test_tuples_written_again_are_the_reference_bytes():
    """store/_lines.c keeps the JSON of tuples of str and int by identity (a deep fact's
    increments are the same few tuples event after event): the tuples written again, those
    too long to keep, those it must not keep (a list inside can change), and more tuples
    than it keeps, all still write the reference's bytes."""
    rng = random.Random(17)
    kept = [(_text(rng), _text(rng), _int(rng)) for _ in range(3000)] + [("c", "pv_logged_in", 1), ("x" * 80, "y", 1)]
    mutable = ("m:item", ["a"], 1)
    for _ in range(3):
        for start in range(0, len(kept), 50):
            hit = a_hit(deep=DeepFacts(kept[start:start + 50] + [mutable], [mutable]))
            assert assert_same([hit, hit]) is not None
        mutable[1].append("é\x00")  # written anew each time, never kept


# store/_lines.c writes a string of fewer than 8 bytes as one chunk (4 and 4 bytes
# overlapping from 4, its first, middle and last byte below), one of 8 or more 8 bytes at a
# time and its last bytes as the last 8 when nothing before needed escaping: each length to
# 17 with one byte to escape (or of 2- to 4-byte UTF-8) at each place, and the bytes next to
# the ranges it tests (0x1f, space, '!', '#', '[', ']', 0x7f).
EDGE_BYTES = ("\x00", "\x1f", " ", "!", '"', "#", "[", "\\", "]", "/", "\x7f", "\x80", "é", "页", "🎓")


def _edge_texts() -> list[str]:
    texts = []
    for size in range(18):
        texts.append("".join(chr(ord("a") + i % 26) for i in range(size)))
        for at in range(size):
            for edge in EDGE_BYTES:
                texts.append("".join(edge if i == at else chr(ord("a") + i % 26) for i in range(size)))
    return texts


EDGE_TEXTS = _edge_texts()


def test_a_string_of_each_length_with_an_edge_byte_at_each_place_is_the_reference_bytes():
    for start in range(0, len(EDGE_TEXTS), 40):
        texts = EDGE_TEXTS[start:start + 40]
        hits = [a_hit(page=text, lang=text[:3], event_id=text[-5:]) for text in texts]
        assert assert_same(hits) is not None


# _lines.c counts an int's digits from its bit length and one compare with a power of ten:
# each side of every power of ten, each power of two, to the 64-bit ends.
EDGE_INTS = sorted({sign * n for k in range(20) for n in (10**k - 1, 10**k, 10**k + 1) for sign in (1, -1)}
                   | {sign * n for k in range(64) for n in (2**k - 1, 2**k, 2**k + 1) for sign in (1, -1)})
EDGE_INTS = [n for n in EDGE_INTS if -(2**63) <= n < 2**63] + [-(2**63)]


def test_an_int_each_side_of_a_power_of_ten_or_two_is_the_reference_bytes():
    for start in range(0, len(EDGE_INTS), 50):
        hits = [a_hit(minute=n, scroll=-n if -n < 2**63 else n) for n in EDGE_INTS[start:start + 50]]
        assert assert_same(hits) is not None


def test_request_fields_of_equal_but_not_the_same_str_share_a_line():
    """_lines.c compares two str of a run's request fields itself (length, kind, bytes):
    equal texts of every kind share a line, texts that differ in length, kind or one code
    point do not."""
    texts = ["app", "appé", "app页", "app🎓", "ap", "apq", "", "é", "\x00"]
    for text in texts:
        for other in texts:
            copied = "".join(list(other))  # a new str object of the same text
            lines = assert_same([a_hit(app=text), a_hit(app=copied), a_hit(app=text, first_party_id="".join(list("vid1")))])
            assert lines is not None and len(lines) == (1 if text == other else 3)


def test_a_kept_tuple_of_tuples_is_the_reference_bytes_and_one_holding_a_list_is_written_anew():
    """_lines.c keeps a tuple of kept tuples (a session's targets) too: written again it is
    copied; a tuple of tuples one of which holds a list (its JSON can change) is never kept."""
    targets = tuple((f"d{i}", f"v{i}é") for i in range(6))
    changing = ("m", ["a"])
    outer = (("x", "y"), changing, 1)
    for round_ in range(3):
        hits = [a_hit(deep=DeepFacts([], [], Session("ms", round_, 0, 0, targets))),
                a_hit(deep=DeepFacts([outer, (("x", "y"), ("z", 2))], []))]
        assert assert_same(hits) is not None
        changing[1].append(f"é{round_}\x01")


def test_lines_longer_than_their_first_room_are_the_reference_bytes():
    """A line of a few hits starts on the stack (4 KiB) and moves into its bytes object when
    it outgrows it; a longer one starts in its bytes object (512 bytes a hit) and grows:
    each way, with strings that need escaping at the moves."""
    for count, size in ((1, 5000), (3, 2000), (7, 600), (50, 1000), (60, 3)):
        hits = [a_hit(page=("p\"é\x01" * size)[:size * 2 + i], event_id=str(i)) for i in range(count)]
        assert assert_same(hits) is not None


def test_values_repeated_across_a_requests_rows_are_the_reference_bytes():
    """_lines.c copies a row's value from the previous row's when it is the very object
    written there: the same objects, equal but other objects, a value that comes back after
    another, and the same deep facts, str and int in different fields, all in one line."""
    page = "https://e.edu/页?x=\"1\"" * 3
    other_page = "".join(list(page))  # equal, another object
    big = 10**18 + 7
    shared = DeepFacts([("c", "f", 1), ("m:x", "y" * 30, big)], [("u:m", "a" * 16, "b" * 16)], SESSION)
    equal = DeepFacts([("c", "f", 1), ("m:x", "y" * 30, big)], [("u:m", "a" * 16, "b" * 16)], SESSION)
    hits = [a_hit(page=page, deep=shared, scroll=big), a_hit(page=page, deep=shared, scroll=big),
            a_hit(page=other_page, deep=equal, scroll=int(str(big))), a_hit(page=page, deep=None, scroll=-1),
            a_hit(page=page, deep=shared, referrer=page, lang=page, engaged_ms=big), a_hit(page="", deep=shared),
            a_hit(page=page, deep=shared, etype=page)]
    assert assert_same(hits) is not None
    assert assert_same(hits[::-1]) is not None
    rng = random.Random(25)
    values = [page, other_page, "", "x", "\x00", 0, 1, big, -big, None]
    for _ in range(30):
        hits = [a_hit(page=rng.choice(values[:5]), referrer=rng.choice(values[:5]), scroll=rng.choice(values[5:9]),
                      deep=rng.choice((shared, equal, None))) for _ in range(rng.randint(2, 40))]
        assert assert_same(hits) is not None
