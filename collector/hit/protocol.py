"""The hit protocol (docs/protocol.md): field types, limits and event validation.

`validate_event` returns the problems of one event (empty when it is acceptable).
It only looks at the fields an event carries, so a typical page view costs a handful
of isinstance/len checks.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from math import isfinite
from typing import Any, Final, NoReturn, TypeGuard
from urllib.parse import unquote_plus

import orjson

from collector.native import c_module
from collector.store import names

# An event as JSON decodes it: a JSON object, its values of any JSON type until validated.
Event = dict[str, Any]

_unquote: Callable[[str], str]
try:
    # yarl's C unquoter (what aiohttp's `request.query` uses), configured to decode as
    # `urllib.parse.unquote_plus(errors="replace")` does: '+' is a space, every escape is
    # decoded (also %3D %26 %2B %3B, which `qs=True` would keep encoded), and an escape
    # that is not UTF-8 becomes U+FFFD. Several times faster than urllib's pure Python.
    from yarl._quoting import _Unquoter

    _unquote = _Unquoter(plus=True, replace_invalid=True)
except (ImportError, TypeError):  # pragma: no cover - yarl moved it or predates `plus`: same result, slower
    _unquote = partial(unquote_plus, errors="replace")

# The tables below are Final: compiled (collector/native.py), a Final module constant is
# a C static, where any other module global is a dict lookup at each use (per field of
# every event in validate_event).
EVENT_TYPES: Final = frozenset({"pageview", "engagement", "click", "exposure", "media", "interaction", "custom"})

# field -> (kind, limit). kind "str": limit is the maximum length; "int": (lo, hi).
STRING_FIELDS: Final[dict[str, int]] = {
    "k": 64,
    "t": 16,
    "u": 2048,
    "r": 2048,
    "pc": 128,
    "ti": 512,
    "cs": 32,
    "lang": 35,
    "id": 64,
    "vid": 64,
    "sid": 64,
    "uid": 128,
    "n": 128,
    # deep tag
    "tr": 64,
    "etr": 64,
    "rid": 128,
    "rt": 16,
    "subj": 64,
    "stage": 64,
    "src": 64,
    "ms": 64,
    "ch": 32,
}
INT_FIELDS: Final[dict[str, tuple[int, int]]] = {
    "sw": (0, 100_000),
    "sh": (0, 100_000),
    "tp": (0, 256),
    "ts": (0, 10**13),
    "sn": (1, 1_000_000),
    "et": (0, 86_400_000),
    "sd": (0, 100),
    # deep tag
    "pos": (0, 9_999_999),
    "epos": (0, 9_999_999),
    "dur": (0, 9_999_999),
    "ws": (0, 9_999_999),
    "wt": (0, 86_400_000),
    "pb": (10, 100),
    "score": (1, 5),
    "re": (0, 1),  # 1: sent before, its answer lost (docs/protocol.md, exactly once on re-sends)
}
NUMERIC_IDS: Final = frozenset({"uid"})  # string fields that also take an integer, stored as text
REQUIRED_BY_TYPE: Final[dict[str, tuple[str, ...]]] = {
    "pageview": ("u",),
    "engagement": ("et",),
    "click": ("n",),
    "exposure": ("n",),
    "media": ("n", "rid", "ms", "ws", "wt"),
    "interaction": ("n", "rid"),
}
# The actions (`n`) of media and interaction events, and what each requires besides.
MEDIA_ACTIONS: dict[str, tuple[str, ...]] = {
    "play": ("pos",), "pause": ("pos",), "seek": ("pos",), "ended": ("pos",),
    "progress": ("pos", "pb"), "ping": ("pos",), "read": (),
}
INTERACTIONS: dict[str, tuple[str, ...]] = {
    "rate": ("score",), "like": (), "unlike": (), "share": (), "favorite": (), "unfavorite": (), "comment": (),
}
# Keyed by event type; None (a `t` that is not a string) finds nothing.
ACTIONS_BY_TYPE: Final[dict[str | None, dict[str, tuple[str, ...]]]] = {"media": MEDIA_ACTIONS, "interaction": INTERACTIONS}
DEEP_TYPES: Final = frozenset({"click", "exposure", *(t for t in ACTIONS_BY_TYPE if t is not None)})
# Fields that only mean something together: a track item is (tr, pos).
PAIRS: Final[tuple[tuple[str, str], ...]] = (("etr", "epos"),)
PAIRS_BY_TYPE: Final[dict[str | None, tuple[tuple[str, str], ...]]] = {"click": (("tr", "pos"),), "exposure": (("tr", "pos"),)}
# PAIRS and a type's own, joined once (not a new tuple per event).
PAIRS_OF_TYPE: Final[dict[str | None, tuple[tuple[str, str], ...]]] = {
    etype: PAIRS + pairs for etype, pairs in PAIRS_BY_TYPE.items()
}
PROGRESS_BOUNDARIES: Final = frozenset(names.PROGRESS_BOUNDARIES)  # what a `progress` event's pb may be
PROPS_MAX_KEYS, PROPS_MAX_KEY, PROPS_MAX_VALUE = 32, 64, 256

# field -> (str, cap, 0) or (int, lo, hi): one lookup per field in validate_event.
FIELD_RULES: Final[dict[str, tuple[type, int, int]]] = {
    **{name: (str, cap, 0) for name, cap in STRING_FIELDS.items()},
    **{name: (int, lo, hi) for name, (lo, hi) in INT_FIELDS.items()},
}

_FORBIDDEN_IN_APP_KEY: Final = re.compile(r"[\x00-\x1f\x7f{}]")


@dataclass(frozen=True, slots=True)
class Problem:
    event: int | None  # index in the batch; None for the request as a whole
    field: str | None
    reason: str
    detail: str

    @property
    def counter(self) -> str:
        """The name a rejection is counted under: reason, or reason:field."""
        return f"{self.reason}:{self.field}" if self.field else self.reason

    def as_json(self) -> dict[str, str | int | None]:
        return {"event": self.event, "field": self.field, "reason": self.reason, "detail": self.detail}


def validate_event(
    event: object, index: int | None = None, checked_key: str = "", fields_valid: bool = False,
) -> Sequence[Problem]:
    """The problems of `event` (the `index`-th of its request). `checked_key`: an app key
    already found acceptable — the request's event before, nearly always the same key —
    which need not be scanned again. `fields_valid`: each field of `event` is known to be
    of its rule's type and within it (decode_target_event's `valid`), so the walk of the
    fields is skipped; what the rules of several fields say together is still judged.

    hit/_query.c's EventJudge answers first when built and the fields are not known valid
    already: nearly every event of a batch has no problem, which it finds in one pass in C
    (session 19); any other answer is no verdict, and event_problems, the reference, judges.
    (A GET hit's fields the decoder found valid: the judge would walk them again, ~450
    instructions more than event_problems' checks of them together.)

    No problem is the empty tuple, not a new empty list per event (a POST-50 request's
    events nearly all: ~180 instructions each, bench/RESULTS.md session 23)."""
    if not fields_valid and _EVENT_CLEAN is not None and _EVENT_CLEAN(event):
        return ()
    return event_problems(event, index, checked_key, fields_valid)


def event_problems(
    event: object, index: int | None = None, checked_key: str = "", fields_valid: bool = False,
) -> Sequence[Problem]:
    """validate_event's answer, judged here in Python (what EventJudge is held to)."""
    if not isinstance(event, dict):
        return [Problem(index, None, "not_an_object", f"expected a JSON object, got {type(event).__name__}")]
    # (field, reason, detail) per problem; made into Problems at the end.
    found: list[tuple[str, str, str]] = []
    if not fields_valid and not (_FIELDS_VALID is not None and _FIELDS_VALID(event)):
        _walk_fields(event, found)

    # From here on a field is only looked at when it has its type: a value of the wrong
    # type (already a problem above) may be unhashable or incomparable.
    etype = _app_and_type_problems(event, found, checked_key)
    url = event.get("u")
    if isinstance(url, str) and url and not url.startswith(("http://", "https://")):
        found.append(("u", "invalid_value", "must be an http:// or https:// URL"))
    if etype in DEEP_TYPES or "etr" in event or "epos" in event:
        _deep_problems(event, etype, found)
    return [Problem(index, *problem) for problem in found] if found else ()  # (see validate_event)


def _walk_fields(event: Event, found: list[tuple[str, str, str]]) -> None:
    """Each field held to its rule (type, cap, bounds), its problems added to `found`. This
    runs for every event of every batch: a field of the type its rule wants (nearly all of
    them) costs one lookup and a comparison; the rest take _field_problem."""
    for name, value in event.items():
        kind = type(value)
        if kind is str:
            cap = STRING_FIELDS.get(name)
            if cap is not None:
                if len(value) > cap:
                    found.append((name, "too_long", f"longer than {cap} characters"))
                continue
        elif kind is int:  # bool is an int subclass, not int: excluded on purpose
            bounds = INT_FIELDS.get(name)
            if bounds is not None:
                # Compared as a C integer: `value` compared as an object boxed each bound
                # past 256 into a new int object, per integer field of every event.
                number: int = value
                if not bounds[0] <= number <= bounds[1]:
                    found.append((name, "out_of_range", f"must be {bounds[0]}..{bounds[1]}"))
                continue
        _field_problem(event, name, value, found)


def _field_problem(event: Event, name: str, value: object, found: list[tuple[str, str, str]]) -> None:
    """A field whose value is not of the type its rule wants, or that has no rule (`p`,
    unknown fields). (Replacing a value in place is safe while the caller iterates.)"""
    rule = FIELD_RULES.get(name)
    if rule is None:
        if name == "p":
            detail = _props_problem(value)
            if detail:
                found.append(("p", "wrong_type" if not isinstance(value, dict) else "invalid_value", detail))
    elif rule[0] is str:
        if name in NUMERIC_IDS and type(value) is int:
            # Platforms set `_user_id` from numeric account ids; the appendix-A
            # loader passes them through as numbers. Text it, don't lose the event
            # (and hold the text to the field's cap like any other).
            event[name] = value = str(value)
        if not isinstance(value, str):
            found.append((name, "wrong_type", f"expected a string, got {_json_type(value)}"))
        elif len(value) > rule[1]:
            found.append((name, "too_long", f"longer than {rule[1]} characters"))
    elif type(value) is not int:  # bool is an int subclass: excluded on purpose
        found.append((name, "wrong_type", f"expected an integer, got {_json_type(value)}"))
    elif not rule[1] <= value <= rule[2]:
        found.append((name, "out_of_range", f"must be {rule[1]}..{rule[2]}"))


def _app_and_type_problems(event: Event, found: list[tuple[str, str, str]], checked_key: str) -> str | None:
    """The app key (unless it is `checked_key`) and the event type, and the fields the
    type requires. Returns the type when it is a string (None otherwise)."""
    app = event.get("k")
    if app is None or app == "":
        found.append(("k", "missing_field", "the app key is required"))
    elif isinstance(app, str) and app != checked_key and _forbidden_in_app_key(app):
        found.append(("k", "invalid_value", "control characters and { } are not allowed"))

    etype = event.get("t")
    if etype is None:
        found.append(("t", "missing_field", "the event type is required"))
        return None
    if not isinstance(etype, str):
        return None
    if etype not in EVENT_TYPES:
        found.append(("t", "invalid_value", "unknown event type; one of " + ", ".join(sorted(EVENT_TYPES))))
    for required in REQUIRED_BY_TYPE.get(etype, ()):
        if required not in event:
            found.append((required, "missing_field", f"required for {etype} events"))
    return etype

def _deep_problems(event: Event, etype: str | None, found: list[tuple[str, str, str]]) -> None:
    """What the field table cannot say: actions, fields that come in pairs, and
    positions or progress that do not fit the resource's duration.

    `etype` is None when `t` is not a string. Values of the wrong type were reported by
    validate_event; here they are skipped, never hashed or compared."""
    actions = ACTIONS_BY_TYPE.get(etype)
    action = event.get("n")
    if actions is not None and isinstance(action, str):
        if action not in actions:
            found.append(("n", "invalid_value", f"unknown {etype} action; one of " + ", ".join(actions)))
        else:
            for required in actions[action]:
                if required not in event:
                    found.append((required, "missing_field", f"required for {etype} {action} events"))
    for a, b in PAIRS_OF_TYPE.get(etype, PAIRS):
        if (a in event) != (b in event):
            found.append((b if a in event else a, "missing_field", f"{a} and {b} come together"))
    dur, pb = event.get("dur"), event.get("pb")
    if type(pb) is int and pb not in PROGRESS_BOUNDARIES:
        found.append(("pb", "invalid_value", "one of " + ", ".join(map(str, sorted(PROGRESS_BOUNDARIES)))))
    if type(dur) is int and dur >= 0:
        # dur is rounded and pos floored, so a position in the last second may equal dur;
        # ws counts whole seconds played, at most one more than the rounded duration.
        pos, ws = event.get("pos"), event.get("ws")
        if etype == "media" and type(pos) is int and pos > dur:
            found.append(("pos", "out_of_range", f"position {pos} s is past the duration {dur} s"))
        if type(ws) is int and ws > dur + 1:
            found.append(("ws", "out_of_range", f"{ws} distinct seconds watched of a {dur} s resource"))


def usable_app_key(value: object) -> TypeGuard[str]:
    """True when `value` can name an app in key names (rejections are counted under it)."""
    return isinstance(value, str) and 0 < len(value) <= STRING_FIELDS["k"] and not _forbidden_in_app_key(value)


def _forbidden_in_app_key(app: str) -> bool:
    """`app` holds a character _FORBIDDEN_IN_APP_KEY refuses. Every event has an app key:
    printable text without braces (nearly all of them) is answered by two C string
    scans, which the regex search takes several times as long for; the rest asks it."""
    if app.isprintable() and "{" not in app and "}" not in app:
        return False  # (the refused controls are all unprintable)
    return _FORBIDDEN_IN_APP_KEY.search(app) is not None


def _props_problem(value: object) -> str:
    if not isinstance(value, dict):
        return f"expected an object, got {_json_type(value)}"
    if len(value) > PROPS_MAX_KEYS:
        return f"more than {PROPS_MAX_KEYS} properties"
    for key, item in value.items():
        if len(key) > PROPS_MAX_KEY:
            return f"property name longer than {PROPS_MAX_KEY} characters"
        if isinstance(item, str):
            if len(item) > PROPS_MAX_VALUE:
                return f"property {key!r} longer than {PROPS_MAX_VALUE} characters"
        elif not isinstance(item, (int, float, bool)) or (type(item) is float and not isfinite(item)):
            # NaN and infinities are not JSON values (1e400 parses as infinity)
            return f"property {key!r} must be a string, number or boolean"
    return ""


def parse_body(body: bytes) -> Any:  # any JSON value
    """JSON of a POST body. Raises ValueError when it is not UTF-8 JSON.

    orjson refuses two things that are JSON, and rather than lose the whole batch for
    one event, such bodies take a slow path through the stdlib parser:
    - lone UTF-16 surrogates ("\\ud83d", from a JS string cut in the middle of an
      emoji): each becomes U+FFFD;
    - numbers too large for a double (1e400): they parse as infinity, which no field
      takes, so only their event is rejected.
    The slow path still refuses what is not JSON (NaN, Infinity) and what is not UTF-8.

    hit/_batch_json.c decodes first when built (session 22): orjson's answer, its keys
    that are field names the protocol's own interned str (later look-ups of them are
    pointer hits, not string compares), or None for a body it leaves to orjson (floats,
    integers past 18 digits, bad escapes, anything not JSON).
    """
    if _BATCH_JSON is not None:
        decoded = _BATCH_JSON(body)
        if decoded is not None:
            return decoded
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        fast_error = str(exc)
    try:
        return _scrub(json.loads(body.decode("utf-8"), parse_constant=_not_json))
    except (ValueError, RecursionError):  # (UnicodeDecodeError is a ValueError)
        raise ValueError(fast_error) from None


def _batch_json() -> Callable[[bytes], Any] | None:
    """hit/_batch_json.c's decode, its names the protocol's fields (and `p`, `img`: what
    the compiled code looks up in an event); None when it was not built or is stale."""
    module = c_module("collector.hit._batch_json")
    if module is None:
        return None
    decode: Callable[[bytes], Any] = module.Decoder((*STRING_FIELDS, *INT_FIELDS, "p", "img")).decode
    return decode


_BATCH_JSON: Final = _batch_json()


def _not_json(constant: str) -> NoReturn:
    raise ValueError(f"{constant} is not JSON")


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if isinstance(value, dict):
        return {_scrub(k): _scrub(v) for k, v in value.items()}
    return value


# Fields that are validated but never counted: left percent-encoded when that text already
# fits their cap (decoding never lengthens a string), since the page title alone is most
# of a page view's decoding work.
UNCOUNTED_FIELDS: Final = frozenset({"ti", "cs"})


def decode_query(raw: str) -> dict[str, str]:
    """GET parameters from the raw (percent-encoded) query string, decoded exactly as
    `dict(urllib.parse.parse_qsl(raw, keep_blank_values=True, errors="replace"))`:
    split at '&' only, a name without '=' has the value "", '+' is a space, every escape
    is UTF-8 (%3D %26 %2B %3B %23 too) and one that is not becomes U+FFFD; the last
    value of a name wins. A literal '#' ends the query, as in a URL.

    So a value means the same whether it came by GET or in a POST body. Skips the
    unquoter for text without '%' or '+', and builds no URL object: the GET path is hot.
    """
    query: dict[str, str] = {}
    # Each name and value is sliced straight out of `raw` at its '&' and '=' (C scans):
    # splitting at '&' and then partitioning each part built every piece twice.
    end = raw.find("#")
    if end < 0:
        end = len(raw)
    start = 0
    while start <= end:
        amp = raw.find("&", start, end)
        if amp < 0:
            amp = end
        equals = raw.find("=", start, amp)
        if equals >= 0:
            name, value = raw[start:equals], raw[equals + 1:amp]
        elif amp > start:
            name, value = raw[start:amp], ""
        else:  # an empty parameter ("a=1&&b=2", or a trailing '&')
            start = amp + 1
            continue
        start = amp + 1
        if "%" in name or "+" in name:
            name = _unquote(name)
        if ("%" in value or "+" in value) and not (name in UNCOUNTED_FIELDS and len(value) <= STRING_FIELDS[name]):
            value = _unquote(value)
        query[name] = value
    return query


def _ascii_query_decoder() -> Any:
    """hit/_query.c's decoder (decode_query in C, for ASCII text: its methods `decode` and
    `event`); None when it was not built or its build is stale (collector/native.py). The
    names it gives as the protocol's own str objects are the fields' (and `p`, `img`): their
    hashes are kept, and later look-ups of the same names find them by identity. `event`
    also needs to know the integer fields, and `p`, which query_event decodes from JSON; and
    the caps and bounds validate_event's field walk holds each field to, and the limits of
    `p`'s properties (_props_problem's: `fields_valid` judges a POST event's `p` too)."""
    module = c_module("collector.hit._query")
    if module is None:
        return None
    known = (*STRING_FIELDS, *INT_FIELDS, "p", "img")
    return module.QueryDecoder(
        known, {name: STRING_FIELDS[name] for name in UNCOUNTED_FIELDS}, integers=tuple(INT_FIELDS), later=("p",),
        caps=STRING_FIELDS, bounds=INT_FIELDS, props=(PROPS_MAX_KEYS, PROPS_MAX_KEY, PROPS_MAX_VALUE))


_ASCII_DECODER = _ascii_query_decoder()  # (a Final of it trips mypyc: its bound methods are)
_ASCII_QUERY: Final[Callable[[bytes, int], dict[str, str] | None] | None] = (
    _ASCII_DECODER.decode if _ASCII_DECODER is not None else None)
# (parameters, clean, valid), or None for a target that is not ASCII: decode_target_event.
_ASCII_EVENT: Final[Callable[[bytes, int], tuple[dict[str, Any], bool, bool] | None] | None] = (
    _ASCII_DECODER.event if _ASCII_DECODER is not None else None)
# True when each field of an event (a dict) is within its rule, so that validate_event's
# walk of them would find nothing: the POST path's events, as orjson makes them (session 19).
# False is no verdict: the walk judges. hit/_query.c's, from the same caps and bounds.
_FIELDS_VALID: Final[Callable[[object], bool] | None] = (
    _ASCII_DECODER.fields_valid if _ASCII_DECODER is not None else None)


def _event_judge() -> Any:
    """hit/_query.c's EventJudge over the protocol's tables (None without the C decoder)."""
    module = c_module("collector.hit._query")
    if module is None or _ASCII_DECODER is None:
        return None
    return module.EventJudge(
        _ASCII_DECODER, EVENT_TYPES, REQUIRED_BY_TYPE, DEEP_TYPES,
        {etype: actions for etype, actions in ACTIONS_BY_TYPE.items() if etype is not None},
        {etype: pairs for etype, pairs in PAIRS_OF_TYPE.items() if etype is not None}, PAIRS, PROGRESS_BOUNDARIES)


_EVENT_JUDGE = _event_judge()
# True when validate_event would find no problem in an event; False is no verdict.
_EVENT_CLEAN: Final[Callable[[object], bool] | None] = _EVENT_JUDGE.judge if _EVENT_JUDGE is not None else None


def decode_target_query(target: bytes, start: int) -> dict[str, str]:
    """decode_query(target[start:].decode("utf-8", "replace")): a GET hit's request target
    from its query on. By hit/_query.c when built and the text is ASCII (the fast path's
    request line admits nothing else), which makes no str of the whole and no slice a
    parameter beside its name and value (issue 17). A target that ends before `start`
    (`GET /c`: no query) has the empty query its slice would give."""
    if _ASCII_QUERY is not None and start <= len(target):
        query = _ASCII_QUERY(target, start)
        if query is not None:
            return query
    return _decoded_text(target, start)


def _decoded_text(target: bytes, start: int) -> dict[str, str]:
    """The Python decoder's answer for a target the C decoder left (not ASCII, or not built)."""
    return decode_query(target[start:].decode("utf-8", "replace"))


def decode_target_event(target: bytes, start: int) -> tuple[dict[str, Any], bool, bool]:
    """decode_target_query's parameters as the start of their event, whether they are the
    event already (`clean`: query_event would change nothing and find no problem), and
    whether, clean, its fields are `valid` (validate_event's walk of them would find no
    problem: each string field within its cap, each integer field within its bounds).

    By hit/_query.c when built and the text is ASCII: an integer field's integer text is
    its int already (as query_event would make it), and clean unless a parameter is left
    for query_event (`p`, an integer field's other text, an escaped name). Otherwise
    decode_target_query's text, never clean nor valid. Either way query_event(query) (which
    leaves an int as it is) gives the same event and problems, and validate_event the same
    problems with `fields_valid` as without (tests/test_query_differential.py); the GET path
    skips query_event when clean and the field walk when valid (issue 17)."""
    if _ASCII_EVENT is not None and start <= len(target):
        found = _ASCII_EVENT(target, start)
        if found is not None:
            return found
    return _decoded_text(target, start), False, False


# An integer in a query string: what JSON would take, decimal ASCII digits with an
# optional minus (int() alone would also take " 12 ", "1_000", "+5" and "١٢"). A longer
# one than any range allows is not parsed: int() of thousands of digits is slow.
_INTEGER_DIGITS_MAX = 20


def _is_integer_text(text: str) -> bool:
    """`text` matches -?[0-9]+ (isdigit alone would also take "١٢" and "²": hence isascii)."""
    digits = text[1:] if text[:1] == "-" else text
    return digits.isdigit() and digits.isascii()


def from_query(query: dict[str, str]) -> tuple[Event, list[Problem]]:
    """An event from GET parameters: integers and `p` are decoded from their text.
    `query` is left as it is (query_event makes the event of a dict it may change)."""
    return query_event(dict(query))


def query_event(query: dict[str, Any]) -> tuple[Event, list[Problem]]:
    """from_query, made of `query` itself (decode_query's dict, which the caller drops):
    the GET path's, with no copy of the parameters (issue 17). An integer field's value
    may be an int already (decode_target_event's): it is kept as it is.

    Most parameters are text kept as sent: only integers and `p` are replaced in place
    (same keys, same order), or removed when they are refused, after the walk (a dict may
    not change its size while it is walked)."""
    problems: list[Problem] = []
    refused: list[str] = []
    text: str  # decode_query's values are text
    for name, value in query.items():
        if name in INT_FIELDS:
            if type(value) is int:  # made by decode_target_event from its integer text already
                continue
            text = value
            if not _is_integer_text(text):
                refused.append(name)
                problems.append(Problem(0, name, "wrong_type", "expected an integer"))
            elif len(text) > _INTEGER_DIGITS_MAX:
                refused.append(name)
                lo, hi = INT_FIELDS[name]
                problems.append(Problem(0, name, "out_of_range", f"must be {lo}..{hi}"))
            else:
                query[name] = int(text)
        elif name == "p":
            try:
                query[name] = orjson.loads(value)
            except orjson.JSONDecodeError:
                refused.append(name)
                problems.append(Problem(0, "p", "malformed_json", "p must be a JSON object"))
    for name in refused:
        del query[name]
    return query, problems


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
