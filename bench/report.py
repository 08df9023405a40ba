"""RESULTS.md from a run's results: machine, versions, commands, the side-by-side tables.

Everything is generated except the block between ANALYSIS_BEGIN and ANALYSIS_END, which
is carried over from the existing file so hand-written findings survive a re-run.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ANALYSIS_BEGIN = "<!-- analysis:begin (kept across runs: edit freely) -->"
ANALYSIS_END = "<!-- analysis:end -->"

TARGETS = {
    "get_ratio": 0.8,
    "unique_ratio": 0.5,
    "post_eps": 100_000,
    "half_p99_ms": 5.0,
    "redis_cmds": 0.05,
    "rss_mb": 200.0,
}

CONFIG_ORDER = ["ceiling x1", "collector x1", "collector x2", "naive", "ceiling x2"]


# ---- environment ------------------------------------------------------------------------


def machine() -> dict:
    model = ""
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as fh:
        mem_kb = int(fh.readline().split()[1])
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "ram_gib": round(mem_kb / 2**20, 1),
        "kernel": platform.release(),
        "os": _os_release(),
    }


def _os_release() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.platform()


def versions(redis_version: str, wrk_version: str) -> dict:
    out = {"python": sys.version.split()[0]}
    for pkg in ("aiohttp", "uvloop", "orjson", "redis", "hiredis", "maxminddb", "ua-parser", "ua-parser-rs", "yarl", "multidict"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "-"
    out["redis-server"] = redis_version
    out["wrk"] = wrk_version
    out["collector (git)"] = git_state()
    return out


def git_state() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "collector"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        return head + (" + uncommitted changes in collector/" if dirty else "")
    except OSError:
        return "unknown"


# ---- formatting -------------------------------------------------------------------------


def n(x, digits: int = 0) -> str:
    if x is None:
        return "–"
    if isinstance(x, float) and digits == 0:
        return f"{x:,.0f}"
    if isinstance(x, int):
        return f"{x:,}"
    return f"{x:,.{digits}f}"


NOISY_CORES = 0.25


def _load(r: dict) -> str:
    cores = r.get("foreign_cpu_cores") or 0.0
    return f"{cores:.2f} cores" + (" ⚠" if cores > NOISY_CORES else "")


def _mem(x) -> str:
    if x is None:
        return "–"
    return n(x, 1) if x >= 0 else "≈ 0"  # used_memory moves by a few KB with client buffers


def ratio(a, b) -> str:
    return f"{a / b:.2f}×" if a is not None and b else "–"


def table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def _sorted(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: CONFIG_ORDER.index(r["config"]) if r["config"] in CONFIG_ORDER else 99)


def find(results: dict, config: str, shape: str) -> dict | None:
    return next((r for r in results["runs"] if r["config"] == config and r["shape"] == shape), None)


def worst(results: dict, case: str, config: str = "collector x1") -> dict | None:
    return next((r for r in results.get("worst", []) if r.get("case") == case and r["config"] == config), None)


def half(results: dict, config: str) -> dict | None:
    return next((r for r in results.get("half_rate", []) if r["config"] == config), None)


def half_limit(h: dict, bare: dict | None) -> str:
    """What limits the half-rate tail: the collector's spread, and the bare server's own p99
    at its half rate in the same run (what the machine, wrk and the kernel leave of a tail
    when the server does no work; bench.half_rate_ab --ceiling compares both at one rate)."""
    spread = f"p50 {h['p50_ms']:.1f} ms but max {h['lat_max_ms']:.0f} ms"
    if bare is None:
        return spread + ": some requests wait far longer than one hit's work"
    return f"{spread}; the bare server's own p99 at its half rate: {bare['p99_ms']:.2f} ms ({n(bare['rps'])} req/s)"


# ---- targets ---------------------------------------------------------------------------


def targets(results: dict) -> list[dict]:
    ceil_get = find(results, "ceiling x1", "get")
    col_get = find(results, "collector x1", "get")
    out = []

    def add(name, target, measured, ok, limit=""):
        out.append({"target": name, "goal": target, "measured": measured, "met": ok, "limit": limit})

    if ceil_get and col_get:
        r = col_get["rps"] / ceil_get["rps"]
        add("GET hits/s, 1 process, realistic mix", f"≥ {TARGETS['get_ratio']} × ceiling",
            f"{n(col_get['rps'])} req/s = {r:.2f} × ceiling ({n(ceil_get['rps'])})", r >= TARGETS["get_ratio"],
            f"CPU: {col_get['cpu_us_per_event']:.0f} µs per hit vs {ceil_get['cpu_us_per_event']:.0f} µs for the bare server")
    u = worst(results, "unique")
    if u and ceil_get:
        r = u["rps"] / ceil_get["rps"]
        add("GET hits/s, every UA and IP unique", f"≥ {TARGETS['unique_ratio']} × ceiling",
            f"{n(u['rps'])} req/s = {r:.2f} × ceiling", r >= TARGETS["unique_ratio"],
            f"CPU: {u['cpu_us_per_event']:.0f} µs per hit (cache misses: UA parse, geo lookup)")
    posts = [find(results, "collector x1", s) for s in ("post10", "post50")]
    posts = [p for p in posts if p]
    if posts:
        best = max(posts, key=lambda p: p["eps"])
        # Answered is not enough: the verdict also needs every answered event in Redis after
        # the load (the flush may fall behind while the load lasts, never lose or skip).
        stored = bool(best["counted_events"]) and best["counted_events"] >= best["events"]
        add("Batched POST events/s per process", f"≥ {n(TARGETS['post_eps'])}",
            ", ".join(f"{p['shape']}: {n(p['eps'])} ev/s" for p in posts), best["eps"] >= TARGETS["post_eps"] and stored,
            f"CPU: {best['cpu_us_per_event']:.1f} µs per event ({best['shape']}); "
            + (f"all stored {best['settle_s']:.1f} s after the load" if stored
               else f"NOT all stored {best['settle_s']:.1f} s after the load"))
    h = half(results, "collector x1")
    if h:
        add("p99 latency at half of peak rate", f"≤ {TARGETS['half_p99_ms']} ms",
            f"p99 {h['p99_ms']:.2f} ms (p50 {h['p50_ms']:.2f}, p999 {h['p999_ms']:.2f}) at {n(h['rps'])} req/s",
            h["p99_ms"] <= TARGETS["half_p99_ms"], half_limit(h, half(results, "ceiling x1")))
    if col_get:
        c, cl = col_get["redis_cmds_per_event"], col_get["redis_client_cmds_per_event"]
        add("Redis commands per hit at steady load", f"≤ {TARGETS['redis_cmds']}",
            f"{cl:.4f} sent by the collector (EVALSHA…); {c:.3f} counting the HINCRBY/PFADD/EXPIREAT run inside the flush script",
            c <= TARGETS["redis_cmds"],
            "per hit: " + ", ".join(f"{k.upper()} {v / col_get['handled_events']:.3f}" for k, v in
                                    sorted(col_get["redis_commands"].items(), key=lambda kv: -kv[1])[:4]))
    rss = results.get("rss_1e6")
    if rss:
        add("Peak RSS per process after 10^6 distinct visitors", f"≤ {TARGETS['rss_mb']:.0f} MB",
            f"{rss['peak_rss_mb']:.0f} MB after {n(rss['visitors'])} distinct visitors (anon {rss['rss_anon_mb']:.0f} MB, "
            f"mapped files {rss['rss_file_mb']:.0f} MB)", rss["peak_rss_mb"] <= TARGETS["rss_mb"],
            f"{rss['series'][0][1]:.0f} MB before the first hit" if rss.get("series") else "")
    elif u:
        add("Peak RSS per process after 10^6 distinct visitors", f"≤ {TARGETS['rss_mb']:.0f} MB",
            f"{u['peak_rss_mb']:.0f} MB after only {n(min(u['requests'], results['request_files']['unique']['requests']))} "
            "distinct visitors (this mode skips the 10^6 run: see --full)", None, "")
    return out


# ---- the document --------------------------------------------------------------------------


def render(results: dict, meta: dict, previous: str = "") -> str:
    m = results
    lines: list[str] = []
    add = lines.append
    add("# Collector benchmark results")
    add("")
    add(f"Generated by `{meta['argv']}` on {meta['date']} ({m['mode']} mode: {meta['duration']} s per measured run). "
        "Everything below is generated except the analysis block. Reproduce with the commands at the end.")
    add("")
    add("## Targets")
    add("")
    rows = []
    for t in targets(m):
        verdict = "**met**" if t["met"] else ("**missed**" if t["met"] is False else "not measured in this mode")
        rows.append([t["target"], t["goal"], t["measured"], verdict, t["limit"]])
    add(table(["target", "goal", "measured", "verdict", "measured cost behind it"], rows))
    add("")
    add("What limits each figure, with profile evidence, is in the analysis section below.")
    add("")

    for section in (_side_by_side, _worst_cases, _memory, _accuracy, _beacon_size, _profile, _stages):
        section(m, meta, add)

    add("## Analysis")
    add("")
    add(previous_analysis(previous))
    add("")

    _how_measured(m, meta, add)
    return "\n".join(lines)


def _side_by_side(m: dict, meta: dict, add: Callable[[str], None]) -> None:
    """The same load against every configuration, and each run's ratio to the ceiling."""
    add("## Side by side: the same load against every configuration")
    add("")
    add("Throughput runs: wrk, 1 thread, 64 keep-alive connections, as fast as the server answers. "
        "Latency here is under saturation (queueing included); see the half-rate table for latency at a sustainable rate. "
        "`CPU µs/event` is the server's process CPU time (all its processes) over the run and its final flush, per event; "
        "`Redis cmds/event` counts every command in `INFO commandstats` (for the collector: inside its flush script too), "
        "`sent` only those the server sent itself. `stored` is the events the server wrote to Redis / the events wrk saw answered. "
        f"`other load`: CPU used by other processes on the machine during the run; ⚠ above {NOISY_CORES} cores "
        "(that run's figures are disturbed: the machine is shared).")
    add("")
    header = ["config", "req/s", "events/s", "p50 ms", "p99 ms", "p99.9 ms", "CPU µs/event", "peak RSS MB",
              "Redis cmds/event (sent)", "Redis CPU µs/event", "Redis MB per 10⁶ events", "errors", "stored", "other load"]
    for shape, label in (("get", "GET pixel (1 event)"), ("post10", "POST batch of 10 events"), ("post50", "POST batch of 50 events")):
        rs = _sorted([r for r in m["runs"] if r["shape"] == shape])
        if not rs:
            continue
        add(f"### {label}")
        add("")
        body = []
        for r in rs:
            stored = "–" if r["counted_events"] is None or not r["events"] else f"{r['counted_events'] / r['events']:.4f}"
            cmds = "–" if r["kind"] == "ceiling" or r["redis_cmds_per_event"] is None else (
                f"{r['redis_cmds_per_event']:.3f} ({r['redis_client_cmds_per_event']:.4f})")
            body.append([r["config"], n(r["rps"]), n(r["eps"]), n(r["p50_ms"], 2), n(r["p99_ms"], 2), n(r["p999_ms"], 2),
                         n(r["cpu_us_per_event"], 1), n(r["peak_rss_mb"]), cmds,
                         "–" if r["kind"] == "ceiling" else n(r["redis_cpu_us_per_event"], 1),
                         "–" if r["kind"] == "ceiling" else _mem(r["redis_mem_mb_per_1e6"]),
                         r["errors"], stored, _load(r)])
        add(table(header, body))
        add("")
        base = find(m, "ceiling x1", shape)
        if base:
            add(f"Ratio to the ceiling (ceiling x1, {label}):")
            add("")
            body = []
            for r in rs:
                body.append([r["config"], ratio(r["rps"], base["rps"]), ratio(r["eps"], base["eps"]),
                             ratio(r["p50_ms"], base["p50_ms"]), ratio(r["p99_ms"], base["p99_ms"]),
                             ratio(r["p999_ms"], base["p999_ms"]), ratio(r["cpu_us_per_event"], base["cpu_us_per_event"]),
                             ratio(r["peak_rss_mb"], base["peak_rss_mb"])])
            add(table(["config", "req/s", "events/s", "p50", "p99", "p99.9", "CPU/event", "peak RSS"], body))
            add("")
    hr = _sorted(m.get("half_rate", []))
    if hr:
        add("### Latency at half of each configuration's peak GET rate")
        add("")
        add("wrk waits between requests (Lua `delay()`) so each configuration gets about half of its own peak GET rate.")
        add("")
        body = [[r["config"], n(r["peak_rps"]), n(r["target_rps"]), n(r["rps"]), n(r["p50_ms"], 2), n(r["p90_ms"], 2),
                 n(r["p99_ms"], 2), n(r["p999_ms"], 2), n(r["lat_max_ms"], 1), n(r["cpu_us_per_event"], 1), _load(r)] for r in hr]
        add(table(["config", "peak req/s", "target", "achieved req/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms",
                   "CPU µs/event", "other load"], body))
        add("")


