"""The append-only local journal: an acknowledged hit survives a crash or a Redis outage.

Every accepted event is written here — one write(2) per request (under load, one for a
round of reads' requests: hit/ingest.py `write_held`), before the answer —
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
`{"eb_journal": 4, ...}` (written with its first records, so a segment that never got
any stays empty and is dropped). A segment without that line was written before
versions existed: version 1. Version 2 has the same positional records behind a header.
Version 3 is self-describing: its header names the fields of a hit (hit/record.py Hit,
in order), of a device, of a region and of a reject, and each record is a JSON array of
those fields' values — a hit written from the record by name, so adding a field to Hit
changes the header, not this module. Version 4 (this code's, store/records.py) is
version 3 with a line per request rather than per hit: its header's "request" names the
fields a line holds once for all its hits (app, device, region, visitor keys,
first-party id), "hit" the fields of each hit's row, and a line is the request fields'
values followed by the list of its hits' rows. A line is decoded whole or set aside
whole, so a request's hits replay all or none; a reject is the same 3-value line in
every version. In either, a hit field the header lacks takes Hit's default; one this
code does not know makes the segment's records undecodable (quarantined, not
miscounted). Replay decodes every record with the
decoder its segment's header asks for (DECODERS); a later format adds its decoder
there, and segments an older collector left behind at an upgrade are still read by theirs.

A record (a line) that cannot be decoded — an unknown format version, the wrong shape, a wrong
type, a value out of range, a line that is not JSON — is set aside in the quarantine
file (`quarantine.jsonl` next to the segments: one line per record with its segment's
name and the reason; it stops growing at QUARANTINE_MAX_BYTES), counted
(`records_quarantined` in /api/collector) and logged once per segment. It never stops
the rest of its batch, nor the batches behind it, from being flushed. A last line
without its newline is different: the process died writing it, it was never
acknowledged, and it is skipped silently. Every line stands alone (version 4 has no line
that later lines refer to), so a torn write leaves whole lines that replay as written,
and one partial last line that does not.
"""

from __future__ import annotations

import fcntl
import functools
import logging
import os
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from collector.enrich.device import Device
from collector.enrich.geo import Region
from collector.features.deep import DeepFacts
from collector.hit.record import Hit
from collector.store.aggregate import Aggregator
from collector.store.records import REJECT_FIELDS, REQUEST_FIELDS, ROW_FIELDS
from collector.store.records import encode_hit as encode_hit  # re-exported: a hit's record is made there
from collector.store.records import encode_hits as encode_hits
from collector.store.records import encode_reject as encode_reject

log = logging.getLogger(__name__)

FSYNC_POLICIES = ("everysec", "always", "no")
SUFFIX = ".jnl"
# A queued batch's packed parts, beside its segment (store/spill.py): removed with it, and
# any left by a crash deleted at start — the segment is what is replayed.
SPILL_SUFFIX = ".spill"

FORMAT_VERSION = 4  # of the segments this code writes
HEADER_KEY = "eb_journal"
DEVICE_FIELDS = Device._fields
REGION_FIELDS = Region._fields
HEADER = orjson.dumps({
    HEADER_KEY: FORMAT_VERSION, "request": REQUEST_FIELDS, "hit": ROW_FIELDS, "device": DEVICE_FIELDS,
    "region": REGION_FIELDS, "reject": REJECT_FIELDS,
}) + b"\n"
MAX_HEADER_BYTES = 4096  # any version's header line is shorter

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

    @property
    def spill_path(self) -> Path:
        """Where its batch's packed parts may wait (store/spill.py)."""
        return self.path.with_suffix(SPILL_SUFFIX)

    @classmethod
    def parse(cls, path: Path) -> Segment | None:
        writer, _, seq = path.stem.rpartition("-")
        return cls(path, writer, int(seq)) if writer and seq.isdigit() else None


# ---- decoding -------------------------------------------------------------------------


class Undecodable(ValueError):
    """A record its decoder cannot read; the message is the reason kept in quarantine."""


