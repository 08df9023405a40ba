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

Format versions: a segment's first line says which format its records are in,
`{"eb_journal": 2}` (written with its first records, so a segment that never got any
stays empty and is dropped). A segment without that line was written before versions
existed: version 1, the same records. Replay decodes every record with the decoder of
its segment's version (DECODERS); a later format adds its decoder there, and segments
an older collector left behind at an upgrade are still read by theirs.

A record that cannot be decoded — an unknown format version, the wrong shape, a wrong
type, a value out of range, a line that is not JSON — is set aside in the quarantine
file (`quarantine.jsonl` next to the segments: one line per record with its segment's
name and the reason; it stops growing at QUARANTINE_MAX_BYTES), counted
(`records_quarantined` in /api/collector) and logged once per segment. It never stops
the rest of its batch, nor the batches behind it, from being flushed. A last line
without its newline is different: the process died writing it, it was never
acknowledged, and it is skipped silently.
"""

from __future__ import annotations

import fcntl
import functools
import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import orjson

from collector.store.aggregate import Aggregator
from collector.features.deep import DeepFacts
from collector.enrich.device import Device
from collector.enrich.geo import Region

log = logging.getLogger(__name__)

FSYNC_POLICIES = ("everysec", "always", "no")
SUFFIX = ".jnl"

FORMAT_VERSION = 2  # of the segments this code writes
HEADER_KEY = "eb_journal"
HEADER = orjson.dumps({HEADER_KEY: FORMAT_VERSION}) + b"\n"
MAX_HEADER_BYTES = 64  # any version's header line is shorter

QUARANTINE_FILE = "quarantine.jsonl"
# Beyond this the quarantine file stops growing (records set aside are still counted and
# logged): a journal full of bad records must not fill the disk a second time.
QUARANTINE_MAX_BYTES = 16 << 20


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


# ---- decoding -------------------------------------------------------------------------


class Undecodable(ValueError):
    """A record its decoder cannot read; the message is the reason kept in quarantine."""


# A decoded record: the Aggregator method that counts it, and that method's arguments.
Decoded = tuple[Callable[..., None], tuple]


class Interned:
    """Device and Region objects shared by every record that has them, so a large
    segment replays into a compact snapshot."""

    def __init__(self) -> None:
        self._devices: dict[tuple, Device] = {}
        self._regions: dict[tuple, Region] = {}

    def device(self, fields: tuple) -> Device:
        found = self._devices.get(fields)
        if found is None:
            found = self._devices[fields] = Device(*fields)
        return found

    def region(self, fields: tuple) -> Region:
        found = self._regions.get(fields)
        if found is None:
            found = self._regions[fields] = Region(*fields)
        return found


# Checks a decoder makes beyond the types: a value the flush cannot use would otherwise
# fail every retry of its batch. Epoch minutes a calendar can place (up to about the year
# 7700, well before datetime's 9999); integers far from overflowing a Redis counter.
MAX_MINUTE = 3_000_000_000
MAX_INT = 1 << 53


def _check_fields(values: list, types: tuple[type, ...], what: str) -> None:
    """Each value of exactly its type (a bool is no int here), integers in range."""
    # One comparison at C speed for a good record; the loop only names what is wrong.
    if tuple(map(type, values[: len(types)])) != types:
        for i, (value, expected) in enumerate(zip(values, types)):
            if type(value) is not expected:
                raise Undecodable(f"{what} {i} is {type(value).__name__}, not {expected.__name__}")
    for i in _int_positions(types):
        if not -MAX_INT <= values[i] <= MAX_INT:
            raise Undecodable(f"{what} {i} is out of range: {values[i]}")


@functools.cache
def _int_positions(types: tuple[type, ...]) -> tuple[int, ...]:
    return tuple(i for i, expected in enumerate(types) if expected is int)


def _check_rows(rows: Any, types: tuple[type, ...], what: str) -> None:
    if type(rows) is not list:
        raise Undecodable(f"{what} are {type(rows).__name__}, not a list")
    for row in rows:
        if type(row) is not list or len(row) != len(types):
            raise Undecodable(f"{what}: a row is not a list of {len(types)}")
        _check_fields(row, types, what + " field")


def _check_minute(minute: int) -> None:
    if not 0 <= minute <= MAX_MINUTE:
        raise Undecodable(f"minute {minute} is out of range")


def _visitor_key(text: str) -> bytes:
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise Undecodable("a visitor key is not hex") from None


# Version 1 (and 2): a reject is [app, minute, reason]; a count is the 22 fields of
# encode_count, its last one the deep facts or null.
V1_REJECT = (str, int, str)
V1_COUNT = (
    str, int, str,  # app, minute, event type
    str, str, str,  # device: class, browser, OS
    str, str, str, str, str, str,  # region: country, province, city codes, then their names
    str, str,  # visitor keys (hex) under the day's and the month's salt
    str, str, str,  # page, page code, referrer
    int, int, int,  # visit flag, engaged ms, scroll
    str,  # first-party visitor id
)  # then the deep facts


def decode_v1(rec: Any, interned: Interned) -> Decoded:
    if type(rec) is not list:
        raise Undecodable(f"a JSON {type(rec).__name__}, not a list")
    if len(rec) == len(V1_REJECT):
        _check_fields(rec, V1_REJECT, "field")
        _check_minute(rec[1])
        return Aggregator.reject, tuple(rec)
    if len(rec) != len(V1_COUNT) + 1:
        raise Undecodable(f"{len(rec)} fields: neither a reject ({len(V1_REJECT)}) nor a count ({len(V1_COUNT) + 1})")
    _check_fields(rec, V1_COUNT, "field")
    _check_minute(rec[1])
    return Aggregator.count, (
        rec[0], rec[1], rec[2], interned.device(tuple(rec[3:6])), interned.region(tuple(rec[6:12])),
        _visitor_key(rec[12]), _visitor_key(rec[13]), *rec[14:21], _deep_v1(rec[21]),
    )


def _deep_v1(value: Any) -> DeepFacts | None:
    """[increments, members, session or null] (DeepFacts.as_json), or null."""
    if value is None:
        return None
    if type(value) is not list or len(value) != 3:
        raise Undecodable("deep facts are not [increments, members, session]")
    incs, members, session = value
    _check_rows(incs, (str, str, int), "deep increments")
    _check_rows(members, (str, str, str), "deep members")
    if session is not None:
        if type(session) is not list or len(session) != 5:
            raise Undecodable("a media session is not [ms, ws, dur, started, targets]")
        _check_fields(session, (str, int, int, int), "session field")
        _check_rows(session[4], (str, str), "session targets")
    return DeepFacts.from_json(value)


# Format version -> the decoder of its records. A new format adds its decoder here and
# leaves the others alone: a journal an older collector left behind is still replayed.
DECODERS: dict[int, Callable[[Any, Interned], Decoded]] = {
    1: decode_v1,  # segments written before they had a header line
    2: decode_v1,  # the same records, behind the header line
}


def _declared_version(rec: Any) -> Any:
    """The version a segment's first line declares; None when that line is a record."""
    return rec.get(HEADER_KEY) if type(rec) is dict and HEADER_KEY in rec else None


