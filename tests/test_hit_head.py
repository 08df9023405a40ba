"""hit_head.py's `read_head` against the regex it replaced (issue 17): the same heads served.

The fast path's rules of what it serves (issue 13) were first written as a regex over the
whole head and another over its header lines; the fast path now reads heads without
them (compiled, and several times cheaper). The regexes stay here as the specification:
every head below — hostile ones from bench/fuzz.py, the differential corpus, random
bytes spliced into a hit, realistic traffic — must be read alike by both, to the values.
test_http_differential.py checks the whole fast path against aiohttp over sockets.
"""

from __future__ import annotations

import re

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_http_differential import CORPUS, HIT, hit, post

from bench import traffic
from bench.fuzz import raw_requests
from bench.ippool import load_pool
from collector.web.hit_head import (
    JUDGE_LINES,
    JUDGED,
    LINE_KIND,
    MAX_HEADERS,
    NOT_FAST,
    PLAIN_NAMES,
    READ,
    judge_lines,
    read_head,
    sender,
)

FAST_HEAD = re.compile(
    rb"(GET|POST|OPTIONS) (/c(?:\?[\x21\x22\x24-\x7e]*)?) HTTP/1\.1"
    rb"((?:\r\n[-!#$%&'*+.^_`|~0-9A-Za-z]+:[\t\x20-\x7e\x80-\xff]*){0," + str(MAX_HEADERS).encode() + rb"})"
)
READ_LINE = re.compile(rb"\r\n(" + b"|".join(JUDGED + READ) + rb"):([^\r]*)")


def by_regex(buffer: bytes, pos: int, end: int):
    """What the fast path read of a head before issue 17 (hit_server.py's FAST_HEAD and _read_lines)."""
    head = FAST_HEAD.fullmatch(buffer, pos, end)
    if head is None:
        return None
    method, target, fields = head.groups()
    lower = fields.lower()
    judged, values, forwarded = [], {}, []
    for line in READ_LINE.finditer(lower):
        name = line[1]
        if name in JUDGED:
            judged.append(name)
            if name != b"user-agent":
                continue
        value = fields[line.start(2):line.end(2)].strip()
        if name == b"x-forwarded-for":
            forwarded.append(value)
        elif name not in values:
            values[name] = value
    if judged.count(b"host") != 1 or len(set(judged)) != len(judged) or not NOT_FAST.isdisjoint(judged):
        return None
    # hit_connection.py once asked `lower` itself whether "content-length" was in it, and how often.
    return method, target, lower.count(b"content-length"), values, forwarded


def head_end(data: bytes, pos: int = 0) -> int:
    """Where the head from `pos` ends (its blank line), or the end of `data`."""
    end = data.find(b"\r\n\r\n", pos)
    return len(data) if end < 0 else end


def read(data: bytes):
    return read_head(data, 0, head_end(data))


def assert_read_alike(data: bytes, pos: int = 0) -> None:
    end = head_end(data, pos)
    assert read_head(data, pos, end) == by_regex(data, pos, end), data[pos:end]
    line_end = data.find(b"\r", pos, end)
    fields = data[line_end:end] if line_end >= 0 else b""
    if not fields or fields.startswith(b"\r\n"):  # (else read_head refuses the request line)
        assert_lines_judged_alike(fields)


def assert_lines_judged_alike(fields: bytes) -> None:
    """JUDGE_LINES (web/_head_scan.c when built) answers as judge_lines, its Python form,
    and reads the same values; served, both count "content-length" as the lower-cased lines
    hold it. `fields`: empty or from a CRLF on, as read_head gives them."""
    assert not fields or fields.startswith(b"\r\n")
    by_python: tuple[dict[bytes, bytes], list[bytes]] = ({}, [])
    judged = judge_lines(fields, *by_python)
    by_c: tuple[dict[bytes, bytes], list[bytes]] = ({}, [])
    assert JUDGE_LINES(fields, *by_c) == judged, fields
    if judged is not None:
        assert judged == fields.lower().count(b"content-length"), fields
        assert list(by_python[0].items()) == list(by_c[0].items()) and by_python[1] == by_c[1], fields


def test_the_differential_corpus_is_read_alike():
    served = 0
    for data in CORPUS.values():
        assert_read_alike(data)
        served += read(data) is not None
    assert served >= 5  # the corpus has hits, POSTs and pipelined ones


def test_heads_the_fast_path_serves_and_refuses():
    forwarded = hit(b"X-Forwarded-For: 1.2.3.4\r\nx-forwarded-for:  5.6.7.8 \r\nReferer: https://a.edu/X\r\n")
    method, target, _, values, every = read(forwarded)
    assert (method, target) == (b"GET", b"/c?k=diff&t=pageview&u=https%3A%2F%2Fa.edu%2F")
    assert every == [b"1.2.3.4", b"5.6.7.8"] and values[b"referer"] == b"https://a.edu/X"  # as sent: case kept
    assert sender(values, every)[0] == "1.2.3.4,5.6.7.8"
    for refused in (
        hit(b"Upgrade: h2c\r\n"), hit(b"X-A: 1\rX-B: 2\r\n"), hit(b"X(A): 1\r\n"), hit(b"X-A : 1\r\n"), hit(b": 1\r\n"),
        hit(host=b""), hit(host=b"Host: x\r\nhost: y\r\n"), hit(line=b"GET /cx HTTP/1.1\r\n"),
        hit(line=b"GET /c?a#b HTTP/1.1\r\n"), hit(line=b"GET /c?a  HTTP/1.1\r\n"), hit(line=b"GET /c HTTP/1.1 \r\n"),
        post(b"Transfer-Encoding: chunked\r\n"), b"GET /c HTTP/1.1\r\n", b"GET /c HTTP/1.1\r",
    ):
        assert read(refused) is None, refused
        assert_read_alike(refused)