# A decoded record: the Aggregator method that counts it, and that method's arguments; a
# record (a line) decodes to a list of them (version 4: a request's hits).
Decoded = tuple[Callable[..., None], tuple[Any, ...]]
Decoder = Callable[[Any, "Interned"], list[Decoded]]


class Interned:
    """Device and Region objects shared by every record that has them, so a large
    segment replays into a compact snapshot."""

    def __init__(self) -> None:
        # keyed by the record's field values (JSON values whose types were checked)
        self._devices: dict[tuple[Any, ...], Device] = {}
        self._regions: dict[tuple[Any, ...], Region] = {}

    def device(self, fields: tuple[Any, ...]) -> Device:
        found = self._devices.get(fields)
        if found is None:
            found = self._devices[fields] = Device(*fields)
        return found

    def region(self, fields: tuple[Any, ...]) -> Region:
        found = self._regions.get(fields)
        if found is None:
            found = self._regions[fields] = Region(*fields)
        return found


# Checks a decoder makes beyond the types: a value the flush cannot use would otherwise
# fail every retry of its batch. Epoch minutes a calendar can place (up to about the year
# 7700, well before datetime's 9999); integers far from overflowing a Redis counter.
MAX_MINUTE = 3_000_000_000
MAX_INT = 1 << 53


def _check_fields(values: list[Any], types: tuple[type, ...], what: str) -> None:
    """Each value of exactly its type (a bool is no int here), integers in range."""
    # One comparison at C speed for a good record; the loop only names what is wrong.
    if tuple(map(type, values[: len(types)])) != types:
        # strict=False: like the comparison above, only the first len(types) values are checked
        for i, (value, expected) in enumerate(zip(values, types, strict=False)):
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


# Version 1 (and 2): a reject is [app, minute, reason]; a count is the 22 fields that
# encode_count wrote before hits had a record, its last one the deep facts or null.
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


def decode_reject(rec: list[Any]) -> Decoded:
    """A reject, in every version: [app, minute, reason]."""
    _check_fields(rec, V1_REJECT, "field")
    _check_minute(rec[1])
    return Aggregator.reject, tuple(rec)


def decode_v1(rec: Any, interned: Interned) -> Decoded:
    if type(rec) is not list:
        raise Undecodable(f"a JSON {type(rec).__name__}, not a list")
    if len(rec) == len(V1_REJECT):
        return decode_reject(rec)
    if len(rec) != len(V1_COUNT) + 1:
        raise Undecodable(f"{len(rec)} fields: neither a reject ({len(V1_REJECT)}) nor a count ({len(V1_COUNT) + 1})")
    _check_fields(rec, V1_COUNT, "field")
    _check_minute(rec[1])
    return Aggregator.count, (Hit(
        app=rec[0], minute=rec[1], etype=rec[2], device=interned.device(tuple(rec[3:6])),
        region=interned.region(tuple(rec[6:12])), visitor=_visitor_key(rec[12]), month_visitor=_visitor_key(rec[13]),
        page=rec[14], page_code=rec[15], referrer=rec[16], visit_flag=rec[17], engaged_ms=rec[18], scroll=rec[19],
        first_party_id=rec[20], deep=_deep_v1(rec[21]),
    ),)


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


# ---- version 3: named fields --------------------------------------------------------

# How a hit field of each type is read back (what encode_hit wrote for it); str and int
# fields are only type-checked. Keyed by Hit's annotations, so a new field of a known
# type needs nothing here.
HIT_TYPES: dict[str, Any] = typing.get_type_hints(Hit)
PLAIN_TYPES = (str, int)


def _device(value: Any, interned: Interned) -> Device:
    return interned.device(_values_of(value, (str,) * len(DEVICE_FIELDS), "device"))


def _region(value: Any, interned: Interned) -> Region:
    return interned.region(_values_of(value, (str,) * len(REGION_FIELDS), "region"))


