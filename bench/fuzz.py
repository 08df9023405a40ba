"""Hostile input against a running collector (issue 13): no 5xx, no crash, no hang, counts exact.

    python -m bench.fuzz --cases 100000 [--seed N] [--connections 8] [--url http://127.0.0.1:8000]

Three kinds of cases:

- `query`: GET /c?… with every field of the protocol, any value, escapes that are not
  UTF-8 or not escapes at all, unknown fields, repeats;
- `body`: POST /c with one event or a batch (the shapes the beacon sends: every field at
  every JSON type, deep-tag properties, empty and oversized batches), or bytes that are
  not JSON;
- `head`: raw requests — odd methods and versions, targets with control and non-ASCII
  bytes, header names and values with control characters, lines without a colon, folded
  lines, bare CR or LF, duplicate Host / Content-Length / User-Agent, Content-Length and
  Transfer-Encoding in every combination — up to 3 pipelined, half of them with a byte
  or two inserted into a head.

Hypothesis draws the parts (events, query fields, raw requests, byte strings: POOL of
each per run, from the seed) and a Random with the same seed puts the cases together:
Hypothesis takes milliseconds per drawn case, far too slow for 20,000 cases a CI run.

Queries and bodies are sent pipelined over `--connections` keep-alive connections at
once, with page views of a control app interleaved. Each head gets a connection of its
own and is followed by a closing health check (`SENTINEL`), so whatever the head does to
the framing, the collector must answer or close the connection within DEADLINE.

Passes when no answer is a 5xx, nothing waits past DEADLINE, the collector answers
/healthz afterwards, and the control app's PV, once flushed, equals the control hits
that were acknowledged (2xx). Without `--url` it starts a redis-server and `collector
serve` (fast path, registry=open) of its own in a temporary directory.
tests/test_fuzz.py runs 20,000 cases per CI run; this runs any number.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from collector.hit.protocol import EVENT_TYPES, INT_FIELDS, INTERACTIONS, MEDIA_ACTIONS, STRING_FIELDS

CONTROL_APP = "fuzz-control"  # no generated key can be this: FUZZ_KEYS never spell it
CONTROL_HIT = (
    f"GET /c?k={CONTROL_APP}&t=pageview&u=https%3A%2F%2Fcontrol.edu%2Fp HTTP/1.1\r\nHost: fuzz\r\n"
    "User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36\r\n\r\n"
).encode()
# After each head: answered (or swallowed, or refused) whatever the head did to the framing.
SENTINEL = b"GET /healthz HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n\r\n"
DEADLINE = 10.0  # seconds for every answer (a loaded 2-core CI machine included)
CONTROL_EVERY = 25  # one control hit per this many pipelined cases
PIPELINE = 50  # requests written at once on a connection before its answers are read
BATCH = 20  # cases per Hypothesis example (fewer examples: generation is faster)

# ---- what Hypothesis draws ---------------------------------------------------------------

UAS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.47",
    "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
    "", "curl/8.5.0", "x" * 600,
]
FIELDS = sorted({*STRING_FIELDS, *INT_FIELDS, "p", "img", "zz_unknown", ""})
WORDS = sorted(EVENT_TYPES) + sorted(MEDIA_ACTIONS) + sorted(INTERACTIONS) + ["https://e.edu/", "http://", "javascript:x"]
VALID_PAGEVIEW = {"k": "fuzz-a", "t": "pageview", "u": "https://a.edu/p"}
FUZZ_KEYS = ["fuzz-a", "fuzz-b", "", "{k}", "k\x00", "k" * 65, "申请应用时颁发的 appKey"]
ODD_TEXT = ["", " ", "0", "-1", "1e400", "NaN", "null", "\ud83d", "\x00", "\u202e", "中文", "%", "%FF", "x" * 3000]

names = st.sampled_from(FIELDS) | st.text(max_size=8)
scalars = (
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=20)
    | st.sampled_from(WORDS) | st.sampled_from(ODD_TEXT) | st.sampled_from([0, 1, 10, 50, 100, 86_400_000])
)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(names, inner, max_size=4), max_leaves=8)
app_keys = st.sampled_from(FUZZ_KEYS) | st.text(max_size=12).filter(lambda k: k != CONTROL_APP)
events = st.fixed_dictionaries(
    {"k": app_keys, "t": st.sampled_from(WORDS)},
    optional={name: json_values for name in ["u", "r", "pc", "ti", "ts", "vid", "uid", "sid", "sn", "n", "p", "et", "sd", "sw", "id"]},
) | st.dictionaries(names, json_values, max_size=8) | json_values
# Raw query text (as sent: valid in a request line, so no space, '#' or raw non-ASCII).
QUERY_PIECES = [*"%+=&;abkt019FfEeD", "%20", "%23", "%3D", "%26", "%2B", "%E4%B8%AD", "%FF", "%C3%A9"]


def json_text(value) -> bytes:
    """JSON as a client may write it: integers over 64 bits included, infinities as 1e400."""
    return json.dumps(value).replace("Infinity", "1e400").encode()


def _quoted(text: str) -> str:
    return quote(text, safe="", errors="surrogatepass")  # a lone surrogate as its bytes: %ED%A0%BD


query_pairs = st.tuples(names, json_values.map(lambda v: v if isinstance(v, str) else json_text(v).decode()))
ODD_BODIES = [b"", b"[", b"{}", b"[]", b"null", b"[" * 5000, b"NaN", b"\xef\xbb\xbf[]", b'[{"k":"fuzz-a"}']


METHODS = [b"GET", b"GET", b"GET", b"POST", b"POST", b"OPTIONS", b"HEAD", b"PUT", b"get", b"G\x00T", b"GE T", b"PRI", b""]
TARGET_PIECES = [
    b"k=fuzz-a", b"&t=pageview", b"&u=https%3A%2F%2Fa.edu%2F", b"&img=1", b"%", b"%zz", b"#", b"?", b"/", b"\x00", b"\x01", b"\x7f",
    b"\x80", b"\xff", b"\xe4\xb8\xad", b" ", b"\t", b"\r", b"\n", b'"', b"<", b"{", b"|", b"\\", b"^", b"`", b"~", b"a",
]
PATHS = [b"/c", b"/c", b"/c", b"/c?", b"/healthz", b"*", b"http://fuzz/c?", b"/c/", b"//c", b"", b"/C"]
VERSIONS = [b"HTTP/1.1"] * 6 + [b"HTTP/1.0", b"HTTP/1.2", b"HTTP/2.0", b"http/1.1", b"HTTP/1.1 ", b"HTTP/1.10", b"HTTP/1"]
HEADER_NAMES = [
    b"Host", b"User-Agent", b"Content-Type", b"Connection", b"X-Forwarded-For", b"Origin", b"Referer", b"Sec-CH-UA-Mobile",
    b"Expect", b"Upgrade", b"X-Y", b"host", b"HOST", b"Host ", b" Host", b"Ho st", b"X\x00Y", b"X\x7fY", b"X\x01Y", b"\xc3\xa9",
    b"X(Y)", b"", b"Content-Length ", b"Transfer-Encoding ", b"X_Y", b"!#$%&'*+-.^_`|~",
]
HEADER_VALUES = [
    b"fuzz", b"", b" ", b"a b", b"\t a\t", b"\x00", b"a\x00b", b"\x01", b"\x7f", b"\x80", b"\xff", b"\xe4\xb8\xad", b"a\rb", b"a\nb",
    b"close", b"keep-alive", b"Close", b"Upgrade", b"100-continue", b"?1", b"1.2.3.4", b"1.2.3.4, ::1", b"x" * 300,
]
ODD_LINES = [b"no colon", b" folded continuation", b"\tfolded", b": no name", b"Host:fuzz", b"X: a\r\n  b", b"\x00", b"GET / HTTP/1.1"]
LENGTHS = [b"+5", b"-1", b"5 5", b"0x5", b" 5 ", b"5,5", b"99999999999999999999999", b"", b"1e1", b"\xd9\xa3"]
CODINGS = [
    b"chunked", b"Chunked", b" chunked", b"chunked ", b"\tchunked", b"chunked, identity", b"identity, chunked", b"xchunked",
    b"chunked\x00", b"gzip", b"identity", b"chunked,chunked", b"CHUNKED",
]
CHUNKED_BODIES = [b"0\r\n\r\n", b"5\r\nhello\r\n0\r\n\r\n", b"5;x=y\r\nhello\r\n0\r\n\r\n", b"z\r\n", b"5\nhello\n0\n\n", b"-1\r\n"]
SEPARATORS = [b"\r\n"] * 12 + [b"\n", b"\r", b"\r\r\n", b"\n\r"]


@st.composite
def raw_requests(draw) -> bytes:
    """One raw request: a head (request line, header lines) and a body, each possibly wrong."""
    target = draw(st.sampled_from(PATHS)) + b"".join(draw(st.lists(st.sampled_from(TARGET_PIECES), max_size=8)))
    line = draw(st.sampled_from(METHODS)) + b" " + target + b" " + draw(st.sampled_from(VERSIONS))
    lines = [line]
    if draw(st.integers(0, 9)):  # mostly one Host first; other Host lines may follow
        lines.append(b"Host: fuzz")
    for _ in range(draw(st.integers(0, 6))):
        if draw(st.integers(0, 4)):
            lines.append(draw(st.sampled_from(HEADER_NAMES)) + b":" + draw(st.sampled_from(HEADER_VALUES)))
        else:
            lines.append(draw(st.sampled_from(ODD_LINES)))
    if draw(st.integers(0, 30)) == 0:  # at and past aiohttp's limit of 128 header lines
        lines += [b"X-N: %d" % i for i in range(draw(st.sampled_from([126, 127, 128, 129, 200])))]
    body = draw(st.sampled_from([b"", b"", b'{"k":"fuzz-a","t":"pageview","u":"https://a.edu/"}', b"{", *CHUNKED_BODIES]))
    # Content-Length: none, right, a few bytes off (into the next request or SENTINEL,
    # never more: nothing may wait for bytes that will not come), not a number, twice.
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 1, 2]))):
        if draw(st.booleans()):
            lines.append(b"Content-Length: %d" % max(0, len(body) + draw(st.integers(-3, 3))))
        else:
            lines.append(b"Content-Length: " + draw(st.sampled_from(LENGTHS)))
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 1, 2]))):
        name = draw(st.sampled_from([b"Transfer-Encoding: ", b"Transfer-Encoding : ", b"transfer-encoding:"]))
        lines.append(name + draw(st.sampled_from(CODINGS)))
    order = draw(st.permutations(range(1, len(lines)))) if draw(st.integers(0, 4)) == 0 else range(1, len(lines))
    lines = [lines[0]] + [lines[i] for i in order]
    separator = draw(st.sampled_from(SEPARATORS))
    head = b"".join(part + (separator if draw(st.integers(0, 9)) == 0 else b"\r\n") for part in lines)
    return head + draw(st.sampled_from([b"\r\n"] * 8 + [b"\n", b"\r\n\r\n", b"\r"])) + body


POOL = 300  # of each part Hypothesis draws per run
MIX = ["query", "query", "body", "body", "head"]  # shares of the cases
MUTATIONS = [b"\x00", b"\x01", b"\x7f", b"\x80", b"\xff", b"\r", b"\n", b"\t", b" ", b":", b",", b"\r\n", b"\r\n "]


@dataclass
class Parts:
    """What Hypothesis drew: the material of every case."""

    events: list = field(default_factory=list)
    pairs: list = field(default_factory=list)
    requests: list = field(default_factory=list)
    bytes: list = field(default_factory=list)

    @classmethod
    def drawn(cls, seed_value: int, size: int = POOL) -> Parts:
        parts = cls()

        @settings(max_examples=size, database=None, deadline=None, phases=[Phase.generate], suppress_health_check=list(HealthCheck))
        @given(events, st.lists(query_pairs, max_size=6), raw_requests(), st.binary(max_size=64))
        def collect(event, pairs, request, raw) -> None:
            parts.events.append(event)
            parts.pairs.extend(pairs)
            parts.requests.append(request)
            parts.bytes.append(raw)

        seed(seed_value)(collect)()
        return parts


def query(parts: Parts, rng: random.Random) -> bytes:
    pairs = rng.sample(parts.pairs, min(len(parts.pairs), rng.choice([0, 1, 2, 4, 8])))
    if rng.random() < 0.5:  # a valid page view, then fields that may spoil it (the last value wins)
        pairs = list(VALID_PAGEVIEW.items()) + pairs
    elif rng.random() < 0.7:  # an app key and a type, so that validation goes deeper
        pairs = [("k", rng.choice(FUZZ_KEYS)), ("t", rng.choice(WORDS))] + pairs
    text = "&".join(_quoted(n) + "=" + _quoted(v) for n, v in pairs)[:6000]  # under the head limit, or 400 + close
    raw = "".join(rng.choices(QUERY_PIECES, k=rng.choice([0, 0, 3, 10])))
    return f"GET /c?{text}{raw} HTTP/1.1\r\nHost: fuzz\r\nUser-Agent: {rng.choice(UAS)}\r\n\r\n".encode()


def event(parts: Parts, rng: random.Random):
    """A drawn event; or, as often, a valid page view with a few fields of a drawn one over it."""
    drawn = rng.choice(parts.events)
    if rng.random() < 0.5 or not isinstance(drawn, dict):
        return drawn
    return {**VALID_PAGEVIEW, **dict(rng.sample(sorted(drawn.items()), min(len(drawn), rng.choice([0, 1, 2]))))}


def body(parts: Parts, rng: random.Random) -> bytes:
    shape = rng.choice(["event", "batch", "batch", "bytes"])
    if shape == "event":
        data = json_text(event(parts, rng))
    elif shape == "batch":
        data = b"[" + b",".join(json_text(event(parts, rng)) for _ in range(rng.choice([0, 1, 1, 2, 3, 5, 10, 30, 101]))) + b"]"
    else:
        data = rng.choice(parts.bytes + ODD_BODIES)
    data = data[:16_000]  # under max_body_bytes: a body over it closes the connection (413)
    return (b"POST /c HTTP/1.1\r\nHost: fuzz\r\nUser-Agent: " + rng.choice(UAS).encode()
            + b"\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % len(data) + data)


def head(parts: Parts, rng: random.Random) -> bytes:
    """1 to 3 drawn requests, pipelined; half the time one byte or two inserted into a head."""
    pipelined = rng.choices(parts.requests, k=rng.choice([1, 1, 2, 3]))
    if rng.random() < 0.5:
        i = rng.randrange(len(pipelined))
        pipelined[i] = mutated(pipelined[i], rng)
    return b"".join(pipelined)


def mutated(request: bytes, rng: random.Random) -> bytes:
    """A byte or two inserted into the head, never into a Content-Length line or the blank
    line that ends the head: nothing may come to wait for bytes that will not be sent."""
    end = request.find(b"\r\n\r\n")
    end = len(request) if end < 0 else end
    at = rng.randrange(end + 1)
    line_start = request.rfind(b"\n", 0, at) + 1
    if request[line_start:line_start + 15].lower() == b"content-length:":
        return request
    return request[:at] + rng.choice(MUTATIONS) + request[at:]


MAKERS = {"query": query, "body": body, "head": head}


def generate(n: int, seed_value: int) -> list[tuple[str, bytes]]:
    """n cases (kind, request bytes), reproducible from `seed_value`."""
    parts = Parts.drawn(seed_value)
    rng = random.Random(seed_value)
    kinds = rng.choices(MIX, k=n)
    return [(kind, MAKERS[kind](parts, rng)) for kind in kinds]


# ---- sending them ---------------------------------------------------------------------


@dataclass
class Outcome:
    cases: Counter = field(default_factory=Counter)  # by kind
    statuses: Counter = field(default_factory=Counter)
    server_errors: list[tuple[int, bytes]] = field(default_factory=list)  # (status, request)
    hangs: list[bytes] = field(default_factory=list)  # requests (or heads) with no answer by DEADLINE
    control_sent: int = 0
    control_acknowledged: int = 0
    seconds: float = 0.0

    def note(self, status: int, request: bytes) -> None:
        self.statuses[status] += 1
        if status >= 500:
            self.server_errors.append((status, request[:2000]))


async def read_answer(reader: asyncio.StreamReader) -> int:
    """The next answer's status (1xx interim answers included); its body is skipped."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ")[1])
    headers = dict(line.lower().split(b":", 1) for line in lines[1:] if b":" in line)
    if b"chunked" in headers.get(b"transfer-encoding", b""):
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            await reader.readexactly(size + 2)
        await reader.readuntil(b"\r\n")
    elif status >= 200 and status not in (204, 304):
        await reader.readexactly(int(headers.get(b"content-length", b"0")))
    return status