def test_the_names_known_to_be_tokens_are_read_as_any_other_line():
    """read_head skips the token check for the names of PLAIN_NAMES: each must be a token
    (the regex's), not judged or read, and a hit with it — in any case, twice, beside a
    judged line — is read as the regex reads it."""
    token = re.compile(rb"[-!#$%&'*+.^_`|~0-9a-z]+")
    for name in PLAIN_NAMES:
        assert token.fullmatch(name) and name not in JUDGED + READ, name
        for data in (
            hit(name + b": 1\r\n"), hit(name.upper() + b":\r\n" + name.title() + b": a, b\r\n"),
            hit(name + b": 1\r\nUpgrade: h2c\r\n"), hit(name + b" : 1\r\n"), hit(name + b"\x00: 1\r\n"),
        ):
            assert_read_alike(data)
        assert read(hit(name + b": 1\r\n")) is not None


def test_header_line_limit():
    for n in (MAX_HEADERS - 1, MAX_HEADERS, MAX_HEADERS + 1):
        data = hit(b"".join(b"X-N-%d: v\r\n" % i for i in range(n - 2)))
        assert (read(data) is None) == (n > MAX_HEADERS)
        assert_read_alike(data)


def test_realistic_traffic_is_read_alike_and_served():
    population = traffic.Population(load_pool(), 2000, seed=7)
    for shape in ("get", "post50"):
        for request in traffic.realistic(population, 200, shape, 1_700_000_000_000):
            data = traffic.http_bytes(request)
            assert read(data) is not None
            assert_read_alike(data)


def test_a_head_later_in_the_buffer_is_read_alike():
    data = HIT + hit(b"X-A: 1\r\n") + HIT
    assert_read_alike(data, len(HIT))
    assert_read_alike(data, len(HIT) + 3)  # from the middle of a request line: refused by both


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(raw_requests())
def test_hostile_heads_are_read_alike(data):
    assert_read_alike(data)


# Bytes that matter to the rules: line ends, separators, control bytes, obs-text, '#', '?'.
SPLICED = st.binary(max_size=6) | st.lists(st.sampled_from(
    [b"\r", b"\n", b"\r\n", b"\x00", b"\x7f", b"\t", b" ", b":", b"#", b"?", b"\xe9", b"(", b"Host: y", b"\r\nUpgrade: x"]
), max_size=4).map(b"".join)


@settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.integers(0, len(HIT) - 4), SPLICED, st.integers(0, 3))
@example(len(b"GET /c"), b"\x7f", 0)
@example(HIT.index(b"Host"), b"\r", 1)
def test_bytes_spliced_into_a_hit_are_read_alike(at, spliced, dropped):
    assert_read_alike(HIT[:at] + spliced + HIT[at + dropped:])


def test_the_bytes_outside_a_target_are_counted_as_translate_counts_them():
    """OUTSIDE_TARGET (web/_head_scan.c's ByteSet when built) counts what
    `len(data.translate(None, TARGET_BYTES))` counts: every byte alone, all 256 in a run,
    and random runs."""
    import random

    from collector.web.hit_head import OUTSIDE_TARGET, TARGET_BYTES

    rng = random.Random(16)
    every = bytes(range(256))
    for data in [b"", every, every * 9, *(bytes([byte]) for byte in range(256)),
                 *(bytes(rng.randrange(256) for _ in range(rng.randrange(2000))) for _ in range(300))]:
        assert OUTSIDE_TARGET(data) == len(data.translate(None, TARGET_BYTES)), data[:40]


def test_a_head_end_is_found_where_bytes_find_finds_it():
    """HEAD_END (web/_head_scan.c's head_end when built) answers as
    `buffer.find(b"\\r\\n\\r\\n", pos)`: in pipelined realistic hits from every start, in
    heads cut short, in runs of CR and LF pieces (a CRLF CRLF overlapping CRs, a bare CR just
    before the end) and in random bytes, from every position and from negative ones."""
    import random

    from collector.web.hit_head import HEAD_END, find_head_end

    rng = random.Random(29)
    requests = [traffic.http_bytes(r) for r in traffic.realistic(traffic.Population(load_pool(), 50, seed=3), 20, "get", 0)]
    pipelined = b"".join(requests)
    pieces = [b"\r", b"\n", b"\r\n", b"\r\n\r\n", b"a", b"\r\r\n\n", b"\x00"]
    buffers = [b"", b"\r\n\r", b"\r\n\r\n", b"x\r\n\r\n", pipelined, *(r[:cut] for r in requests[:3] for cut in range(0, len(r), 7)),
               *(b"".join(rng.choice(pieces) for _ in range(rng.randrange(30))) for _ in range(400)),
               *(bytes(rng.choice(b"\r\nab") for _ in range(rng.randrange(200))) for _ in range(200))]
    for buffer in buffers:
        for pos in [*range(-6, len(buffer) + 3)] if len(buffer) < 300 else [-5, *range(0, len(buffer) + 2, 13)]:
            assert HEAD_END(buffer, pos) == buffer.find(b"\r\n\r\n", pos) == find_head_end(buffer, pos), (buffer[:40], pos)