def _hex_key(value: Any, interned: Interned) -> bytes:
    if type(value) is not str:
        raise Undecodable(f"a visitor key is {type(value).__name__}, not str")
    return _visitor_key(value)


def _values_of(value: Any, types: tuple[type, ...], what: str) -> tuple[Any, ...]:
    if type(value) is not list or len(value) != len(types):
        raise Undecodable(f"a {what} is not a list of {len(types)}")
    _check_fields(value, types, what + " field")
    return tuple(value)


READ_BY_TYPE: dict[Any, Callable[[Any, Interned], Any]] = {
    Device: _device,
    Region: _region,
    bytes: _hex_key,
    DeepFacts | None: lambda value, interned: _deep_v1(value),
}

# A Hit field of a type neither written nor read here would fail every hit's journal
# write, or every replay: fail at import instead.
_UNREADABLE = [name for name, kind in HIT_TYPES.items() if kind not in PLAIN_TYPES and kind not in READ_BY_TYPE]
if _UNREADABLE:
    raise TypeError(f"Hit fields the journal cannot write or read: {_UNREADABLE}")


def _check_header(header: dict[str, Any] | None, version: int) -> dict[str, Any]:
    """The header of a named format (version 3 on): its device, region and reject fields
    must be this code's."""
    if header is None:  # unreachable: only a header line declares version 3 or later
        raise Undecodable(f"a version {version} segment without its header")
    for part, fields in (("device", DEVICE_FIELDS), ("region", REGION_FIELDS), ("reject", REJECT_FIELDS)):
        if header.get(part) != list(fields):
            raise Undecodable(f"the header's {part} fields are {header.get(part)!r}, not {list(fields)}")
    return header


def _field_names(names: Any, what: str) -> list[str]:
    """A header's list of hit field names, each one this code knows."""
    if type(names) is not list or not names or any(type(name) is not str for name in names):
        raise Undecodable(f"the header names no {what} fields")
    unknown = [name for name in names if name not in HIT_TYPES]
    if unknown:
        raise Undecodable(f"hit fields this collector does not know: {unknown}")
    return names


def _check_all_named(names: list[str]) -> None:
    """Every Hit field without a default named, none twice."""
    missing = [name for name in Hit._fields if name not in names and name not in Hit._field_defaults]
    if missing or len(set(names)) != len(names):
        raise Undecodable(f"the header's hit fields lack {missing} or repeat one")


def _fields_reader(names: list[str]) -> Callable[[list[Any], Interned], dict[str, Any]]:
    """Reads a list of the values of hit fields `names` (its length checked by the caller)
    into {name: value}: str and int values type-checked, the others read by their type."""
    plain = tuple(i for i, name in enumerate(names) if HIT_TYPES[name] in PLAIN_TYPES)
    plain_types = tuple(HIT_TYPES[names[i]] for i in plain)
    readers = tuple((name, READ_BY_TYPE[HIT_TYPES[name]]) for name in names if HIT_TYPES[name] not in PLAIN_TYPES)

    def read(values: list[Any], interned: Interned) -> dict[str, Any]:
        if plain:
            _check_fields([values[i] for i in plain], plain_types, "field")
        fields = dict(zip(names, values, strict=True))
        for name, reader in readers:
            fields[name] = reader(fields[name], interned)
        return fields

    return read


def _hit(fields: dict[str, Any]) -> Decoded:
    _check_minute(fields["minute"])  # named in every header: it has no default
    return Aggregator.count, (Hit(**fields),)


def _is_reject(rec: Any) -> bool:
    """A named format's record is a list: a reject by its length, else a hit or request."""
    if type(rec) is not list:
        raise Undecodable(f"a JSON {type(rec).__name__}, not a list")
    return len(rec) == len(REJECT_FIELDS)