def _worst_cases(m: dict, meta: dict, add: Callable[[str], None]) -> None:
    """Caches defeated, Redis stalled, big batches."""
    add("## Worst cases")
    add("")
    ws = m.get("worst", [])
    if not ws:
        add("Not run in this mode.")
    else:
        ceil_get = find(m, "ceiling x1", "get")
        body = []
        for r in ws:
            case = {"unique": "every UA and IP unique (caches defeated)", "stall": "Redis stalled 2 s every 3 s (DEBUG SLEEP)",
                    "batch50": "50-event POST batches"}[r["case"]]
            stored = "–" if r["counted_events"] is None or not r["events"] else f"{r['counted_events'] / r['events']:.4f}"
            body.append([case, r["config"], n(r["rps"]), n(r["eps"]), ratio(r["rps"] if r["case"] != "batch50" else r["eps"],
                         ceil_get["rps"] if ceil_get and r["case"] != "batch50" else None) if r["case"] != "batch50" else "–",
                         n(r["p50_ms"], 2), n(r["p99_ms"], 2), n(r["p999_ms"], 2), n(r["cpu_us_per_event"], 1),
                         n(r["peak_rss_mb"]), r["errors"], stored, f"{r['settle_s']:.1f}", _load(r)])
        add(table(["case", "config", "req/s", "events/s", "× ceiling GET", "p50 ms", "p99 ms", "p99.9 ms", "CPU µs/event",
                   "peak RSS MB", "errors", "stored", "catch-up s", "other load"], body))
        add("")
        add("`stored` = events in Redis / events answered; `catch-up s` = time after the load until Redis held them all.")
        for r in ws:
            if r["case"] == "unique":
                add(f"- unique ({r['config']}): {100 * r.get('distinct_fraction', 1):.0f} % of the {n(r['requests'])} requests "
                    "came from a never-seen IP with a never-seen User-Agent (the rest wrapped around the request file).")
            if r["case"] == "stall" and r.get("during"):
                d = r["during"]
                add(f"- stall ({r['config']}): Redis was blocked {d.get('stalls', '?')} times for {d['sleep_s']:.0f} s "
                    f"during the {r['duration_s']:.0f} s run.")
    add("")


