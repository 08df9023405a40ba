"""A hit's journal record as bytes (store/journal.py's version 3 format); compiled by mypyc.

journal.py cannot be compiled (its exceptions subclass builtins), and encoding a hit's
record there was interpreted Python on every accepted event: three calls and their
slices a GET hit (bench/RESULTS.md, session 12). The bytes are the same; journal.py
re-exports these names, the format is described there.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from collector.features.facts import DeepFacts
from collector.hit.record import Hit

RECORD_OPTIONS: Final = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_APPEND_NEWLINE


def encode_hit(hit: Hit) -> bytes:
    """A hit as a version 3 record: its fields' values in Hit's order (the header names
    them); a device or region as the list of its fields, a visitor key in hex, deep facts
    as DeepFacts.as_json."""
    return _record(hit, _shared_json(hit))


def encode_hits(hits: list[Hit]) -> list[bytes]:
    """encode_hit of each hit, the same bytes: the device, region and visitor keys that
    one request's hits share are turned into JSON values once, not once a hit (a POST
    of 50 events: bench/RESULTS.md, session 10)."""
    if len(hits) == 1:  # a GET: nothing to share
        return [encode_hit(hits[0])]
    records = []
    last: Hit | None = None
    shared_json: tuple[Any, ...] = ()
    for hit in hits:
        if last is None or not _shares_with(hit, last):
            shared_json = _shared_json(hit)
        last = hit
        records.append(_record(hit, shared_json))
    return records


def _shares_with(hit: Hit, other: Hit) -> bool:
    """`hit` holds `other`'s device, region and visitor keys (what _shared_json encodes,
    alike in a request's hits, encoded once for them): the very objects, as a
    request's hits do (equal ones only cost their JSON made again). Field by field, not a
    slice of each hit compared: a tuple a hit."""
    return (
        hit.visitor is other.visitor and hit.device is other.device and hit.region is other.region
        and hit.month_visitor is other.month_visitor
    )


def _shared_json(hit: Hit) -> tuple[Any, ...]:
    """The hit's device, region and visitor keys as JSON values. Made here, not by orjson's
    `default`: it would call back into Python once per such value, four times a hit
    (bench/RESULTS.md, session 8). The bytes written are the same."""
    return tuple(hit.device), tuple(hit.region), hit.visitor.hex(), hit.month_visitor.hex()


def _record(hit: Hit, shared_json: tuple[Any, ...]) -> bytes:
    """The record of `hit`, its device, region and visitor keys given as `shared_json`.

    One tuple of the record's values, made field by field (compiled: read by position),
    with the deep facts as their JSON: splicing slices made four tuples of up to 18 values
    a hit, and orjson called back into `_encode_value` for each deep event."""
    device, region, visitor, month_visitor = shared_json
    deep = hit.deep
    return orjson.dumps(
        (
            hit.app, hit.minute, hit.etype, device, region, visitor, month_visitor, hit.page, hit.page_code,
            hit.referrer, hit.visit_flag, hit.engaged_ms, hit.scroll, hit.first_party_id,
            deep.as_json() if deep is not None else None, hit.lang, hit.event_id, hit.resent,
        ),
        default=_encode_value, option=RECORD_OPTIONS,
    )


if Hit._fields != (
    "app", "minute", "etype", "device", "region", "visitor", "month_visitor", "page", "page_code", "referrer",
    "visit_flag", "engaged_ms", "scroll", "first_party_id", "deep", "lang", "event_id", "resent",
):
    raise TypeError("a hit record lists Hit's fields in Hit's order: _record spells them out")


def _encode_value(value: Any) -> Any:
    """What orjson does not write itself (str, int, None and plain tuples it does)."""
    if type(value) is DeepFacts:
        return value.as_json()
    raise TypeError(f"{type(value).__name__} in a hit record")
