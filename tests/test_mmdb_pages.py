"""A geo database's mapping reads the pages lookups touch, without read-ahead (enrich/mmdb_pages.py).

The page cache's large folios made the same lookups map up to 35 MB more of the files
(bench/RESULTS.md, session 18); the resolver marks its mappings MADV_RANDOM, which the
kernel shows as the `rr` flag of the mapping in /proc/self/smaps.
"""

from __future__ import annotations

import os
import shutil
import sys

import pytest

from collector.enrich.geo import GeoResolver
from collector.enrich.mmdb_pages import map_as_touched, mappings_of

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and madvise are Linux's")


def vm_flags_of(path: str) -> list[list[str]]:
    """The VmFlags of each of this process's mappings of `path`."""
    flags, current = [], ""
    with open("/proc/self/smaps", encoding="utf-8", errors="replace") as smaps:
        for line in smaps:
            head = line.split(maxsplit=5)
            if head and "-" in head[0] and not head[0].endswith(":"):
                current = head[5].rstrip("\n") if len(head) == 6 else ""
            elif head and head[0] == "VmFlags:" and current == path:
                flags.append(line.split()[1:])
    return flags


def test_the_resolvers_mappings_are_read_at_random(test_mmdbs, tmp_path):
    path = str(tmp_path / "a copy with a space.mmdb")  # a name /proc/self/maps splits badly if read naively
    shutil.copy(test_mmdbs["dbip"], path)
    resolver = GeoResolver([path])
    try:
        resolver.lookup("1.2.3.4")
        flags = vm_flags_of(os.path.realpath(path))
        assert flags and all("rr" in f for f in flags)
    finally:
        resolver.close()


def test_a_mapping_is_found_by_its_path_and_only_it(tmp_path):
    import mmap

    marked, other = tmp_path / "marked file.bin", tmp_path / "other.bin"
    for f in (marked, other):
        f.write_bytes(b"\0" * mmap.PAGESIZE * 4)
    with open(marked, "rb") as a, open(other, "rb") as b:
        ma = mmap.mmap(a.fileno(), 0, access=mmap.ACCESS_READ)
        mb = mmap.mmap(b.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            assert len(mappings_of({str(marked)})) == 1
            map_as_touched([str(marked)])
            assert all("rr" in f for f in vm_flags_of(str(marked)))
            assert not any("rr" in f for f in vm_flags_of(str(other)))
        finally:
            ma.close()
            mb.close()