def decoder_v3(header: dict[str, Any] | None) -> Decoder:
    """The decoder of a version 3 segment, whose header names the fields of its records."""
    names = _field_names(_check_header(header, 3).get("hit"), "hit")
    _check_all_named(names)
    read = _fields_reader(names)
    width = len(names)

    def decode_v3(rec: Any, interned: Interned) -> list[Decoded]:
        if _is_reject(rec):
            return [decode_reject(rec)]
        if len(rec) != width:
            raise Undecodable(f"{len(rec)} fields: neither a reject ({len(REJECT_FIELDS)}) nor a hit ({width})")
        return [_hit(read(rec, interned))]

    return decode_v3


def decoder_v4(header: dict[str, Any] | None) -> Decoder:
    """The decoder of a version 4 segment: a line is a request's shared values (the
    header's "request" fields) then the rows of its hits ("hit" fields), or a reject."""
    header = _check_header(header, 4)
    shared_names = _field_names(header.get("request"), "request")
    row_names = _field_names(header.get("hit"), "hit")
    _check_all_named(shared_names + row_names)
    read_shared, read_row = _fields_reader(shared_names), _fields_reader(row_names)
    width, row_width = len(shared_names) + 1, len(row_names)
    if width == len(REJECT_FIELDS):
        raise Undecodable(f"a request line of {width} values would read as a reject")

    def decode_v4(rec: Any, interned: Interned) -> list[Decoded]:
        if _is_reject(rec):
            return [decode_reject(rec)]
        if len(rec) != width:
            raise Undecodable(f"{len(rec)} values: neither a reject ({len(REJECT_FIELDS)}) nor a request ({width})")
        rows = rec[-1]
        if type(rows) is not list or not rows:
            raise Undecodable("a request line without its list of hits")
        shared = read_shared(rec[:-1], interned)
        hits = []
        for row in rows:
            if type(row) is not list or len(row) != row_width:
                raise Undecodable(f"a hit row is not a list of {row_width}")
            hits.append(_hit(shared | read_row(row, interned)))
        return hits

    return decode_v4


# Format version -> the decoder of its records, made from the segment's header (None for
# version 1, which has none). A new format adds its decoder here and leaves the others
# alone: a journal an older collector left behind is still replayed.
DECODERS: dict[int, Callable[[dict[str, Any] | None], Decoder]] = {
    1: lambda header: _listed(decode_v1),  # segments written before they had a header line
    2: lambda header: _listed(decode_v1),  # the same records, behind the header line
    3: decoder_v3,  # named fields, a line a hit (main up to session 20)
    4: decoder_v4,  # named fields, a line a request (this code's)
}


def _listed(decode: Callable[[Any, Interned], Decoded]) -> Decoder:
    return lambda rec, interned: [decode(rec, interned)]


def _declared_version(rec: Any) -> Any:
    """The version a segment's first line declares; None when that line is a record."""
    return rec.get(HEADER_KEY) if type(rec) is dict and HEADER_KEY in rec else None


def _decoder(version: Any, header: dict[str, Any] | None) -> Decoder:
    """The decoder a segment's header asks for; raises Undecodable when there is none."""
    make = DECODERS.get(version) if type(version) is int else None
    if make is None:
        raise Undecodable(f"unknown journal format version {version!r}")
    return make(header)


# ---- replay ---------------------------------------------------------------------------


def replay(path: Path, aggregator: Aggregator, quarantine: Quarantine | None = None) -> int:
    """Count every record of a segment into `aggregator`; returns the number counted
    (hits and rejects: a version 4 line holds a request's hits).

    Never raises for what the segment holds: a record that cannot be decoded goes to
    `quarantine` (without one, it is only counted and logged). A crash can leave the
    last line half written: it was never acknowledged, so it is skipped silently.
    """
    interned = Interned()
    decode: Decoder | None = DECODERS[1](None)
    unknown = ""  # why a segment's records cannot be read, when its header says so
    counted = 0
    with (quarantine or Quarantine(None)).segment(path.name) as set_aside:
        for number, line in enumerate(_lines(path)):
            try:
                rec = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                set_aside(f"not JSON: {exc}", line)
                continue
            if number == 0 and (declared := _declared_version(rec)) is not None:
                try:
                    decode = _decoder(declared, rec)
                except Undecodable as exc:
                    decode, unknown = None, str(exc)
                continue
            if decode is None:
                set_aside(unknown, line)
                continue
            try:
                decoded = decode(rec, interned)
            except Undecodable as exc:
                set_aside(str(exc), line)
                continue
            except Exception as exc:  # a decoder's surprise is this record's problem, not the flush's
                set_aside(f"{type(exc).__name__}: {exc}", line)
                continue
            for count, args in decoded:  # a line is decoded whole before any of it is counted
                count(aggregator, *args)
            counted += len(decoded)
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


