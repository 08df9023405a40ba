"""bench.thread_cpu --flush-stages: loaded as the collector's sitecustomize (not imported by the bench).

The thread CPU spent inside each of the flusher's steps, by thread — "loop:" the event loop's,
"thread:" the flusher's executor threads —, cumulative, written about twice a second to
$STAGE_PROBE_LOG.PID as `[time.time(), {"loop:step": seconds, ...}]`; also how many batches were
pending when each part's build was asked ("parts built with N pending", a count). The wrappers
cost a few thread_time calls a step (steps are per batch, part or chunk, never per hit).
"""

import asyncio
import functools
import json
import os
import threading
import time

_MAIN = threading.main_thread()
_TOTALS: dict[str, float] = {}
_OUT = os.environ.get("STAGE_PROBE_LOG", "/tmp/stage-probe") + f".{os.getpid()}"
_WRITTEN = [0.0]


def _add(name, seconds):
    key = ("loop:" if threading.current_thread() is _MAIN else "thread:") + name
    _TOTALS[key] = _TOTALS.get(key, 0.0) + seconds
    now = time.time()
    if now - _WRITTEN[0] > 0.5:
        _WRITTEN[0] = now
        with open(_OUT, "a") as fh:
            fh.write(json.dumps([now, _TOTALS]) + "\n")


def _timed(name, fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        start = time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            _add(name, time.thread_time() - start)
    return wrapper


def _timed_iter(name, make):
    """A generator function whose every step (next) is timed."""
    def wrapper(*args):
        it = iter(make(*args))
        while True:
            start = time.thread_time()
            try:
                item = next(it)
            except StopIteration:
                _add(name, time.thread_time() - start)
                return
            _add(name, time.thread_time() - start)
            yield item
    return wrapper


class _TimedPickle:
    """build_worker's `pickle`, its loads (the child's answers, read by the loop) timed."""

    def __init__(self, module):
        self.HIGHEST_PROTOCOL = module.HIGHEST_PROTOCOL
        self.UnpicklingError = module.UnpicklingError
        self.dumps = module.dumps
        self.loads = _timed("child_answer_loads", module.loads)


def _install():
    from collector import allocator
    from collector.store import build_worker, flusher, journal

    flusher_class = flusher.Flusher
    for name in ("_due", "_parts", "_packed_parts", "_built", "seal", "_add_questions"):
        setattr(flusher_class, name, _timed(name, getattr(flusher_class, name)))
    asked = flusher_class._commands

    async def commands(self, batch, *args, **kwargs):
        key = f"parts built with {len(self.pending)} pending"
        _TOTALS[key] = _TOTALS.get(key, 0) + 1
        return await asked(self, batch, *args, **kwargs)

    flusher_class._commands = commands
    flusher._pack_all_but_first = _timed("pack_all_but_first", flusher._pack_all_but_first)
    flusher.remove_segment = _timed("remove_segment", flusher.remove_segment)
    flusher.unpack = _timed("unpack", flusher.unpack)
    allocator.trim = _timed("trim", allocator.trim)

    async def release(part):  # flusher._release, each shed timed
        if isinstance(part, flusher.Snapshot):
            while True:
                start = time.thread_time()
                done = part.shed(flusher.SHED_ENTRIES)
                _add("shed", time.thread_time() - start)
                if done:
                    return
                await asyncio.sleep(0)

    flusher._release = release
    build_worker._part_payloads = _timed_iter("child_pickle", build_worker._part_payloads)
    build_worker._write_framed = _timed("child_write", build_worker._write_framed)
    build_worker._write = _timed("child_write_msg", build_worker._write)
    build_worker.pickle = _TimedPickle(build_worker.pickle)
    for name in ("append", "seal"):
        setattr(journal.Journal, name, _timed("journal_" + name, getattr(journal.Journal, name)))


try:
    _install()
except Exception as exc:  # noqa: BLE001 — a probe must not stop the server; the error is left beside its log
    with open(_OUT + ".err", "w") as fh:
        fh.write(repr(exc))
