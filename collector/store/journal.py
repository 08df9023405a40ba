"""The append-only local journal: an acknowledged hit survives a crash or a Redis outage.

Every accepted event is written here — one write(2) per request, before the answer —
as one JSON line holding exactly what the aggregator was given (hashed visitor keys,
never an IP or User-Agent). The journal is a series of segments; a segment holds the
events of exactly one flush batch and is named after that batch's writer id and
sequence number. A segment is deleted once Redis has applied its batch. On start, the
segments still present are replayed as batches with their original writer and
sequence, so a batch Redis had in fact applied is skipped by its sequence marker.

fsync policy (`journal_fsync`): `everysec` (default, like Redis' appendfsync) syncs the
open segment once a second from a thread, so an OS crash loses at most about a second
of acknowledged hits and a process crash loses none; `always` syncs before every
answer; `no` leaves it to the OS.
"""

from __future__ import annotations

import fcntl
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import orjson

from collector.store.aggregate import Aggregator
from collector.features.deep import DeepFacts
from collector.enrich.device import Device
from collector.enrich.geo import Region

log = logging.getLogger(__name__)

FSYNC_POLICIES = ("everysec", "always", "no")
SUFFIX = ".jnl"


class JournalLocked(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class Segment:
    path: Path
    writer: str
    seq: int

    @classmethod
    def parse(cls, path: Path) -> "Segment | None":
        writer, _, seq = path.stem.rpartition("-")
        return cls(path, writer, int(seq)) if writer and seq.isdigit() else None


# ---- records --------------------------------------------------------------------------


def encode_count(app, minute, etype, device: Device, region: Region, visitor: bytes, month_visitor: bytes,
                 page, page_code, referrer, visit_flag, engaged_ms, scroll, first_party_id,
                 deep: DeepFacts | None = None) -> bytes:
    return orjson.dumps([
        app, minute, etype, device.device_class, device.browser, device.os,
        region.country, region.province, region.city, region.country_name, region.province_name, region.city_name,
        visitor.hex(), month_visitor.hex(), page, page_code, referrer, visit_flag, engaged_ms, scroll, first_party_id,
        deep.as_json() if deep else None,
    ]) + b"\n"


def encode_reject(app: str, minute: int, reason: str) -> bytes:
    return orjson.dumps([app, minute, reason]) + b"\n"


def replay(path: Path, aggregator: Aggregator) -> int:
    """Count every record of a segment into `aggregator`; returns the number of records.

    A crash can leave the last line half written: it was never acknowledged, so it is
    skipped. Device and Region objects are interned so a large segment stays compact.
    """
    devices: dict[tuple, Device] = {}
    regions: dict[tuple, Region] = {}
    count = 0
    for line in _lines(path):
        try:
            rec = orjson.loads(line)
        except orjson.JSONDecodeError:
            log.warning("journal %s: skipping a torn record", path.name)
            continue
        if len(rec) == 3:
            aggregator.reject(*rec)
        else:
            dkey, rkey = tuple(rec[3:6]), tuple(rec[6:12])
            device = devices.get(dkey) or devices.setdefault(dkey, Device(*dkey))
            region = regions.get(rkey) or regions.setdefault(rkey, Region(*rkey))
            aggregator.count(
                rec[0], rec[1], rec[2], device, region, bytes.fromhex(rec[12]), bytes.fromhex(rec[13]),
                page=rec[14], page_code=rec[15], referrer=rec[16], visit_flag=rec[17],
                engaged_ms=rec[18], scroll=rec[19], first_party_id=rec[20],
                deep=DeepFacts.from_json(rec[21]) if rec[21] else None,
            )
        count += 1
    return count


def _lines(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        for line in f:
            if line.endswith(b"\n"):
                yield line


# ---- the journal ----------------------------------------------------------------------


class Journal:
    def __init__(self, directory: Path, fsync: str = "everysec", max_bytes: int = 1 << 30) -> None:
        if fsync not in FSYNC_POLICIES:
            raise ValueError(f"journal fsync policy must be one of {FSYNC_POLICIES}")
        self.dir = directory
        self.fsync_policy = fsync
        self.max_bytes = max_bytes
        self.bytes = 0  # on disk, all segments
        self._fd: int | None = None
        self._active: Segment | None = None
        self._active_bytes = 0
        self._lock_fd: int | None = None
        self._dirty = False

    def open(self) -> list[Segment]:
        """Lock the directory for this process and list the segments left by earlier runs."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(self.dir / "lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise JournalLocked(f"another collector process is using the journal in {self.dir}") from None
        leftovers = []
        for path in self.dir.glob("*" + SUFFIX):
            segment = Segment.parse(path)
            if segment is None:
                continue
            size = path.stat().st_size
            if size == 0:
                path.unlink()
                continue
            self.bytes += size
            leftovers.append(segment)
        return sorted(leftovers, key=lambda s: (s.writer, s.seq))

    def begin(self, writer: str, seq: int) -> None:
        """Open the segment that will hold the events of batch (writer, seq)."""
        self._active = Segment(self.dir / f"{writer}-{seq:012d}{SUFFIX}", writer, seq)
        self._fd = os.open(self._active.path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
        self._active_bytes = 0

    def append(self, data: bytes) -> None:
        """Write before acknowledging. Raises OSError (disk full...) for a 503."""
        os.write(self._fd, data)
        self._active_bytes += len(data)
        self.bytes += len(data)
        if self.fsync_policy == "always":
            os.fsync(self._fd)
        else:
            self._dirty = True

    @property
    def full(self) -> bool:
        return self.bytes >= self.max_bytes

    def seal(self, next_writer: str, next_seq: int) -> Segment | None:
        """Close the active segment and begin the next one. None when it held nothing."""
        sealed, fd = self._active, self._fd
        os.close(fd)
        self._dirty = False
        if self._active_bytes == 0:
            sealed.path.unlink(missing_ok=True)
            sealed = None
        self.begin(next_writer, next_seq)
        return sealed

    def discard(self, segment: Segment) -> None:
        """Redis has the batch: its segment is no longer needed."""
        try:
            size = segment.path.stat().st_size
            segment.path.unlink()
            self.bytes -= size
        except FileNotFoundError:
            pass

    def sync(self) -> None:
        """fsync the open segment (everysec: called from a thread once a second)."""
        fd = self._fd
        if self._dirty and fd is not None:
            self._dirty = False
            try:
                os.fsync(fd)
            except OSError:
                # A concurrent seal closed it. The sealed segment's unsynced tail is in
                # the page cache: safe from a process crash, and within the ~1 s window
                # of an OS crash, like any unsynced data under everysec.
                pass

    def close(self) -> None:
        if self._fd is not None:
            os.fsync(self._fd)
            os.close(self._fd)
            if self._active_bytes == 0:
                self._active.path.unlink(missing_ok=True)
            self._fd = None
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None