def _memory(m: dict, meta: dict, add: Callable[[str], None]) -> None:
    """RSS after 10⁶ distinct visitors."""
    rss = m.get("rss_1e6")
    if rss:
        add("## Memory after 10⁶ distinct visitors")
        add("")
        add(f"A fresh `collector x1` took {n(rss['requests'])} GET pixels, every one from a new IP and a new User-Agent "
            f"({n(rss['rps'])} req/s). Peak RSS (VmHWM) {rss['peak_rss_mb']:.0f} MB; at the end RSS {rss['rss_mb']:.0f} MB "
            f"= {rss['rss_anon_mb']:.0f} MB anonymous + {rss['rss_file_mb']:.0f} MB of mapped files (the geo databases, "
            f"shared and reclaimable). Redis used {rss['redis_mem_mb']:.0f} MB.")
        add("")
        series = rss["series"]
        step = max(len(series) // 12, 1)
        add("RSS over time (s → MB; the first seconds are wrk reading its request file): "
            + ", ".join(f"{t:.0f}→{mb:.0f}" for t, mb in series[::step]))
        add("")


def _accuracy(m: dict, meta: dict, add: Callable[[str], None]) -> None:
    """What was sent against what /api/stats read back."""
    acc = m.get("accuracy")
    if acc:
        s = acc["summary"]
        add("## Accuracy")
        add("")
        add(f"{n(s['hits_sent'])} hits in {n(s['requests'])} requests (GET pixels and POST batches of 10, 3 % crawler hits) "
            f"to a fresh `collector x1`, read back from `/api/stats`; {s['non_2xx']} answers were not 2xx.")
        add("")
        body = [[k, n(a), n(b), "exact" if a == b else f"**off by {b - a:+,}**"] for k, (a, b) in acc["exact"].items()]
        add(table(["counter", "sent", "read back", ""], body))
        add("")
        add(f"UV: {n(s['uv_sent'])} distinct (IP, User-Agent) visitors sent, {n(s['uv_read'])} read back "
            f"({100 * s['uv_error']:+.2f} %, HyperLogLog). First-party UV (vid): {n(s['uv_fp_sent'])} sent, "
            f"{n(s['uv_fp_read'])} read ({100 * (s['uv_fp_error'] or 0):+.2f} %). Largest per-prefecture UV error: "
            f"{100 * s['max_city_uv_error']:.2f} %.")
        add("")
        add(f"Regional mix: PV per prefecture read back {'exactly as sent' if s['city_pv_exact'] else '**not** as sent'}; "
            f"largest deviation of a share from the seed report's table: {s['max_share_deviation_pp']:.3f} percentage points.")
        add("")
        body = []
        for r in acc["regions"]:
            body.append([r["name"], r["key"], f"{r['seed_share']:.2f}", n(r["pv_sent"]), n(r["pv_read"]),
                         f"{r['share_read']:.2f}", n(r["uv_sent"]), n(r["uv_read"]),
                         "–" if r["uv_error"] is None else f"{100 * r['uv_error']:+.1f} %"])
        add(table(["region", "key", "seed share %", "PV sent", "PV read", "share read %", "UV sent", "UV read", "UV error"], body))
        add("")


def _beacon_size(m: dict, meta: dict, add: Callable[[str], None]) -> None:
    """The beacon's bytes, raw and compressed."""
    b = meta.get("beacon")
    if b:
        add("## Beacon size")
        add("")
        if "error" in b:
            add(b["error"])
        else:
            add(table(["file", "raw bytes", "gzip -9", "brotli"], [[b["file"], n(b["raw"]), n(b["gzip"]), n(b["brotli"])]]))
            add("")
            extra = f" The build's manifest (v{b.get('manifest_version')}) says {b['manifest_sizes']}." if b.get("manifest_sizes") else ""
            add(f"Measured here ({b['brotli_how']}).{extra}")
        add("")


def _profile(m: dict, meta: dict, add: Callable[[str], None]) -> None:
    """py-spy's shares per function."""
    prof = m.get("profile")
    if prof:
        add("## Profile of the collector (py-spy)")
        add("")
        add("`py-spy record --nonblocking --rate 250 --format raw` on `collector x1` during separate runs (not the measured ones). "
            "Shares are of the samples where the process was running Python code.")
        add("")
        for case, p in prof.items():
            if "error" in p:
                add(f"{case}: {p['error']}")
                continue
            add(f"### {case}: {n(p['samples'])} samples at {n(p['rps_while_profiled'])} req/s")
            add("")
            body = [[f"{s:.1f} %", f"`{f}`"] for f, s in p["inclusive"][:22]]
            add("Inclusive (the function and what it calls):")
            add("")
            add(table(["share", "function"], body))
            add("")
            body = [[f"{s:.1f} %", f"`{f}`"] for f, s in p["self"][:15]]
            add("Self (the function's own code):")
            add("")
            add(table(["share", "function"], body))
            add("")


def _stages(m: dict, meta: dict, add: Callable[[str], None]) -> None:
    """bench.stages' per-stage figures."""
    st = m.get("stages")
    if st:
        add("## Per-stage cost of a hit (in-process)")
        add("")
        if "error" in st:
            add(f"Not measured: {st['error']}")
        else:
            add(f"`python -m bench.stages`: the collector's own objects driven with {n(st['hits'])} hits of the realistic "
                "GET file (warm: caches already hold them) and with never-seen IPs and User-Agents (cold); the flush stages "
                "process those hits as one second's snapshot. Tight loops flatter the figures (hot CPU caches): the load "
                "runs' CPU per hit is the truth, this table says where it goes.")
            add("")
            add(table(["stage", "µs per hit"], [[k, v if isinstance(v, str) else f"{v:.2f}"] for k, v in st["us_per_hit"].items()]))
            add("")
            add(table(["count", "per hit"], [[k, f"{v}"] for k, v in st["counts"].items()]))
        add("")


def _how_measured(m: dict, meta: dict, add: Callable[[str], None]) -> None:
    """Machine, versions, placement, traffic and the exact commands."""
    add("## How it was measured")
    add("")
    mc = meta["machine"]
    add(f"- **Machine:** {mc['nproc']} CPUs ({mc['cpu']}), {mc['ram_gib']} GiB RAM, {mc['os']}, Linux {mc['kernel']}. "
        "Shared with other work: the `other load` column is the CPU the rest of the machine used during each run "
        "(all CPUs busy time minus the server, Redis, wrk and the harness).")
    speed = m.get("cpu_speed_ms")
    if speed:
        add("- **CPU speed check** (ms for a fixed pure-Python loop on CPU 0 before each configuration; lower is faster; "
            "the VM's speed drifts with other tenants, so compare figures taken at similar values): "
            + ", ".join(f"{k} {v:.1f}" for k, v in speed.items()) + ".")
    add("- **Versions:** " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()) + ".")
    states = set(m.get("git", {}).values())
    if len(states) > 1:
        add("- **The collector changed during the run:** " + ", ".join(f"{k} at {v}" for k, v in m["git"].items()) + ".")
    add("- **Placement:** the server under test is pinned to CPU 0 (`collector x2`, `ceiling x2`: CPUs 0-1, so their "
        "workers share CPU 1 with wrk and Redis); wrk and the bench's redis-server (no persistence) are pinned to CPU 1; "
        "everything talks over 127.0.0.1.")
    add("- **Client addresses:** every request carries the client IP in `X-Forwarded-For` from 127.0.0.1, which the "
        "collector trusts (`--trusted-proxies 127.0.0.1/32`), as behind a load balancer. The IPs come from real DB-IP "
        "networks that the collector's own lookup places in each region (`bench/data/ip_pool.json`, `python -m bench.ippool`).")
    geo = m.get("geo_db")
    if geo:
        add("- **Geo databases:** " + ", ".join(f"{k} ({v})" for k, v in geo.items()) + ", cut to the fields the "
            "collector reads as serve.sh does (geo_data/derive_dbip.py).")
    t = m.get("traffic")
    if t:
        add(f"- **Realistic traffic** (GET file): {n(t['requests'])} distinct requests replayed in turn, from "
            f"{n(t['distinct_visitors'])} distinct visitors ({n(t['distinct_ips'])} IPs, {n(t['distinct_uas'])} User-Agents; "
            f"{100 * t['visitors_seen_once']:.0f} % seen once, the busiest {n(t['hits_top_visitor'])} times), "
            f"{n(t['distinct_pages'])} distinct pages over 4 app keys (Zipf), {100 * t['bot_share']:.1f} % crawler hits, "
            f"{100 * t['ipv6_share']:.1f} % IPv6, {t['mean_path_bytes']:.0f}-byte request lines on average. Region mix: the seed "
            "report's prefecture shares plus other provinces and abroad (bench/traffic.py).")
    files = m.get("request_files", {})
    if files:
        described = (f"{k} {n(v['requests'])} requests ({v['bytes'] / 2**20:.1f} MB)" for k, v in files.items())
        add("- **Request files:** " + ", ".join(described) + ".")
    add("")
    add("Commands (as run by the harness):")
    add("")
    add("```sh")
    add(f"{meta['argv']}")
    for name, cmd in m.get("commands", {}).items():
        add(f"# {name}")
        add(cmd)
    add("# the load (one per run; -d is the run's duration)")
    seen = set()
    for r in m["runs"] + m.get("worst", []) + m.get("half_rate", []):
        cmd = re.sub(r"http://127\.0\.0\.1:\d+", "http://127.0.0.1:PORT", r["wrk_command"])
        cmd = re.sub(r"/\S*/(\w[\w-]*\.lua)", r"bench/out/\1", cmd)
        if cmd not in seen:
            seen.add(cmd)
            add(cmd)
    add("```")
    add("")


def previous_analysis(previous: str) -> str:
    if ANALYSIS_BEGIN in previous and ANALYSIS_END in previous:
        inner = previous.split(ANALYSIS_BEGIN, 1)[1].split(ANALYSIS_END, 1)[0]
        return ANALYSIS_BEGIN + inner + ANALYSIS_END
    return ANALYSIS_BEGIN + "\n\n(no analysis written yet)\n\n" + ANALYSIS_END


def meta_for(argv: str, duration: float, redis_version: str, wrk_version: str, beacon: dict) -> dict:
    return {
        "argv": argv,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "duration": duration,
        "machine": machine(),
        "versions": versions(redis_version, wrk_version),
        "beacon": beacon,
    }