def statuses_in(data: bytes) -> list[int]:
    """The statuses of the answers in `data`, all that a connection received.

    An answer to HEAD has a Content-Length and no body: a body is skipped only when the
    next answer (or the end) follows it.
    """
    statuses: list[int] = []
    pos = 0
    while data.startswith(b"HTTP/1.", pos) and (end := data.find(b"\r\n\r\n", pos)) >= 0:
        lines = data[pos:end].split(b"\r\n")
        statuses.append(int(lines[0][9:12]))
        headers = dict(line.lower().split(b":", 1) for line in lines[1:] if b":" in line)
        pos = end + 4
        if b"chunked" in headers.get(b"transfer-encoding", b""):
            while (size_end := data.find(b"\r\n", pos)) >= 0 and (size := int(data[pos:size_end].split(b";")[0], 16)):
                pos = size_end + 2 + size + 2
            pos = data.find(b"\r\n\r\n", pos) + 4 if size_end >= 0 else len(data)
        else:
            after_body = pos + int(headers.get(b"content-length", b"0"))
            if after_body == len(data) or data.startswith(b"HTTP/1.", after_body):
                pos = after_body
    return statuses


async def read_until_closed(reader: asyncio.StreamReader, timeout: float = DEADLINE) -> tuple[bytes, bool]:
    """All the connection received, and whether the collector closed it (a reset counts) within `timeout`."""
    received = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), max(deadline - time.monotonic(), 0.001)):
            received += chunk
    except TimeoutError:
        return bytes(received), False
    except ConnectionError:
        pass
    return bytes(received), True


