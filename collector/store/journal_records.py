"""A hit's and a reject's journal record (version 3: store/journal.py's docstring), as
bytes: the JSON array of the hit's fields' values in Hit's order, a newline after it.

Apart from journal.py so that it is compiled (collector/native.py; journal.py is not:
its exceptions subclass builtins). Ingest encodes every accepted event here, 50 a POST
batch: as Python, the per-hit frames, the tuples spliced and orjson's `default` call
for the deep facts were ~3 % of a POST event's CPU in the hit loop (bench/RESULTS.md,
"Session 12: POST per event"). journal.py re-exports these names.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from collector.features.facts import DeepFacts
from collector.hit.record import Hit

_DEVICE_AT: Final = Hit._fields.index("device")
_SHARED_END: Final = _DEVICE_AT + 4  # device, region and the visitor keys: alike in a request's hits
_DEEP_AT: Final = Hit._fields.index("deep")
if Hit._fields[_DEVICE_AT:_SHARED_END] != ("device", "region", "visitor", "month_visitor"):
    raise TypeError("the journal expects a Hit's device, region and visitor keys side by side")
# Passthrough: a dataclass other than the deep facts (converted above) is an error, not a dict.
_RECORD_OPTIONS: Final = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_APPEND_NEWLINE

# Hits are typed as tuples of any values, not as Hit: compiled, a value typed as a
# NamedTuple (a fixed-length tuple) is unpacked into its fields and packed again.


def encode_hit(hit: Any) -> bytes:
    """A hit as a version 3 record: its fields' values in Hit's order (the header names
    them); a device or region as the list of its fields, a visitor key in hex, deep facts
    as DeepFacts.as_json."""
    return _record(hit, _shared_json(hit))


def encode_hits(hits: list[Any]) -> list[bytes]:
    """encode_hit of each hit, the same bytes: the device, region and visitor keys that
    one request's hits share are turned into JSON values once, not once a hit (a POST
    of 50 events: bench/RESULTS.md, session 10)."""
    records: list[bytes] = []
    shared: tuple[Any, ...] = ()
    shared_json: list[Any] = []
    for hit in hits:
        fields: tuple[Any, ...] = hit[_DEVICE_AT:_SHARED_END]
        if fields != shared:  # the same objects: compared by identity first
            shared = fields
            shared_json = _shared_json(hit)
        records.append(_record(hit, shared_json))
    return records


def _shared_json(hit: Any) -> list[Any]:
    """The hit's device, region and visitor keys as JSON values. Made here, not by orjson's
    `default`: it would call back into Python once per such value, four times a hit
    (bench/RESULTS.md, session 8). The bytes written are the same."""
    return [tuple(hit[_DEVICE_AT]), tuple(hit[_DEVICE_AT + 1]), hit[_DEVICE_AT + 2].hex(), hit[_DEVICE_AT + 3].hex()]


def _record(hit: Any, shared_json: list[Any]) -> bytes:
    """The record of `hit`, its device, region and visitor keys given as `shared_json`,
    its deep facts as their JSON value (so orjson needs no call back for them)."""
    values = list(hit)
    values[_DEVICE_AT:_SHARED_END] = shared_json
    deep = values[_DEEP_AT]
    if isinstance(deep, DeepFacts):
        values[_DEEP_AT] = deep.as_json()
    return orjson.dumps(values, option=_RECORD_OPTIONS)


def encode_reject(app: str, minute: int, reason: str) -> bytes:
    """A reject, in REJECT_FIELDS' order (the same record in every version)."""
    return orjson.dumps([app, minute, reason]) + b"\n"
