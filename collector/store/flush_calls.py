"""The script calls that apply one slot's writes (apply_flush.lua): a slot's SlotWrites
turned into the KEYS and ARGV of its calls, in order, numbered within their batch.

Apart from flusher.py so that it is compiled (collector/native.py): at saturation a POST
batch's parts are built in the flusher's own thread, and this is the build's hottest
Python (`_CallWriter.group`, once per suffix of a bucket group: bench/RESULTS.md,
"Session 11: the flush's work per POST event"). flusher.py re-exports its names.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import chain
from typing import Any, Final

import orjson

from collector.features.deep import Session
from collector.store import dedupe, keys, redis_client
from collector.store.pacing import no_pacing
from collector.store.rollup import Prefixes, SlotWrites

# Arguments per script call. A slot's writes are split into calls of about this size so
# no single call builds a huge request or blocks Redis for long.
CALL_ARGS: Final = 20_000
# Calls of one flush are numbered flush_seq * PARTS + part: still increasing per slot.
PARTS: Final = 100_000
# The calls that count a batch's admitted re-sends (store/dedupe.py) are numbered from
# here within the batch's range, after those of its first sends.
RESENT_CALLS: Final = PARTS // 2


def session_arg(prefixes: Prefixes, session: Session, completed_percent: int) -> bytes:
    """One session's progress for the script: [ms, ws, dur, started, [[bucket prefix,
    expire-at], ...], [[metrics key suffix, value], ...], completed percent]."""
    targets = [[keys.metrics_suffix(dim) if dim else keys.COUNTERS, value] for dim, value in session.targets]
    encoded = orjson.dumps([session.ms, session.ws, session.dur, session.started, prefixes, targets, completed_percent])
    # orjson's bytes keep the 4 KB buffer it wrote into (4,097 bytes traced for a 300-byte
    # argument): a slot's sorted arguments, held until their call is packed, took 7 MB of a
    # POST-10 part's build for 0.5 MB of arguments (issue 17, RSS). A copy of the right size.
    return bytes(memoryview(encoded))


# KEYS and ARGV of one script call.
ScriptCall = tuple[list[str], list[redis_client.Arg]]


def encode_calls(
    writes: SlotWrites, writer: str, seq: int, completed_percent: int = 90, first_call: int = 0,
    pace: Callable[[], None] = no_pacing, first_sends: dedupe.FirstSends | None = None,
    sink: Callable[[ScriptCall], None] | None = None,
) -> list[ScriptCall]:
    """KEYS and ARGV of the APPLY_FLUSH_LUA calls that apply `writes` and record the slot's
    `first_sends` (their set is in this slot: the app's and day's), in order, numbered
    after `first_call` within batch `seq` (the items are described in apply_flush.lua).

    In an order a rebuild makes again: a batch rebuilt from its journal segment splits
    into the very same calls as the first attempt, so a retry after a partial apply skips
    exactly what landed. The bucket groups and their suffixes are sorted, and so are the
    items of a group: those of a group split over calls always, an 'h' group's pairs and
    the first sends' ids only then (in one call their order changes nothing: HINCRBY and
    SADD; _CallWriter.increments and ids).

    With `sink`, each call is handed to it as soon as it is complete, and none is kept
    (the list returned is empty): the flush packs a call at once and drops its argument
    list, instead of holding every call's arguments of a part until all are packed.
    """
    script_keys = [keys.flush_sequence(writes.tag, writer), keys.sessions(writes.tag), keys.migration_guard(writes.tag)]
    if first_sends is not None:
        script_keys.append(first_sends.key)
    calls = _CallWriter(script_keys, seq * PARTS + first_call, sink)
    for prefixes in sorted(writes.buckets):
        pace()
        deltas = writes.buckets[prefixes]
        calls.begin_buckets(prefixes)
        for suffix in sorted(deltas.fields):
            calls.increments(suffix, deltas.fields[suffix])
        for suffix in sorted(deltas.members):
            calls.group("p", suffix, sorted(deltas.members[suffix]), 1)
    if writes.sessions:
        sessions = sorted(session_arg(prefixes, session, completed_percent) for prefixes, session in writes.sessions)
        calls.sessions(writes.sessions_expire_at, sessions)
    if first_sends is not None:
        calls.ids(first_sends.ttl, first_sends.ids)
    calls.close()
    if calls.made >= RESENT_CALLS:
        raise ValueError("flush too large to number its calls")
    return calls.calls


class _CallWriter:
    """The script calls of one slot, filled item by item, a new call begun whenever the
    next piece would take one past CALL_ARGS arguments (a long suffix continues in it)."""

    def __init__(self, script_keys: list[str], base: int, sink: Callable[[ScriptCall], None] | None = None) -> None:
        self.script_keys = script_keys  # the same in every call of the slot
        self.base = base
        self.calls: list[ScriptCall] = []
        self.sink = sink if sink is not None else self.calls.append  # where each complete call goes
        self.made = 0  # calls complete so far (each numbered base + its rank)
        self.args: list[redis_client.Arg] = []
        self.prefixes: Prefixes = ()
        self.count_at = -1  # where the open 'b' item's group count is in `args` (-1: none open)
        self.groups = 0

    def begin_buckets(self, prefixes: Prefixes) -> None:
        """The groups that follow go to these buckets (a 'b' item, opened with its first group)."""
        self.prefixes = prefixes
        self.count_at = -1

    def group(self, kind: str, suffix: str, items: Sequence[Any], width: int) -> None:
        # `items` are (field, increment) pairs when `width` is 2, else single elements:
        # one loop serves both, so they are typed Any.
        if not items:
            return
        step = self._step(width)
        if len(items) <= step:  # nearly always: one piece, the items as they are (no slice)
            self._piece(kind, suffix, len(items), width)
            self.args += chain.from_iterable(items) if width == 2 else items
            return
        for start in range(0, len(items), step):
            part = items[start : start + step]
            self._piece(kind, suffix, len(part), width)
            self.args += chain.from_iterable(part) if width == 2 else part

    def increments(self, suffix: str, increments: dict[str, int]) -> None:
        """An 'h' group: the (field, increment) pairs of `increments`. The flush's hottest
        loop (once per suffix of a slot's bucket group, a few fields each): the pairs are
        written straight into the call's arguments in the dict's order. A group of one
        piece (nearly every one: a piece holds ~10,000 pairs) is one run of HINCRBYs in one
        call, whose result no order changes, and the call's room is made by the group's
        length alone: sorting its names (the order of a rebuild from the journal may differ)
        made ~20 % of encode's instructions (bench/RESULTS.md, session 24). A group split
        over pieces is sorted (group), so that each piece holds the same pairs on a
        rebuild (a retry skips the calls that landed by their numbers)."""
        count = len(increments)
        if count > self._step(2):  # a call's worth: in pieces
            self.group("h", suffix, [(name, increments[name]) for name in sorted(increments)], 2)
            return
        if not count:
            return
        self._piece("h", suffix, count, 2)
        args = self.args
        for name, amount in increments.items():
            args.append(name)
            args.append(amount)

    def _step(self, width: int) -> int:
        """The most items of `width` arguments one piece of a group may hold: a call's
        room after the 'b' item's header and the group's own."""
        return max((CALL_ARGS - self._header() - 3) // width, 1)

    def _header(self) -> int:
        """The arguments of a 'b' item's header: 'b', n, the prefixes, the group count."""
        return 3 + 2 * len(self.prefixes)

    def _piece(self, kind: str, suffix: str, count: int, width: int) -> None:
        """A group's head (`kind`, `suffix`, `count`), in a new call if the current one
        has no room left for it and its `count` items of `width` arguments; the 'b' item
        opened first when none is."""
        self._make_room(3 + count * width + (self._header() if self.count_at < 0 else 0))
        if self.count_at < 0:
            self.args += ("b", len(self.prefixes))
            for prefix, expire_at in self.prefixes:
                self.args += (prefix, expire_at)
            self.count_at, self.groups = len(self.args), 0
            self.args.append(0)
        self.groups += 1
        self.args[self.count_at] = self.groups
        self.args += (kind, suffix, count)

    def sessions(self, expire_at: int, sessions: list[bytes]) -> None:
        self._listed("s", expire_at, sessions)

    def ids(self, ttl: int, ids: list[str]) -> None:
        """An 'i' item: first sends' ids (store/dedupe.py), each once. Up to CALL_ARGS they
        are one piece in one call, which their order does not change (the piece's room is
        made by its length), and the script adds them to one set; more are sorted first,
        so that which of them go to which call is the same on a rebuild (a retry skips the
        calls that landed by their numbers)."""
        self._listed("i", ttl, ids if len(ids) <= CALL_ARGS else sorted(ids))

    def _listed(self, kind: str, head: int, elements: Sequence[redis_client.Arg]) -> None:
        """Items `kind`, `head`, k, k elements: as many as the elements need."""
        self.count_at = -1
        for start in range(0, len(elements), CALL_ARGS):
            part = elements[start : start + CALL_ARGS]
            self._make_room(3 + len(part))
            self.args += (kind, head, len(part), *part)

    def _make_room(self, needed: int) -> None:
        if self.args and len(self.args) + needed > CALL_ARGS:
            self.close()

    def close(self) -> None:
        if self.args:
            self.made += 1
            self.sink((self.script_keys, [self.base + self.made, keys.SEQ_MARKER_TTL, *self.args]))
        self.args, self.count_at = [], -1