async def send_pipelined(host: str, port: int, chunks: asyncio.Queue, outcome: Outcome) -> None:
    """One keep-alive connection: writes a chunk of requests at once, reads their answers in order."""
    reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
    try:
        while not chunks.empty():
            chunk: list[bytes] = chunks.get_nowait()
            writer.write(b"".join(chunk))
            for request in chunk:
                try:
                    status = await asyncio.wait_for(read_answer(reader), DEADLINE)
                except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                    # Not answered in time, or the connection closed: well-formed
                    # requests on a keep-alive connection must each get an answer.
                    outcome.hangs.append(request[:2000])
                    raise TimeoutError from None
                outcome.note(status, request)
                if request is CONTROL_HIT and 200 <= status < 300:
                    outcome.control_acknowledged += 1
    except TimeoutError:
        pass  # counted; the rest of this connection's chunks are left to the others
    finally:
        writer.close()


async def send_head(host: str, port: int, head: bytes, outcome: Outcome, gate: asyncio.Semaphore) -> None:
    """One head on a connection of its own, then SENTINEL: answered or closed within DEADLINE."""
    async with gate:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(head + SENTINEL)
            received, closed = await read_until_closed(reader)
        finally:
            writer.close()
        if not closed:
            outcome.hangs.append(head[:2000])
        for status in statuses_in(received):
            outcome.note(status, head)


