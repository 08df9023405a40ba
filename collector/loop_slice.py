"""A short CPU slice for the event loop's thread (Linux ≥ 6.12, EEVDF; issue 17, tail latency).

Linux's fair scheduler (EEVDF) lets a task it wakes run before the one on the core only
when the woken task's deadline comes first. With the default slice (0.75 ms × (1 +
log2 CPUs), 1.4 ms on 2 cores) a hit arriving while any other task of the core computes —
another process, a kernel thread, a helper thread of this worker — often waits until the
running task's slice ends, which on a kernel without preemption at HZ 250 is the next
tick: up to 4 ms. `perf sched` at half the peak rate saw the loop thread runnable and not
run for 1–4.3 ms 17–86 times in 5 s behind whatever shared its core
(bench/RESULTS.md, session 9). A task with a custom slice shorter than the running
one's preempts it on wakeup, so the loop thread asks for `loop_slice_us`
(sched_setattr's sched_runtime on a SCHED_OTHER task; no privilege needed).

Only the loop's thread: SCHED_FLAG_RESET_ON_FORK gives every thread and process it
starts (the flush's workers, the journal's fsync thread, the build child) the default
slice back, so the loop also preempts those, and they do not preempt each other more
often than before (measured: the short slice on every thread of the worker made the
p99 worse, and cost CPU in extra switches). The same flag hands them nice 0 where the
worker was started at a negative nice.

Elsewhere (another OS, another architecture, an older kernel that takes the call but
ignores sched_runtime, a policy other than SCHED_OTHER/SCHED_BATCH, a seccomp filter) the
worker logs once why and serves as before.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import platform
import sys

log = logging.getLogger(__name__)

# (sched_setattr, sched_getattr) by machine: x86_64's own table, and the generic one.
SYSCALLS = {"x86_64": (314, 315), "aarch64": (274, 275), "arm64": (274, 275)}
SCHED_FLAG_RESET_ON_FORK = 0x01
SCHED_OTHER, SCHED_BATCH = 0, 3
SLICE_MIN_NS, SLICE_MAX_NS = 100_000, 100_000_000  # the kernel clamps a custom slice to these


class SchedAttr(ctypes.Structure):
    """struct sched_attr (include/uapi/linux/sched/types.h), its 56-byte version."""

    _fields_ = [
        ("size", ctypes.c_uint32),
        ("sched_policy", ctypes.c_uint32),
        ("sched_flags", ctypes.c_uint64),
        ("sched_nice", ctypes.c_int32),
        ("sched_priority", ctypes.c_uint32),
        ("sched_runtime", ctypes.c_uint64),  # a fair task's custom slice, in ns
        ("sched_deadline", ctypes.c_uint64),
        ("sched_period", ctypes.c_uint64),
        ("sched_util_min", ctypes.c_uint32),
        ("sched_util_max", ctypes.c_uint32),
    ]


def shorten(slice_us: int) -> bool:
    """Give the calling thread a slice of `slice_us` µs (0: leave the kernel's default), not
    inherited by the threads and processes it starts. True when the kernel took it."""
    if slice_us <= 0:
        return False
    why = _refusal(slice_us * 1000)
    if why:
        log.warning("the event loop keeps the kernel's default CPU slice (loop_slice_us=%d): %s", slice_us, why)
        return False
    return True


def current_slice_ns(tid: int = 0) -> int:
    """The CPU slice of thread `tid` (0: the calling one) in ns: its custom one, else the
    kernel's default; 0 where the kernel does not tell (before Linux 6.12) or elsewhere."""
    calls, libc = _calls(), _libc()
    if calls is None or libc is None:
        return 0
    attr = SchedAttr()
    if libc.syscall(calls[1], tid, ctypes.byref(attr), ctypes.sizeof(SchedAttr), 0) != 0:
        return 0
    return int(attr.sched_runtime) if attr.sched_policy in (SCHED_OTHER, SCHED_BATCH) else 0


def _refusal(slice_ns: int) -> str:
    """Ask for the slice; the reason it was not taken, or "" when it was."""
    calls, libc = _calls(), _libc()
    if calls is None or libc is None:
        return f"no sched_setattr on {sys.platform}/{platform.machine()}"
    policy = os.sched_getscheduler(0)
    if policy not in (SCHED_OTHER, SCHED_BATCH):  # an operator's choice (chrt): kept
        return f"scheduling policy {policy} is not SCHED_OTHER or SCHED_BATCH"
    attr = SchedAttr(
        size=ctypes.sizeof(SchedAttr), sched_policy=policy, sched_flags=SCHED_FLAG_RESET_ON_FORK,
        sched_nice=os.getpriority(os.PRIO_PROCESS, 0), sched_runtime=slice_ns,
    )
    if libc.syscall(calls[0], 0, ctypes.byref(attr), 0) != 0:
        code = ctypes.get_errno()
        return f"sched_setattr refused: {errno.errorcode.get(code, code)}"
    if current_slice_ns() != min(max(slice_ns, SLICE_MIN_NS), SLICE_MAX_NS):
        # before 6.12 a fair task's sched_runtime is accepted and ignored
        return f"kernel {platform.release()} has no custom slices (Linux 6.12 or later)"
    return ""


def _calls() -> tuple[int, int] | None:
    if not sys.platform.startswith("linux"):
        return None
    return SYSCALLS.get(platform.machine())


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
