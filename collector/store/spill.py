"""A queued batch's packed parts kept in a file beside its journal segment, not in the heap.

During a POST-50 load the flush falls behind the intake, and the batches sealed behind
the one being applied wait for their turn some seconds, packed (packed_snapshot.py,
~30 bytes an entry): a million events' worth held ~65 MB of the worker's RSS (issue 17,
"peak RSS during POST runs"; bench/RESULTS.md, session 27). Written to a spill file
instead, their bytes are in the page cache, not in the process, and reading them back
when the batch is due costs a read and a CRC — against ~23 µs an event to rebuild the
batch from its journal segment, the other way to keep it out of memory.

The journal segment stays the batch's source of truth until Redis has the batch: a spill
file is only a faster way back. Its bytes count in the journal's (Journal.spilled), so the
journal's bound and its 503 cover them; it is removed with its segment
(journal.remove_segment), and spill files left by a crash are deleted at start
(Journal.open), their segments replayed as ever. A part whose bytes cannot be read back
whole and unchanged (short, corrupt, unreadable: SpillLost) makes the flusher rebuild
the batch from its segment instead.
"""

from __future__ import annotations

import logging
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

from collector.store.aggregate import Snapshot
from collector.store.packed_snapshot import PackedSnapshot, Spilled

log = logging.getLogger(__name__)


class SpillLost(Exception):
    """A spilled part could not be read back as written."""


@dataclass(frozen=True, slots=True)
class SpillFile:
    path: Path
    bytes: int  # on disk, counted in the journal's bytes


class SpillWriter:
    """Writes packed parts to one file as they are made, each one's chunks replaced by
    where they went. A write that fails (a full disk) leaves that part and the later ones
    in memory as they were: the parts already written stay readable."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._offset = 0
        self._broken = False

    def keep(self, part: PackedSnapshot) -> PackedSnapshot:
        """`part` with its chunks on disk, or as it is if they could not be written."""
        if self._broken or not part.chunks:
            return part
        try:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
            _write_all(self._fd, part.chunks)
        except OSError as exc:
            self._broken = True
            log.warning("flush spill %s: %s; the batch's later parts wait in memory", self.path.name, exc)
            return part
        lengths = tuple(map(len, part.chunks))
        crc = 0
        for chunk in part.chunks:
            crc = zlib.crc32(chunk, crc)
        spilled = Spilled(self._offset, lengths, crc)
        self._offset += sum(lengths)
        return PackedSnapshot([], part.resent, part.events, part.apps, spilled)

    def close(self) -> SpillFile | None:
        """The file written (None: nothing was). No fsync: after a crash it is not read."""
        if self._fd is None:
            return None
        try:
            size = os.fstat(self._fd).st_size
        finally:
            os.close(self._fd)
            self._fd = None
        return SpillFile(self.path, size)


# writev(2) takes at most IOV_MAX buffers a call (1,024 on Linux).
_IOV_MAX = 1024


def _write_all(fd: int, chunks: list[bytes]) -> None:
    for start in range(0, len(chunks), _IOV_MAX):
        group = chunks[start : start + _IOV_MAX]
        written = os.writev(fd, group)
        if written < sum(map(len, group)):  # a short write (rare on a local file): the rest in a loop
            rest = b"".join(group)[written:]
            while rest:
                rest = rest[os.write(fd, rest) :]


def restored(parts: list[Snapshot | PackedSnapshot], path: Path) -> list[Snapshot | PackedSnapshot]:
    """`parts` with each spilled part's chunks read back from `path` (the others as they
    are). Raises SpillLost when one cannot be read whole and unchanged."""
    if not any(isinstance(part, PackedSnapshot) and part.spilled is not None for part in parts):
        return parts
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise SpillLost(f"{path.name}: {exc}") from None
    try:
        return [_read_back(fd, part, path) if isinstance(part, PackedSnapshot) else part for part in parts]
    finally:
        os.close(fd)


def _read_back(fd: int, part: PackedSnapshot, path: Path) -> PackedSnapshot:
    spilled = part.spilled
    if spilled is None:
        return part
    size = sum(spilled.lengths)
    try:
        data = os.pread(fd, size, spilled.offset)
    except OSError as exc:
        raise SpillLost(f"{path.name}: {exc}") from None
    if len(data) != size:
        raise SpillLost(f"{path.name}: {len(data)} bytes at {spilled.offset}, {size} written")
    if zlib.crc32(data) != spilled.crc:
        raise SpillLost(f"{path.name}: the bytes at {spilled.offset} changed")
    chunks = []
    start = 0
    view = memoryview(data)
    for length in spilled.lengths:
        chunks.append(bytes(view[start : start + length]))
        start += length
    return PackedSnapshot(chunks, part.resent, part.events, part.apps)