async def send_all(host: str, port: int, cases: list[tuple[str, bytes]], connections: int) -> Outcome:
    outcome = Outcome(cases=Counter(kind for kind, _ in cases))
    pipelined = [CONTROL_HIT]
    for data in (data for kind, data in cases if kind != "head"):  # control hits interleaved
        pipelined.append(data)
        if len(pipelined) % CONTROL_EVERY == 0:
            pipelined.append(CONTROL_HIT)
    outcome.control_sent = sum(1 for r in pipelined if r is CONTROL_HIT)
    chunks: asyncio.Queue = asyncio.Queue()
    for i in range(0, len(pipelined), PIPELINE):
        chunks.put_nowait(pipelined[i:i + PIPELINE])
    gate = asyncio.Semaphore(connections)
    started = time.monotonic()
    await asyncio.gather(
        *(send_pipelined(host, port, chunks, outcome) for _ in range(connections)),
        *(send_head(host, port, data, outcome, gate) for kind, data in cases if kind == "head"),
    )
    while not chunks.empty():  # every connection stopped at a hang: the rest went unanswered too
        outcome.hangs.extend(chunks.get_nowait())
    outcome.seconds = time.monotonic() - started
    return outcome


def control_pv(base_url: str) -> int:
    with urllib.request.urlopen(f"{base_url}/api/stats?app={CONTROL_APP}", timeout=DEADLINE) as answer:
        return json.loads(answer.read())["totals"]["pv"]