def remove_segment(segment: Segment) -> int:
    """Delete a segment's file, and its batch's spill file if any; the segment's bytes (0:
    it was gone already). A spill file's bytes are counted out by whoever counted them in
    (Journal.spilled): what was written, whatever became of the file since.

    Touches no Journal state, so a thread may run it: on ext4, unlinking a segment of some
    megabytes frees its blocks in the caller's time, 1 to 3 ms once a flush that the hit
    loop would otherwise stall for (issue 17, bench/RESULTS.md session 8).
    """
    _removed_spill(segment.spill_path)
    return _removed(segment.path)


def _removed(path: Path) -> int:
    try:
        size = path.stat().st_size
        path.unlink()
    except FileNotFoundError:
        return 0
    return size


def _removed_spill(path: Path) -> int:
    """A spill file is never needed once its batch is in Redis, nor read by another run:
    one that cannot be removed is only logged."""
    try:
        return _removed(path)
    except OSError as exc:
        log.warning("journal: cannot remove %s: %s", path.name, exc)
        return 0


class Journal:
    def __init__(self, directory: Path, fsync: str = "everysec", max_bytes: int = 1 << 30) -> None:
        if fsync not in FSYNC_POLICIES:
            raise ValueError(f"journal fsync policy must be one of {FSYNC_POLICIES}")
        self.dir = directory
        self.fsync_policy = fsync
        self.max_bytes = max_bytes
        self.bytes = 0  # on disk, all segments and spill files
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
        for path in self.dir.glob("*" + SPILL_SUFFIX):  # a crash's: their segments are replayed
            _removed_spill(path)
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
        fd = self._open_fd()
        os.write(fd, data)
        self._active_bytes += len(data)
        self.bytes += len(data)
        if self.fsync_policy == "always":
            os.fsync(fd)
        else:
            self._dirty = True

    def _open_fd(self) -> int:
        """The active segment's descriptor; only begin() (start's caller) makes one."""
        if self._fd is None:
            raise RuntimeError("the journal has no open segment: begin() was not called")
        return self._fd

    def _open_segment(self) -> Segment:
        if self._active is None:
            raise RuntimeError("the journal has no open segment: begin() was not called")
        return self._active

    @property
    def full(self) -> bool:
        return self.bytes >= self.max_bytes

    def seal(self, next_writer: str, next_seq: int) -> Segment | None:
        """Close the active segment and begin the next one. None when it held nothing."""
        sealed = self._open_segment()
        os.close(self._open_fd())
        self._dirty = False
        empty = self._active_bytes == 0
        if empty:
            sealed.path.unlink(missing_ok=True)
        self.begin(next_writer, next_seq)
        return None if empty else sealed

    def discard(self, segment: Segment) -> None:
        """Redis has the batch: its segment is no longer needed."""
        self.discarded(remove_segment(segment))

    def spilled(self, size: int) -> None:
        """Count in `size` bytes a batch's spill file took (store/spill.py): the journal's
        bound covers them until its segment is removed (the flusher counts them out then)."""
        self.bytes += size

    def discarded(self, size: int) -> None:
        """Count out `size` bytes that remove_segment took off the disk (the flusher
        removes segments in a thread; the count is kept by the loop that appends)."""
        self.bytes -= size

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
                self._open_segment().path.unlink(missing_ok=True)
            self._fd = None
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None
