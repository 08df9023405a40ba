"""collector/loop_slice.py: a worker's event loop thread runs with a short EEVDF slice, so a
hit arriving while another task holds the core preempts it (issue 17, tail latency); its
threads and its build child keep the kernel's default, and where the kernel cannot, the
worker says why and serves as before."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from collector import loop_slice
from collector.settings import Settings, SettingsError

custom_slices = pytest.mark.skipif(
    loop_slice.current_slice_ns() == 0, reason="a kernel with EEVDF custom slices (Linux 6.12+) only"
)


SCHED_IDLE = 5


def sched_field(pid: int, tid: int, name: str) -> int | None:
    """One field the kernel shows for a thread in /proc/<pid>/task/<tid>/sched (None: absent —
    a SCHED_IDLE task has no se.slice line)."""
    for line in Path(f"/proc/{pid}/task/{tid}/sched").read_text().splitlines():
        if line.split(":")[0].strip() == name:
            return int(line.split(":")[1])
    return None


def slice_ns(pid: int, tid: int) -> int:
    """The slice the kernel shows for one thread (se.slice)."""
    value = sched_field(pid, tid, "se.slice")
    assert value is not None, f"no se.slice for thread {tid} of {pid}"
    return value


def child_slice_ns(child: int, default: int) -> int:
    """The build child's slice; once it has made itself SCHED_IDLE (build_worker.main, racing
    with this read) any task preempts it, so it counts as the default."""
    return default if sched_field(child, child, "policy") == SCHED_IDLE else slice_ns(child, child)


def threads_and_children(pid: int) -> tuple[list[int], list[int]]:
    tids = [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]
    children = [int(child) for tid in tids for child in Path(f"/proc/{pid}/task/{tid}/children").read_text().split()]
    return tids, children


@custom_slices
def test_the_event_loop_thread_alone_has_the_short_slice(collector_factory):
    collector = collector_factory()  # flush_build_process: the default
    pid = collector.proc.pid  # one worker: the process's main thread runs the event loop
    deadline = time.monotonic() + 20
    tids, children = threads_and_children(pid)
    while not children and time.monotonic() < deadline:  # the build child starts after the loop
        time.sleep(0.1)
        tids, children = threads_and_children(pid)
    default = loop_slice.current_slice_ns()  # this test process's: the kernel's default
    assert slice_ns(pid, pid) == Settings().loop_slice_us * 1000 != default
    helpers = [tid for tid in tids if tid != pid]
    assert helpers and children, (tids, children)
    assert [slice_ns(pid, tid) for tid in helpers] == [default] * len(helpers)
    assert [child_slice_ns(child, default) for child in children] == [default] * len(children)


@custom_slices
def test_zero_keeps_the_kernels_slice(collector_factory):
    collector = collector_factory(loop_slice_us=0)
    assert slice_ns(collector.proc.pid, collector.proc.pid) == loop_slice.current_slice_ns()


REFUSED = """
import logging, os, sys
from collector import loop_slice
logging.basicConfig(level=logging.WARNING, stream=sys.stdout, format="%(message)s")
os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
print(loop_slice.shorten(200), os.sched_getscheduler(0) == os.SCHED_IDLE)
"""


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux's SCHED_IDLE")
def test_a_policy_the_operator_chose_is_kept_and_the_worker_says_why():
    out = subprocess.run([sys.executable, "-c", REFUSED], capture_output=True, text=True, check=True).stdout
    assert "keeps the kernel's default CPU slice (loop_slice_us=200): scheduling policy 5" in out
    assert out.strip().endswith("False True")


def test_a_slice_outside_the_kernels_range_is_refused_by_name():
    assert not loop_slice.shorten(0)
    for wrong in (-1, 99, 100_001):
        with pytest.raises(SettingsError, match="--loop-slice-us"):
            Settings(loop_slice_us=wrong).validate()