def wait_for_control_pv(base_url: str, expected: int, timeout: float = 30.0) -> int:
    """The control app's PV once it reaches `expected` (flushed), or what it is at `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        pv = control_pv(base_url)
        if pv == expected or time.monotonic() > deadline:
            return pv
        time.sleep(0.2)


def healthy(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(base_url + "/healthz", timeout=DEADLINE) as answer:
            return answer.status == 200
    except OSError:
        return False


def run(base_url: str, cases: int, seed_value: int, connections: int = 8) -> dict:
    """Generate, send, check; the figures and every failure found."""
    host, port = base_url.removeprefix("http://").rsplit(":", 1)
    generated_at = time.monotonic()
    generated = generate(cases, seed_value)
    generation = time.monotonic() - generated_at
    outcome = asyncio.run(send_all(host, int(port), generated, connections))
    alive = healthy(base_url)
    pv = wait_for_control_pv(base_url, outcome.control_acknowledged) if alive else None
    return {
        "seed": seed_value, "cases": dict(outcome.cases), "generate_seconds": round(generation, 1),
        "send_seconds": round(outcome.seconds, 1), "statuses": dict(sorted(outcome.statuses.items())),
        "server_errors": outcome.server_errors, "hangs": outcome.hangs, "alive": alive,
        "control_sent": outcome.control_sent, "control_acknowledged": outcome.control_acknowledged, "control_pv": pv,
    }


def passed(result: dict) -> bool:
    return (not result["server_errors"] and not result["hangs"] and result["alive"]
            and result["control_acknowledged"] > 0 and result["control_pv"] == result["control_acknowledged"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Hypothesis-generated hostile requests against a collector")
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=None, help="default: random (printed)")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--url", default=None, help="a running collector (default: start one, with its own Redis)")
    args = parser.parse_args(argv)
    seed_value = args.seed if args.seed is not None else random.randrange(2**32)
    if args.url:
        result = run(args.url, args.cases, seed_value, args.connections)
    else:
        from bench.servers import RedisServer, collector, free_port

        with tempfile.TemporaryDirectory() as tmp:
            redis = RedisServer(Path(tmp), cpus=None)
            server = collector(free_port(), 1, redis.url, None, Path(tmp) / "collector.log", Path(tmp) / "data")
            try:
                server.start()
                result = run(server.url, args.cases, seed_value, args.connections)
                result["alive"] = result["alive"] and server.proc is not None and server.proc.poll() is None
                log = (Path(tmp) / "collector.log").read_text(errors="replace")
                result["tracebacks_in_log"] = log.count("Traceback")
            finally:
                server.stop()
                redis.stop()
    shown = {k: (v if k not in ("server_errors", "hangs") else [repr(x)[:300] for x in v[:5]] + [f"({len(v)} in all)"])
             for k, v in result.items()}
    print(json.dumps(shown, indent=1, ensure_ascii=False))
    ok = passed(result) and not result.get("tracebacks_in_log")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
