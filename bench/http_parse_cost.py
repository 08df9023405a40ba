"""What the fast path's HTTP layer costs per hit, this tree against a git ref, in one run.

    python -m bench.http_parse_cost                # this tree against `main`
    python -m bench.http_parse_cost --base HEAD~3  # ... against another git ref

`HitConnection.data_received` over bench.traffic's realistic GET hits (heads of about 860
bytes: a browser's User-Agent, Referer, X-Forwarded-For, ...), one request per call, with
an Ingest that answers 204 at once: what is timed is finding the head, checking it,
reading the headers Ingest takes, decoding the query and writing the answer. The base
is the ref's `collector/web/hit_server.py` loaded as a module of its own (on this
tree's other modules). For issue 13's alternative, httptools (llhttp, the parser aiohttp
uses) parsing the same heads — a parser per connection, a Python callback per header,
nothing else — when it is installed. The variants run interleaved, in rounds; the best
round counts (noise only ever adds time), in process CPU time.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from collector.hit.ingest import ACCEPTED
from collector.web import hit_server
from collector.web.appkeys import INGEST

ROOT = Path(__file__).resolve().parent.parent


class AnswerOnly:
    """An Ingest that answers every hit 204 without looking at it."""

    cors = {"Access-Control-Allow-Origin": "*", "Cache-Control": "no-store"}

    def hit_query(self, *args):
        return ACCEPTED

    def hit_body(self, *args):
        return ACCEPTED


class Sink:
    """A transport that drops what is written."""

    def get_extra_info(self, name):
        return ("127.0.0.1", 40000)

    def write(self, data):
        pass

    def is_closing(self):  # asked before the fast path's held answers are written
        return False


def load_base(ref: str) -> ModuleType:
    """`collector.web.hit_server` as of `ref`, imported as `hit_server_base`."""
    source = subprocess.run(["git", "show", f"{ref}:collector/web/hit_server.py"], cwd=ROOT, capture_output=True,
                            text=True, check=True).stdout
    path = Path(tempfile.mkdtemp(prefix="hit_server_base_")) / "hit_server_base.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("hit_server_base", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fast_path(module: ModuleType) -> Callable[[bytes], None]:
    server = module.HitServer(None, {INGEST: AnswerOnly()})
    connection = module.HitConnection(server)
    connection.connection_made(Sink())
    return connection.data_received


def httptools_parse() -> Callable[[bytes], None] | None:
    try:
        import httptools
    except ImportError:
        return None

    class Headers:
        def __init__(self) -> None:
            self.seen: list[tuple[bytes, bytes]] = []

        def on_url(self, url: bytes) -> None:
            self.url = url

        def on_header(self, name: bytes, value: bytes) -> None:
            self.seen.append((name, value))

    headers = Headers()
    parser = httptools.HttpRequestParser(headers)

    def parse(data: bytes) -> None:
        headers.seen = []
        parser.feed_data(data)

    return parse


def heads(hits: int) -> list[bytes]:
    from . import traffic
    from .ippool import load_pool

    requests = traffic.realistic(traffic.Population(load_pool(), 60000, seed=1), hits, "get", int(time.time() * 1000))
    return [traffic.http_bytes(r) for r in requests]


def best_us(variants: dict[str, Callable[[bytes], None]], data: list[bytes], rounds: int) -> dict[str, float]:
    for run in variants.values():  # warm: caches, the regex, the Date answer
        for request in data:
            run(request)
    best = dict.fromkeys(variants, float("inf"))
    for _ in range(rounds):
        for name, run in variants.items():
            start = time.process_time()
            for request in data:
                run(request)
            best[name] = min(best[name], (time.process_time() - start) / len(data) * 1e6)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="µs per hit of the fast path's HTTP layer, against a git ref")
    parser.add_argument("--base", default="main", help="git ref to compare with (default: main)")
    parser.add_argument("--hits", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args(argv)
    data = heads(args.hits)
    variants = {f"fast path ({args.base})": fast_path(load_base(args.base)), "fast path (this tree)": fast_path(hit_server)}
    parse = httptools_parse()
    if parse is not None:
        variants["httptools: parse only"] = parse
    head_bytes = sum(d.find(b"\r\n\r\n") for d in data) / len(data)
    print(f"{len(data)} GET hits, heads of {head_bytes:.0f} bytes on average")
    for name, us in best_us(variants, data, args.rounds).items():
        print(f"{name:32s} {us:7.2f} µs/hit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
