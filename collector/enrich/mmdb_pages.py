"""A geo database's pages mapped as lookups touch them (Linux; elsewhere nothing is done).

maxminddb maps each .mmdb file (tens of MB) and reads a few nodes per lookup. On a fault
the kernel maps the page together with the rest of its page-cache folio, and a file that
was just written, copied or read straight through sits in the cache in large folios (up to
2 MiB, some mapped whole by one page-table entry). The same lookups then map far more of
the file than they read: 60,000 lookups of the bench's realistic addresses mapped 41 MB of
the two files after they had been read through, 6 MB after their cache had been dropped and
refilled page by page — 35 MB of RSS that is only the cache's history (bench/RESULTS.md,
session 18: the full run's RSS rose from 185 to 214 MB with the code's own memory unchanged).

So at open: the file's cached pages that no process maps are dropped (POSIX_FADV_DONTNEED;
another worker's mapped pages stay), and the mapping is marked MADV_RANDOM, so a fault reads
its own page without read-ahead and the cache keeps it in a small folio. The cost is a read
from disk at the first touch of each page: at most the file's pages, once per boot, shared
by every worker.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
from collections.abc import Iterable

log = logging.getLogger(__name__)

MADV_RANDOM = 1  # <sys/mman.h>


def map_as_touched(paths: Iterable[str]) -> None:
    """Drop `paths`' unmapped cached pages and mark this process's mappings of them random."""
    if not sys.platform.startswith("linux"):
        return
    wanted = {os.path.realpath(p) for p in paths}
    try:
        for path in wanted:
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)
        madvise = ctypes.CDLL(None, use_errno=True).madvise
        madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        for start, end in mappings_of(wanted):
            if madvise(start, end - start, MADV_RANDOM) != 0:
                raise OSError(ctypes.get_errno(), "madvise")
    except (OSError, AttributeError) as exc:  # no such call here: the mapping stays as it was
        log.debug("geo database pages left to the kernel's defaults: %s", exc)


def mappings_of(paths: set[str]) -> list[tuple[int, int]]:
    """The address ranges of this process's mappings of `paths` (/proc/self/maps)."""
    ranges = []
    with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
        for line in maps:
            fields = line.split(maxsplit=5)
            if len(fields) == 6 and fields[5].rstrip("\n") in paths:
                start, end = fields[0].split("-")
                ranges.append((int(start, 16), int(end, 16)))
    return ranges
