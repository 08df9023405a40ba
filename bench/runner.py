"""One benchmark run: every configuration against the same load, then worst cases and accuracy.

Measurement of one load run (`measure`):
  * FLUSHALL and CONFIG RESETSTAT on the bench's own redis-server; used_memory and the
    CPU times of the server tree, Redis and the whole machine are read before;
  * wrk replays the request file for the run's duration (64 connections, 1 thread);
  * the harness waits until the server has flushed what it counted (collector: the
    Redis counters stop moving and cover every request wrk saw answered);
  * then CPU, peak RSS (VmHWM), INFO commandstats and used_memory are read again, and
    the events the server stored are counted from its day counters.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from . import procstat, servers, traffic, wrk
from .ippool import cut_like_serve, load_pool

SHAPES = {"get": 1, "post10": 10, "post50": 50}
NOISY_CORES = 0.25  # other processes using more CPU than this during a run make it noisy
# Every command the collector's scripts run (its .lua files and the scripts in store/*.py):
# INFO commandstats counts them like the commands a client sent, so the collector's own
# (`sent`) are the rest — its script calls (EVALSHA, EVAL) above all. The few top-level
# uses of these names (a day's salt GET/SET, the finality lease's SET, a new app's SADD:
# some a minute) are left out with them; bench/sent_commands.py counts exactly (MONITOR).
# Before 2026-11-30 this listed the flush script's commands only (plus its GET and SET per
# call), so the caps script's SISMEMBER/SADD/SCARD counted as sent: 0.1 a hit of the 0.107.
LUA_INTERNAL = (
    "hincrby", "pfadd", "expireat", "expire", "get", "set", "hget", "hset", "hdel", "hgetall", "sadd", "sismember",
    "smismember", "scard", "exists", "zadd", "zrem", "zrangebyscore", "zremrangebyscore", "xadd", "time", "pexpire", "del",
)


@dataclass
class Mode:
    name: str
    duration: float  # seconds per measured wrk run
    warmup: float
    n_requests: dict[str, int]  # distinct pre-generated requests per shape
    n_unique: int
    population: int
    accuracy_hits: int
    half_rate: bool = True
    worst_cases: bool = True
    ceiling2: bool = True
    rss_visitors: int = 0  # the 10^6-visitor RSS run (0: skipped)
    profile: bool = False
    connections: int = 64
    half_probes: int = 2  # 1 s wrk runs that tune the delay of the half-rate run
    quiet_wait: float = 0.0  # before each configuration, wait up to this long for the machine to be idle
    retry_noisy: int = 0  # measure a run again (up to this many times) when other processes used the CPU
    cut_geo_db: bool = True  # as serve.sh does (minutes once; the smoke test in CI leaves the files as fetched)


MODES = {
    "smoke": Mode("smoke", 1, 0, {"get": 4000, "post10": 800, "post50": 300}, 4000, 5000, 1500,
                  half_rate=False, worst_cases=False, ceiling2=False, cut_geo_db=False),
    "quick": Mode("quick", 3, 1, {"get": 40000, "post10": 5000, "post50": 2000}, 50000, 40000, 20000, ceiling2=False),
    "full": Mode("full", 15, 3, {"get": 200000, "post10": 30000, "post50": 10000}, 300000, 200000, 100000,
                 rss_visitors=1_000_000, profile=True, quiet_wait=120, half_probes=3, retry_noisy=2),
}


# ---- machine-wide CPU ------------------------------------------------------------------


def machine_busy_s() -> float:
    """Busy CPU seconds of the whole machine (all CPUs) since boot."""
    with open("/proc/stat") as fh:
        parts = fh.readline().split()[1:]
    user, nice, system, idle, iowait, irq, softirq, steal = (int(x) for x in parts[:8])
    return (user + nice + system + irq + softirq + steal) / procstat.TICK


def own_cpu_s() -> float:
    """CPU of this harness and of its finished children (wrk)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


# ---- the bench --------------------------------------------------------------------------


