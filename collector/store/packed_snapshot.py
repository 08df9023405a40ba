"""A batch waiting in the flush queue, kept as pickled bytes rather than as live objects.

A sealed batch behind the one being applied waits some seconds for its turn (issue 17,
POST runs). As a Snapshot it holds every entry as a tuple of strings and ints in a dict
or set slot: ~145 bytes per entry, ~214 bytes per event of 50-event POSTs. Pickled, the
same entries take ~30 bytes each (~45 per POST-50 event), and packing and unpacking cost
~0.3 µs per entry each, in the flusher's thread — against ~23 µs per event to rebuild the
batch from its journal segment, the other way to keep it out of memory (bench/RESULTS.md,
"Session 8: a queued batch's memory").

The entries go through build_worker.part_messages, the plain-data form the build process
already receives (Snapshot and Session are compiled classes, which pickle does not know),
in chunks of CHUNK_ENTRIES: packing in a thread lets the hit loop take the GIL back
between two chunks. Unpacked, a batch is the same snapshot: the same entries, the same
event ids in the same order, its re-sent hits and its event count.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from dataclasses import dataclass

from collector.hit.record import Hit
from collector.store.aggregate import Snapshot
from collector.store.build_worker import add_to_part, pickled_messages
from collector.store.pacing import no_pacing


@dataclass(frozen=True, slots=True)
class Spilled:
    """Where a part's chunks went in its batch's spill file (store/spill.py)."""

    offset: int
    lengths: tuple[int, ...]  # of its chunks, in order
    crc: int  # zlib.crc32 of them all


@dataclass(slots=True)
class PackedSnapshot:
    chunks: list[bytes]  # each a pickled (collection name, entries) of part_messages; [] while spilled
    resent: list[Hit]  # few: kept as they are (the build never sees them)
    events: int
    apps: set[str]  # Snapshot.apps(), known without unpacking (a flush part's apps)
    spilled: Spilled | None = None  # its chunks are in a spill file, read back when due (spill.py)

    @property
    def size(self) -> int:
        """The bytes of its chunks held in memory (none while spilled)."""
        return sum(map(len, self.chunks))


def pack(snap: Snapshot, pace: Callable[[], None] = no_pacing) -> PackedSnapshot:
    """`snap` as bytes (no I/O; meant for a thread: the GIL is free between two chunks).
    `pace` is called after each chunk (store/pacing.py)."""
    chunks = []
    for chunk in pickled_messages(snap):
        chunks.append(chunk)
        pace()
    return PackedSnapshot(chunks, snap.resent, snap.events, snap.apps())


def unpack(packed: PackedSnapshot) -> Snapshot:
    """The snapshot `pack` was given (a new one, equal entry for entry)."""
    if packed.spilled is not None:
        raise ValueError("a spilled part is read back (spill.restored) before it is unpacked")
    snap = Snapshot()
    for chunk in packed.chunks:
        name, entries = pickle.loads(chunk)
        add_to_part(snap, name, entries)
    snap.resent = packed.resent
    snap.events = packed.events
    return snap
