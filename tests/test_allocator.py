"""collector/allocator.py: with the mmap threshold fixed (malloc_mmap_threshold), large
blocks freed go back to the system at once, where glibc's dynamic threshold keeps them on
the heap (issue 17, memory). Each case in a fresh interpreter: mallopt is per process."""

from __future__ import annotations

import subprocess
import sys

import pytest

from collector import allocator
from collector.settings import Settings

PROBE = """
import ctypes, sys
from collector import allocator
if sys.argv[1] == "fixed":
    assert allocator.fix_mmap_threshold(int(sys.argv[2]))
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]

def rss_mb():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096 / 2**20

first = libc.malloc(1 << 20)  # mapped, then freed: glibc raises its threshold past 512 KiB
libc.free(first)
before = rss_mb()
blocks = []
for _ in range(200):  # 100 MB of 512 KiB blocks
    block = libc.malloc(512 * 1024)
    ctypes.memset(block, 1, 512 * 1024)
    blocks.append(block)
kept = libc.malloc(100 * 1024)  # after them on the heap, and it stays: the heap cannot shrink from its top
for block in blocks:
    libc.free(block)
print(rss_mb() - before)
"""


def held_after_free_mb(*mode: str) -> float:
    out = subprocess.run([sys.executable, "-c", PROBE, *mode], capture_output=True, text=True, check=True)
    return float(out.stdout)


@pytest.mark.skipif(allocator._glibc() is None, reason="glibc's mallopt only")
def test_fixed_mmap_threshold_hands_freed_large_blocks_back():
    assert held_after_free_mb("fixed", str(Settings().malloc_mmap_threshold)) < 10
    assert held_after_free_mb("dynamic") > 50  # what the worker would keep without it


def test_zero_leaves_the_dynamic_threshold():
    assert not allocator.fix_mmap_threshold(0)
