"""A request's hits as journal lines (store/journal.py's version 4 format); compiled by mypyc.

journal.py cannot be compiled (its exceptions subclass builtins), and encoding a hit's
record there was interpreted Python on every accepted event: three calls and their
slices a GET hit (bench/RESULTS.md, session 12). journal.py re-exports these names, the
format is described there.

One line a request, not one a hit (bench/RESULTS.md, session 20): the values a request's
hits share (REQUEST_FIELDS: its app, device, region, visitor keys in hex and first-party
id) are written once, followed by a row of each hit's own values (ROW_FIELDS), in one
orjson call. Version 3 wrote the shared values again in each hit's record, one call a
hit: of a POST-50 event's ~6,100 instructions of serialising, ~2,400 went to that.

The lines are written by store/_lines.c when it is built (its Encoder reads each hit's
fields by position and writes them into one buffer a line: no row tuples, no deep facts'
as_json lists, no orjson walk; bench/RESULTS.md, session 21). The Python below is the
reference it must match byte for byte (tests/test_lines_differential.py), and what writes
the lines it leaves alone (a value of a type it does not take, an int past 64 bits, a
surrogate) or all of them when it is not built.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import orjson

from collector.features.facts import DeepFacts, Session
from collector.hit.record import Hit
from collector.native import c_module

RECORD_OPTIONS: Final = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_APPEND_NEWLINE

# The fields a line holds once for its hits, then those each hit's row holds: all of
# Hit's, each once (checked below). _line and _row spell them out in these orders.
REQUEST_FIELDS: Final = ("app", "device", "region", "visitor", "month_visitor", "first_party_id")
ROW_FIELDS: Final = (
    "minute", "etype", "page", "page_code", "referrer", "visit_flag", "engaged_ms", "scroll", "deep", "lang",
    "event_id", "resent",
)
REJECT_FIELDS: Final = ("app", "minute", "reason")


def encode_hit(hit: Hit) -> bytes:
    """A hit alone as a version 4 line (a request of one hit: a GET)."""
    return encode_hits([hit])[0]


def encode_hits(hits: list[Hit]) -> list[bytes]:
    """The lines of a request's hits, in order: one for each run of hits that share the
    REQUEST_FIELDS' values (a request's hits all do; a run ends where a hit does not)."""
    if _C_LINES is not None:
        lines = _C_LINES(hits)
        if lines is not None:
            return lines
    return python_lines(hits)


def python_lines(hits: list[Hit]) -> list[bytes]:
    """encode_hits in Python, with orjson: the reference store/_lines.c matches."""
    if len(hits) == 1:  # a GET: its one row in a tuple, which orjson writes as the list a
        # line's rows are (a list costs an allocation more than a tuple)
        return [_line(hits[0], (_row(hits[0]),))]
    lines = []
    rows: list[tuple[Any, ...]] = []
    first: Hit | None = None
    for hit in hits:
        if first is None or not _shares_with(hit, first):
            if first is not None:
                lines.append(_line(first, rows))
                rows = []
            first = hit
        rows.append(_row(hit))
    if first is not None:
        lines.append(_line(first, rows))
    return lines


def _shares_with(hit: Hit, other: Hit) -> bool:
    """`hit` has `other`'s REQUEST_FIELDS values: the very objects, as a request's hits
    do (cheap), or equal ones."""
    return (
        (hit.visitor is other.visitor or hit.visitor == other.visitor)
        and (hit.month_visitor is other.month_visitor or hit.month_visitor == other.month_visitor)
        and (hit.device is other.device or hit.device == other.device)
        and (hit.region is other.region or hit.region == other.region)
        and (hit.app is other.app or hit.app == other.app)
        and (hit.first_party_id is other.first_party_id or hit.first_party_id == other.first_party_id)
    )


def _line(hit: Hit, rows: list[tuple[Any, ...]] | tuple[tuple[Any, ...]]) -> bytes:
    """`hit`'s REQUEST_FIELDS values, then `rows`, as one JSON line. A device or region
    as the list of its fields, a visitor key in hex (made here, not by orjson's `default`:
    it would call back into Python once per such value, bench/RESULTS.md session 8)."""
    return orjson.dumps(
        (hit.app, tuple(hit.device), tuple(hit.region), hit.visitor.hex(), hit.month_visitor.hex(),
         hit.first_party_id, rows),
        default=_encode_value, option=RECORD_OPTIONS,
    )


def _row(hit: Hit) -> tuple[Any, ...]:
    """A hit's ROW_FIELDS values, read by position (compiled), the deep facts as their
    JSON (DeepFacts.as_json): orjson would call back into `_encode_value` for them."""
    deep = hit.deep
    return (
        hit.minute, hit.etype, hit.page, hit.page_code, hit.referrer, hit.visit_flag, hit.engaged_ms, hit.scroll,
        deep.as_json() if deep is not None else None, hit.lang, hit.event_id, hit.resent,
    )


if sorted(REQUEST_FIELDS + ROW_FIELDS) != sorted(Hit._fields) or len(set(REQUEST_FIELDS + ROW_FIELDS)) != len(Hit._fields):
    raise TypeError("a journal line holds each of Hit's fields once: _line and _row spell them out")


# How store/_lines.c writes each REQUEST_FIELDS value (its Encoder's request_as), as _line
# does: 0 as itself, 1 a device or region as the list of its fields, 2 a visitor key in hex.
_REQUEST_AS: Final = {"device": 1, "region": 1, "visitor": 2, "month_visitor": 2}


def _compiled_lines() -> Callable[[list[Hit]], list[bytes] | None] | None:
    """store/_lines.c's Encoder for Hit's fields in REQUEST_FIELDS' and ROW_FIELDS' orders
    (by position), its `encode`; None when it was not built (or its build is stale)."""
    module = c_module("collector.store._lines")
    if module is None:
        return None
    encoder = module.Encoder(
        Hit, tuple(Hit._fields.index(name) for name in REQUEST_FIELDS),
        tuple(_REQUEST_AS.get(name, 0) for name in REQUEST_FIELDS),
        tuple(Hit._fields.index(name) for name in ROW_FIELDS), DeepFacts, Session,
    )
    encode: Callable[[list[Hit]], list[bytes] | None] = encoder.encode
    return encode


_C_LINES: Final = _compiled_lines()


def _encode_value(value: Any) -> Any:
    """What orjson does not write itself (str, int, None and plain tuples it does)."""
    if type(value) is DeepFacts:
        return value.as_json()
    raise TypeError(f"{type(value).__name__} in a hit record")


def encode_reject(app: str, minute: int, reason: str) -> bytes:
    """A reject (or a flag), in REJECT_FIELDS' order: the same line in every version."""
    return orjson.dumps((app, minute, reason), option=orjson.OPT_APPEND_NEWLINE)