LINE_PIECES = [
    *LINE_KIND, *(name.upper() for name in LINE_KIND), b"x-a", b"host", b"Host", b"HOST", b":", b": ", b" :", b"::",
    b"\t", b" ", b"  v ", b"\tv\t", b"\r\n", b"\r\n", b"\r\n", b"\r", b"\n", b"\x00", b"\x7f", b"\xe9", b"(", b"-", b"a, b",
    b"CoNtEnT-lEnGtH", b"content", b"length", b"Content-Length: 5", b"content-length-", b"\xc3ontent-length",
]


def random_fields(rng) -> bytes:
    lines = []
    for _ in range(rng.choice([0, 1, 2, 5, 12, 40])):
        name = rng.choice([*LINE_KIND, b"host", b"x-forwarded-for", b"user-agent"])
        line = (name.title() if rng.random() < 0.5 else name) + b":" + rng.choice([b" v", b"", b" \tA b\t ", b"x"])
        if rng.random() < 0.2:
            at = rng.randrange(len(line) + 1)
            line = line[:at] + rng.choice(LINE_PIECES) + line[at:]
        lines.append(b"\r\n" + line)
    return b"".join(lines)


def test_random_header_lines_are_judged_alike_by_both_forms():
    import random

    rng = random.Random(16)
    served = 0
    for _ in range(20000):
        fields = random_fields(rng)
        assert_lines_judged_alike(fields)
        served += judge_lines(fields, {}, []) is not None
    assert served > 500  # (901 with this seed)
    for count in (MAX_HEADERS - 1, MAX_HEADERS, MAX_HEADERS + 1):
        assert_lines_judged_alike(b"\r\nHost: a" + b"\r\nX-N: v" * (count - 1))
    for fields in (b"", b"\r\n", b"\r\nhost:", b"\r\nhost:\r\n", b"\r\nhost: a\r", b"\r\nhost: a\n",
                   b"\r\n\r\nhost: a", b"\r\nhost : a", b"\r\n:a\r\nhost: a", b"\r\nhost: a\r\nHOST: b"):
        assert_lines_judged_alike(fields)


def test_content_length_is_counted_wherever_and_however_it_is_written():
    """hit_connection.py hands a GET with "content-length" anywhere in its header lines to
    aiohttp, and a POST unless it appears once: counted in names and values, in any case,
    at the lines' edges, back to back, cut short or bordered by bytes that lower-case (or
    OR 0x20) near its letters."""
    cases = {
        b"\r\nhost: a": 0, b"\r\nContent-Length: 5\r\nhost: a": 1, b"\r\nhost: a\r\nCONTENT-LENGTH:5": 1,
        b"\r\nhost: content-length": 1, b"\r\nhost: acontent-lengthcontent-length": 2,
        b"\r\nhost: a\r\nx-content-length: 1\r\ncontent-length: 2": 2, b"\r\nhost: content-lengt": 0,
        b"\r\nhost: ontent-length": 0, b"\r\nhost: content_length": 0, b"\r\nhost: content\rlength": None,
        b"\r\nhost: c\x0fntent-length": None, b"\r\nhost: \xe3ontent-length": 0, b"\r\nhost: cOnTeNt-LeNgTh": 1,
        b"\r\nhost: content-\x0cength": None, b"\r\nhost: content-lengt\xe8": 0, b"\r\nhost: CONTENT-LENGT@": 0,
        b"\r\nhost: -length": 0, b"\r\nhost: content-": 0, b"\r\nhost: -": 0,
    }
    for fields, count in cases.items():
        assert judge_lines(fields, {}, []) == count, fields
        assert_lines_judged_alike(fields)


@settings(max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.sampled_from(LINE_PIECES), max_size=30).map(b"".join), st.binary(max_size=60))
def test_drawn_header_lines_are_judged_alike_by_both_forms(pieces, anything):
    assert_lines_judged_alike(b"\r\n" + pieces)
    assert_lines_judged_alike(b"\r\n" + anything)


def test_the_c_head_scan_is_built_with_the_compiled_modules():
    from collector import native
    from collector.web import hit_head

    assert (hit_head._HEAD_SCAN is not None) == native.in_use()
    assert (JUDGE_LINES is judge_lines) == (not native.in_use())
    assert (hit_head.HEAD_END is hit_head.find_head_end) == (not native.in_use())