def _decoder(version: Any) -> Callable[[Any, Interned], Decoded] | None:
    return DECODERS.get(version) if type(version) is int else None


# ---- replay ---------------------------------------------------------------------------


def replay(path: Path, aggregator: Aggregator, quarantine: "Quarantine | None" = None) -> int:
    """Count every record of a segment into `aggregator`; returns the number counted.

    Never raises for what the segment holds: a record that cannot be decoded goes to
    `quarantine` (without one, it is only counted and logged). A crash can leave the
    last line half written: it was never acknowledged, so it is skipped silently.
    """
    interned = Interned()
    version, decode = 1, DECODERS[1]
    counted = 0
    with (quarantine or Quarantine(None)).segment(path.name) as set_aside:
        for number, line in enumerate(_lines(path)):
            try:
                rec = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                set_aside(f"not JSON: {exc}", line)
                continue
            if number == 0 and (declared := _declared_version(rec)) is not None:
                version, decode = declared, _decoder(declared)
                continue
            if decode is None:
                set_aside(f"unknown journal format version {version!r}", line)
                continue
            try:
                count, args = decode(rec, interned)
            except Undecodable as exc:
                set_aside(str(exc), line)
                continue
            except Exception as exc:  # a decoder's surprise is this record's problem, not the flush's
                set_aside(f"{type(exc).__name__}: {exc}", line)
                continue
            count(aggregator, *args)
            counted += 1
    return counted


def _holds_no_records(path: Path, size: int) -> bool:
    """Empty, or only a header line (any version's)."""
    if size > MAX_HEADER_BYTES:
        return False
    if size == 0:
        return True
    content = path.read_bytes()
    try:
        return content.count(b"\n") == 1 and content.endswith(b"\n") and _declared_version(orjson.loads(content)) is not None
    except orjson.JSONDecodeError:
        return False


def _lines(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        for line in f:
            if line.endswith(b"\n"):
                yield line


# ---- quarantine -----------------------------------------------------------------------


class Quarantine:
    """Where replay sets aside the records it cannot decode, for a person to look at: one
    JSON line each, {"segment", "reason", "record"}. Bounded: past `max_bytes` the file
    stops growing, and records set aside are only counted and logged. (A segment that a
    second crash leaves unflushed is replayed again at the next start, and its bad
    records are set aside again: the file may hold a record twice.)"""

    def __init__(self, path: Path | None, max_bytes: int = QUARANTINE_MAX_BYTES) -> None:
        self.path = path  # None: count and log only
        self.max_bytes = max_bytes
        self.records = 0  # set aside since start, whether the file took them or not
        self._full_logged = False

    @contextmanager
    def segment(self, name: str) -> Iterator[Callable[[str, bytes], None]]:
        """A function that sets aside one record of segment `name` with its reason; on
        exit, one log line for the segment if it had any."""
        found = 0
        file = None

        def set_aside(reason: str, line: bytes) -> None:
            nonlocal found, file
            found += 1
            self.records += 1
            if self.path is None:
                return
            if file is None:
                file = open(self.path, "ab")  # positioned at its end: tell() is its size
            entry = orjson.dumps({
                "segment": name, "reason": reason, "record": line.rstrip(b"\n").decode("utf-8", "backslashreplace"),
            }) + b"\n"
            if file.tell() + len(entry) <= self.max_bytes:
                file.write(entry)
            elif not self._full_logged:
                self._full_logged = True
                log.error("journal quarantine %s is full (%d bytes): further undecodable records are only counted",
                          self.path, self.max_bytes)

        try:
            yield set_aside
        finally:
            if file is not None:
                file.close()
            if found:
                log.error("journal %s: %d records could not be decoded and were not counted; set aside in %s",
                          name, found, self.path or "(no quarantine file)")


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
        self.quarantine = Quarantine(directory / QUARANTINE_FILE)

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
            if _holds_no_records(path, size):
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
        if self._active_bytes == 0:
            # The header goes with the first records, in the same write: a segment that
            # gets no records stays empty, and seal or the next start drops it.
            data = HEADER + data
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