class Bench:
    def __init__(self, mode: Mode, workdir: Path, log=print) -> None:
        self.mode = mode
        self.dir = workdir.resolve()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log = log
        self.redis: servers.RedisServer | None = None
        self.files: dict[str, Path] = {}
        self.scripts: dict[str, Path] = {}
        self.results: dict = {"mode": mode.name, "runs": [], "worst": [], "half_rate": []}
        self.commands: dict[str, str] = {}
        self.peaks: dict[int, float] = {}  # per process: the highest VmHWM read (measure resets it)

    # -- setup -------------------------------------------------------------------------

    def prepare(self) -> None:
        m = self.mode
        t = time.monotonic()
        if m.cut_geo_db:
            self.results["geo_db"] = cut_like_serve(self.log)
        jobs = list(m.n_requests.items()) + ([("unique", m.n_unique)] if m.worst_cases else [])
        done = generate_requests(self.dir, jobs, m.population)
        sizes = {}
        for name, n, size, described in done:
            self.files[name] = self.dir / f"{name}.requests"
            self.scripts[name] = wrk.write_script(self.dir / f"{name}.lua", self.files[name])
            sizes[name] = (n, size)
            if described:
                self.results["traffic"] = described
        self.results["request_files"] = {k: {"requests": n, "bytes": b} for k, (n, b) in sizes.items()}
        self.log(f"traffic generated in {time.monotonic() - t:.1f}s: {sizes}")
        self.redis = servers.RedisServer(self.dir)
        self.commands["redis-server (the bench's own)"] = servers.shown(self.redis.cmd)

    def close(self) -> None:
        if self.redis:
            self.redis.stop()

    # -- servers -----------------------------------------------------------------------

    def server(self, kind: str, workers: int = 1, limits: bool = False) -> servers.ServerProc:
        port = servers.free_port()
        log = self.dir / f"{kind}-{workers}.log"
        cpus = "0" if workers == 1 else "0,1"
        if kind == "ceiling":
            s = servers.ceiling(port, workers, cpus, log)
        elif kind == "collector":
            data = self.dir / f"data-{kind}-{workers}-{time.monotonic_ns()}"
            s = servers.collector(port, workers, self.redis.url, cpus, log, data, limits)
            s.data_dir = data  # type: ignore[attr-defined]
        else:
            s = servers.naive(port, self.redis.url, cpus, log)
        s.kind = kind  # type: ignore[attr-defined]
        self.commands[s.name] = servers.shown(servers.pinned(s.cmd, cpus))
        return s

    # -- one measured run --------------------------------------------------------------

    def measure(self, s: servers.ServerProc, shape: str, file: str | None = None, duration: float | None = None,
                delay_ms: float = 0.0, during=None, settle_max: float = 8.0, settle: bool = True) -> dict:
        m = self.mode
        file = file or shape
        duration = duration or m.duration
        per_request = SHAPES[shape]
        script = self.scripts[file]
        if delay_ms:
            script = wrk.write_script(self.dir / f"{file}-delay.lua", self.files[file], delay_ms=delay_ms)
        r = self.redis
        r.reset()
        mem0 = r.used_memory()
        pids = s.pids
        p0, r0, busy0, own0 = procstat.sample(pids), r.cpu_seconds(), machine_busy_s(), own_cpu_s()
        # VmHWM is the peak since the process started: reset to the current RSS, it gives
        # this run's own peak (run_peak_rss_mb); the process's (peak_rss_mb, what the
        # tables show) is then the largest of the peaks read so far (_process_peak).
        procstat.reset_peaks(pids)
        extra = during(time.monotonic() + duration) if during else None
        res = wrk.run(s.url + "/c", script, duration, connections=m.connections)
        t_end = time.monotonic()
        counted = self.settle(s, res.requests * per_request, settle_max) if settle else None
        settle_s = time.monotonic() - t_end
        p1, r1, busy1, own1 = procstat.sample(pids), r.cpu_seconds(), machine_busy_s(), own_cpu_s()
        cmds = servers.server_commands(r.commandstats())
        mem1 = r.used_memory()
        events = res.requests * per_request
        # Per-event costs divide by the events the server handled: those answered, or more
        # when it kept working through requests still queued when wrk stopped (naive).
        handled = max(events, counted or 0)
        server_cpu = p1.cpu_s - p0.cpu_s
        redis_cpu = r1 - r0
        wall = res.duration_s + settle_s
        foreign = (busy1 - busy0) - server_cpu - redis_cpu - (own1 - own0)
        total_cmds = sum(cmds.values())
        internal = sum(cmds.get(c, 0) for c in LUA_INTERNAL) if s.kind == "collector" else 0
        workers = s.workers()
        row = {
            "config": s.name,
            "kind": s.kind,
            "shape": shape,
            "file": file,
            "events_per_request": per_request,
            "duration_s": res.duration_s,
            "requests": res.requests,
            "events": events,
            "rps": res.rps,
            "eps": events / res.duration_s,
            "handled_events": handled,
            "p50_ms": res.p50_ms,
            "p90_ms": res.p90_ms,
            "p99_ms": res.p99_ms,
            "p999_ms": res.p999_ms,
            "lat_max_ms": res.lat_max_ms,
            "over_5ms": res.over_5ms,
            "lat_mean_ms": res.lat_mean_ms,
            "errors": res.errors,
            "errors_status": res.errors_status,
            "cpu_us_per_event": server_cpu / handled * 1e6 if handled else None,
            "cpu_cores": server_cpu / wall if wall else None,
            "peak_rss_mb": max((self._process_peak(p, p0, p1) for p in workers), default=0),
            "run_peak_rss_mb": max((p1.hwm_mb.get(p, 0) for p in workers), default=0),
            "peak_rss_mb_all": {str(p): round(self._process_peak(p, p0, p1), 1) for p in pids},
            "rss_anon_mb": max((p1.anon_mb.get(p, 0) for p in workers), default=0),
            "rss_file_mb": max((p1.file_mb.get(p, 0) for p in workers), default=0),
            "redis_cmds_per_event": total_cmds / handled if handled else None,
            "redis_client_cmds_per_event": (total_cmds - internal) / handled if handled else None,
            "redis_commands": cmds,
            "redis_cpu_us_per_event": redis_cpu / handled * 1e6 if handled else None,
            "redis_mem_bytes": mem1 - mem0,
            "redis_mem_mb_per_1e6": (mem1 - mem0) / handled * 1e6 / 2**20 if handled else None,
            "counted_events": counted,
            "settle_s": settle_s,
            "foreign_cpu_cores": max(foreign, 0) / wall if wall else None,
            "delay_ms": delay_ms,
            "wrk_command": res.command,
        }
        if extra is not None:
            row["during"] = extra
        return row

    def _process_peak(self, pid: int, before: procstat.TreeSample, after: procstat.TreeSample) -> float:
        """The process's peak RSS since it started, though run_peak_rss_mb resets its VmHWM."""
        peak = max(self.peaks.get(pid, 0.0), before.hwm_mb.get(pid, 0.0), after.hwm_mb.get(pid, 0.0))
        self.peaks[pid] = peak
        return peak

    def measure_clean(self, s: servers.ServerProc, shape: str, **kw) -> dict:
        """measure(), again (after waiting for quiet) while other processes disturbed it."""
        row = self.measure(s, shape, **kw)
        tries = 0
        while tries < self.mode.retry_noisy and (row["foreign_cpu_cores"] or 0) > NOISY_CORES:
            tries += 1
            self.log(fmt_row(row) + "  <- disturbed by other load: measuring again")
            self.wait_quiet(self.mode.quiet_wait or 30)
            again = self.measure(s, shape, **kw)
            if (again["foreign_cpu_cores"] or 0) < (row["foreign_cpu_cores"] or 0):
                row = again
        row["retries"] = tries
        return row

    def settle(self, s: servers.ServerProc, expected: int, limit: float) -> int | None:
        """Wait until the server has stored what it answered; the events it stored.

        Done when Redis holds at least `expected` events, the count has not moved for
        longer than a flush interval (1 s), and — a collector — every worker says it holds
        no batch or event still to write: a batch queued behind a slow flush leaves Redis's
        count still for longer than that (session 15: a warm-up's last batch landed inside
        the measured run that followed).
        """
        if s.kind == "ceiling":
            return None
        window = 1.3 if s.kind == "collector" else 0.6
        deadline = time.monotonic() + limit
        last, since = -1, time.monotonic()
        while True:
            counted = count_events(self.redis)
            now = time.monotonic()
            if counted != last:
                last, since = counted, now
            elif counted >= expected and now - since >= window and servers.nothing_to_write(s):
                if count_events(self.redis) == counted:  # no flush landed while the workers were asked
                    return counted
            if now > deadline:
                return counted
            time.sleep(0.25)

    # -- the whole thing -----------------------------------------------------------------

    def wait_quiet(self, limit: float, threshold: float = 0.25) -> float:
        """Wait (up to `limit` s) until the rest of the machine uses under `threshold` cores."""
        deadline = time.monotonic() + limit
        while True:
            b0, o0, r0 = machine_busy_s(), own_cpu_s(), self.redis.cpu_seconds()
            time.sleep(1.0)
            foreign = (machine_busy_s() - b0) - (own_cpu_s() - o0) - (self.redis.cpu_seconds() - r0)
            if foreign < threshold or time.monotonic() > deadline:
                if foreign >= threshold:
                    self.log(f"machine still busy ({foreign:.2f} cores used by other processes): measuring anyway")
                return foreign

    def run_config(self, kind: str, workers: int = 1, shapes=("get", "post10", "post50"), extra=()) -> list[dict]:
        m = self.mode
        name = f"{kind} x{workers}" if kind != "naive" else kind
        if m.quiet_wait:
            self.results.setdefault("idle_before", {})[name] = self.wait_quiet(m.quiet_wait)
        self.results.setdefault("cpu_speed_ms", {})[name] = cpu_speed_ms()
        from .report import git_state

        self.results.setdefault("git", {})[name] = git_state()  # the collector may change while a run goes on
        s = self.server(kind, workers)
        s.start()
        rows = []
        try:
            if m.warmup:
                wrk.run(s.url + "/c", self.scripts["get"], m.warmup, connections=m.connections)
                self.settle(s, 0, 10)
            for shape in shapes:
                # Up to 30 s for the flush to store what was answered: a POST run can answer faster
                # than Redis takes it in, and the next run (the half-rate latency) must not start
                # while this one's backlog is still being flushed.
                row = self.measure_clean(s, shape, settle_max=30.0)
                self.log(fmt_row(row))
                rows.append(row)
                self.results["runs"].append(row)
            for name in extra:
                row = getattr(self, "extra_" + name)(s, rows)
                if row:
                    self.log(fmt_row(row))
        finally:
            code = s.stop()
            if code not in (0, None, -15):
                self.log(f"warning: {s.name} exited with {code}")
            self.cleanup(s)
        return rows

    def cleanup(self, s: servers.ServerProc) -> None:
        """Remove the collector's data dir (its journal) once it has stopped."""
        data = getattr(s, "data_dir", None)
        if data is not None:
            shutil.rmtree(data, ignore_errors=True)

    def extra_half(self, s: servers.ServerProc, rows: list[dict]) -> dict | None:
        """GET at half of this configuration's peak GET rate: wrk waits between requests.

        Each of the C connections sends one request per (delay + latency), so the rate is
        C / (delay + latency); short probes measure the latency at the rate they reach
        and correct the delay (latency falls as the rate does).
        """
        peak = next(r for r in rows if r["shape"] == "get")
        target = peak["rps"] / 2
        c = self.mode.connections
        cycle_ms = c / target * 1000
        delay = max(cycle_ms - 1.0, 0.05)
        for _ in range(self.mode.half_probes):
            probe = self.measure(s, "get", duration=1, delay_ms=delay, settle=False)
            if abs(probe["rps"] / target - 1) < 0.05:
                break
            delay = max(cycle_ms - probe["lat_mean_ms"], 0.05)
        self.settle(s, 0, 10)
        row = self.measure_clean(s, "get", delay_ms=delay)
        row["target_rps"] = target
        row["peak_rps"] = peak["rps"]
        self.results["half_rate"].append(row)
        return row

    def extra_unique(self, s: servers.ServerProc, rows: list[dict]) -> dict:
        row = self.measure_clean(s, "get", file="unique")
        row["case"] = "unique"
        row["distinct_fraction"] = min(1.0, self.mode.n_unique / max(row["requests"], 1))
        self.results["worst"].append(row)
        return row

    def extra_stall(self, s: servers.ServerProc, rows: list[dict]) -> dict:
        """Realistic GETs while Redis blocks (DEBUG SLEEP 2) every 3 s: hits must not wait."""
        row = self.measure_clean(s, "get", during=lambda until: self.redis.stall(2.0, 3.0, until), settle_max=30.0)
        row["case"] = "stall"
        self.results["worst"].append(row)
        return row

    def extra_batch50(self, s: servers.ServerProc, rows: list[dict]) -> dict:
        row = dict(next(r for r in rows if r["shape"] == "post50"))
        row["case"] = "batch50"
        self.results["worst"].append(row)
        return None  # already measured and logged with the main runs

    def run_all(self) -> dict:
        m = self.mode
        self.prepare()
        try:
            half = ("half",) if m.half_rate else ()
            worst = ("unique", "stall", "batch50") if m.worst_cases else ()
            self.run_config("ceiling", 1, extra=half)
            self.run_config("collector", 1, extra=half + worst)
            self.run_config("collector", 2, extra=half + (("unique",) if m.worst_cases and m.name == "full" else ()))
            if m.ceiling2:
                self.run_config("ceiling", 2, shapes=("get",) if m.name != "full" else ("get", "post10", "post50"))
            naive_extra = half + (("unique", "stall") if m.worst_cases and m.name == "full" else ())
            self.run_config("naive", 1, extra=naive_extra)
            from . import accuracy

            self.results["accuracy"] = accuracy.run(self, m.accuracy_hits)
            self.log(f"accuracy: {json.dumps(self.results['accuracy']['summary'], ensure_ascii=False)}")
            if m.rss_visitors:
                self.results["rss_1e6"] = self.rss_run(m.rss_visitors)
            if m.profile:
                from . import profile, stages

                self.results["profile"] = profile.run(self)
                try:
                    self.results["stages"] = stages.run()
                except Exception as exc:  # the collector's internals moved: the load figures still stand
                    self.results["stages"] = {"error": f"{type(exc).__name__}: {exc}"}
        finally:
            self.close()
        self.results["commands"] = self.commands
        return self.results

    # -- peak RSS after N distinct visitors --------------------------------------------

    def rss_run(self, n: int, keep: bool = False) -> dict:
        """Peak RSS of a fresh collector x1 after n distinct visitors. With `keep`, the
        request file (~800 MB for 10^6) stays for the next run, which reuses it (its
        timestamps must still lie within client_ts_window: a day)."""
        path = self.dir / f"rss-{n}.requests"
        if not (keep and path.exists()):
            self.rss_requests(n, path)
        script = wrk.write_script(self.dir / "rss.lua", path, stop_after=n)
        # The default rate limits and UV guard: every request comes from a client of its own,
        # so they refuse nothing, but their per-client tables fill as in production.
        s = self.server("collector", 1, limits=True)
        s.start()
        samples = []
        stop = threading.Event()

        def sampler() -> None:
            t0 = time.monotonic()
            while not stop.is_set():
                snap = procstat.sample(s.pids)
                samples.append((round(time.monotonic() - t0, 1), round(max(snap.rss_mb.values(), default=0), 1)))
                stop.wait(1.0)

        th = threading.Thread(target=sampler, daemon=True)
        try:
            self.redis.reset()
            th.start()
            unique_rps = next((w["rps"] for w in self.results["worst"] if w.get("case") == "unique" and w["kind"] == "collector"), 5000)
            # wrk stops sending after n requests; end it once the collector has stored them.
            res = wrk.run(s.url + "/c", script, n / max(unique_rps * 0.3, 500) + 60, connections=self.mode.connections,
                          stop_when=lambda: count_events(self.redis) >= n - self.mode.connections)
            counted = self.settle(s, res.requests, 20)
            time.sleep(1.5)
            stop.set()
            th.join()
            final = procstat.sample(s.pids)
            w = s.workers()[0]
            # Who built the flush parts (the build process, or the worker's thread and why).
            built = {k: v for k, v in servers.collector_figures(s.url).items() if k.startswith("flush_parts_built")}
            out = {
                "flush_parts": built,
                "visitors": min(n, res.requests),
                "requests": res.requests,
                "rps": res.rps,
                "counted_events": counted,
                "peak_rss_mb": final.hwm_mb.get(w, 0),
                "rss_mb": final.rss_mb.get(w, 0),
                "rss_anon_mb": final.anon_mb.get(w, 0),
                "rss_file_mb": final.file_mb.get(w, 0),
                "series": samples,
                "redis_mem_mb": self.redis.used_memory() / 2**20,
            }
        finally:
            stop.set()
            s.stop()
            self.cleanup(s)
            if not keep:
                path.unlink(missing_ok=True)  # ~800 MB
        self.log(f"rss after {out['visitors']} distinct visitors: peak {out['peak_rss_mb']:.0f} MB "
                 f"(anon {out['rss_anon_mb']:.0f}, file {out['rss_file_mb']:.0f})")
        return out


    def rss_requests(self, n: int, path: Path) -> None:
        """The memory run's request file: n GET pixels, each from a new IP and User-Agent."""
        t = time.monotonic()
        parts = 2 * (os.cpu_count() or 1)
        now_ms = int(time.time() * 1000)
        jobs = [(n * i // parts, n * (i + 1) // parts, now_ms, str(self.dir), 100 + i) for i in range(parts)]
        import multiprocessing

        with multiprocessing.get_context("fork").Pool(os.cpu_count() or 1, _all_cpus) as workers:
            files = workers.map(_generate_unique_part, jobs)
        with open(path, "wb") as out:
            for f in files:
                with open(f, "rb") as part:
                    shutil.copyfileobj(part, out, 1 << 20)
                os.unlink(f)
        size = path.stat().st_size
        self.log(f"rss run: {n} unique requests generated in {time.monotonic() - t:.0f}s ({size >> 20} MB)")


# ---- helpers ----------------------------------------------------------------------------


def _all_cpus() -> None:
    """Generator processes may use every CPU (the harness itself is pinned to CPU 1)."""
    try:
        os.sched_setaffinity(0, range(os.cpu_count() or 1))
    except OSError:
        pass


UNIQUE_SERIAL = 10_000_000  # User-Agent serials of the memory run start here (never those of other runs)


def generate_requests(folder: Path, jobs: list[tuple[str, int]], population: int) -> list[tuple[str, int, int, dict | None]]:
    """The request files of `jobs` ((shape, requests) each) in `folder`, made in parallel, one process per CPU."""
    import multiprocessing

    now_ms = int(time.time() * 1000)
    with multiprocessing.get_context("fork").Pool(min(len(jobs), os.cpu_count() or 1), _all_cpus) as workers:
        return workers.map(_generate, [((shape, n, now_ms, str(folder)), population) for shape, n in jobs])


def _generate_unique_part(job) -> str:
    """Requests start..end of the 10^6-visitor file: a new IP and a User-Agent with a serial of its own each."""
    start, end, now_ms, workdir, seed = job
    pool = load_pool()
    pop = traffic.Population(pool, 1000, seed=seed)
    path = Path(workdir) / f"rss-{start}.part"
    path.unlink(missing_ok=True)
    step = 50_000
    for a in range(start, end, step):
        reqs = traffic.unique(pop, min(step, end - a), now_ms, serial_start=UNIQUE_SERIAL + a)
        traffic.write_wrk_file(reqs, path, append=True)
    return str(path)


def _generate(job) -> tuple[str, int, int, dict | None]:
    """Write one request file (in a worker process): name, requests, bytes, description."""
    (name, n, now_ms, workdir), population = job
    pool = load_pool()
    if name == "unique":
        reqs = traffic.unique(traffic.Population(pool, 1000, seed=2), n, now_ms)
    else:
        reqs = traffic.realistic(traffic.Population(pool, population, seed=1), n, name, now_ms)
    size = traffic.write_wrk_file(reqs, Path(workdir) / f"{name}.requests")
    return name, len(reqs), size, describe_traffic(reqs) if name == "get" else None


SPEED_CHECK = (
    "import time\nbest = 9e9\nfor _ in range(5):\n    t = time.perf_counter(); d = {}\n"
    "    for i in range(200000): d[i & 4095] = d.get(i & 4095, 0) + i\n"
    "    best = min(best, time.perf_counter() - t)\nprint(best * 1000)"
)


def cpu_speed_ms() -> float:
    """ms a fixed pure-Python loop takes on CPU 0 (best of 5): shows how fast the CPU is right now.

    The machine is a VM whose speed drifts (other tenants); compare runs only at similar values."""
    import sys

    out = subprocess.run(["taskset", "-c", "0", sys.executable, "-c", SPEED_CHECK], capture_output=True, text=True)
    try:
        return round(float(out.stdout.strip()), 2)
    except ValueError:
        return -1.0


def count_events(r: servers.RedisServer) -> int:
    """Events stored in the day counters of every app: accepted (pv, bots, other types) + rejected."""
    total = 0
    c = r.client
    for key in c.keys("eb:*:day:*:c"):
        for name, value in c.hgetall(key).items():
            if name in ("pv", "bot_hits", "engagements") or name.startswith(("ev:", "rejected:")):
                total += int(value)
    return total


def describe_traffic(reqs: list) -> dict:
    """What the realistic GET file holds: distinct visitors, IPs, UAs, pages, bot share..."""
    visitors = {(r.visitor.ip, r.visitor.ua) for r in reqs}
    ips = {r.visitor.ip for r in reqs}
    uas = {r.visitor.ua for r in reqs}
    pages = {r.events[0]["u"] for r in reqs}
    bots = sum(r.visitor.is_bot for r in reqs)
    v6 = sum(":" in r.visitor.ip for r in reqs)
    counts: dict[str, int] = {}
    for r in reqs:
        counts[(r.visitor.ip, r.visitor.ua)] = counts.get((r.visitor.ip, r.visitor.ua), 0) + 1
    per_visitor = sorted(counts.values(), reverse=True)
    return {
        "requests": len(reqs),
        "distinct_visitors": len(visitors),
        "distinct_ips": len(ips),
        "distinct_uas": len(uas),
        "distinct_pages": len(pages),
        "bot_share": bots / len(reqs),
        "ipv6_share": v6 / len(reqs),
        "hits_per_visitor_mean": len(reqs) / len(visitors),
        "hits_top_visitor": per_visitor[0],
        "visitors_seen_once": sum(1 for x in per_visitor if x == 1) / len(per_visitor),
        "mean_path_bytes": statistics.mean(len(r.path) for r in reqs),
    }


def fmt_row(r: dict) -> str:
    tag = r.get("case") or ("half" if r.get("delay_ms") else r["shape"])
    return (f"{r['config']:14s} {tag:8s} {r['rps']:9.0f} req/s {r['eps']:9.0f} ev/s  p50 {r['p50_ms']:7.2f} "
            f"p99 {r['p99_ms']:7.2f} p999 {r['p999_ms']:7.2f} ms  cpu {r['cpu_us_per_event'] or 0:6.1f} us/ev  "
            f"rss {r['peak_rss_mb']:5.0f} MB (run {r.get('run_peak_rss_mb', 0):.0f})  "
            f"redis {r['redis_cmds_per_event'] or 0:.3f} cmd/ev  err {r['errors']}  "
            f"counted {r['counted_events']}  other load {r['foreign_cpu_cores'] or 0:.2f} cores")
