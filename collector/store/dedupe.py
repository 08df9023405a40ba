"""Exactly once when a client re-sends: an event whose answer was lost is counted once.

The beacon marks an event it sends again `re=1` (docs/protocol.md) and keeps its `id`.
A first send (no `re`) is counted at once, and its flush records its id in Redis, in
the very script call that writes its counts in that slot (`first_sends_by_slot`, the
'i' item of apply_flush.lua): in one set per app and day of its bucket and per minute
of the flush, `SADD eb:{APP|DAY}:ids:SLICE ID ID …`, then `EXPIRE … dedupe_window +
ID_SLICE` — no command of its own, and the call's sequence marker makes it exactly
once with the counts. SLICE is the
flusher's clock in ID_SLICE seconds (epoch minutes): the last write into a slice's set
comes before the slice ends, so every id in it is kept at least `dedupe_window`
seconds after its record — as with a key per id, but a set member costs some 50–70
bytes where a key with a TTL cost some 130.

The sets are sliced by the time of the record, not by the event's minute: a re-send is
counted at its client timestamp `ts` only while that lies within `client_ts_window`
(else at its arrival), and `ts` is optional — a re-send may fall in another minute than
its original, but never in another record slice than the ones a check reads (below).
Like the key per id before, the set is in the slot of the app and the day of the
event's bucket (keys.slot_tag): a re-send counted on another day than its original
(no `ts`, or a client clock judged differently) is not caught.

A re-sent event is held back from the counts (aggregate.py `Snapshot.resent`) until
two things hold:

1. every other live writer's first sends' watermark (finality.py) has passed the
   moment the re-sent event arrived: an original that any worker received before the
   re-send is then in Redis with its id. (This writer's own earlier first sends are:
   its batches are applied in order, and a batch's first sends before its re-sends.)
   A writer that cannot catch up within `dedupe_hold_max` is not waited for longer.
2. its id is new (`ADMIT_LUA`, one script per slot and ADMIT_IDS re-sent ids, which
   reads each set once with SMISMEMBER): it is in none of the slices' sets that may
   still hold an id recorded within `dedupe_window` (one slice more at each end, for
   the clocks of other processes), and
   `SET eb:{APP|DAY}:id:ID TOKEN NX EX window` succeeds — or that key holds this
   batch's own TOKEN (writer:seq), which is how a batch replayed after a crash finds
   the re-sends it had admitted before. Re-sends are rare, so a key per admitted
   re-send is cheap. The same key is where collectors before the sets recorded first
   sends (value FIRST_SEND): during a rolling upgrade, for one `dedupe_window`, such
   an id makes the SET NX fail and its re-send is dropped — the check costs nothing more.
   (An old collector still running does not read the sets: a re-send it checks whose
   original a new one recorded counts twice, until the upgrade is over.)

The admitted re-sends are then counted as a flush of their own, numbered within their
batch's sequence (flusher.py `RESENT_CALLS`), so the per-slot sequence markers make
that idempotent too. A duplicate is dropped and counted as `flagged:duplicate_resend`.

The wait needs the watermarks: with `finality_interval` 0 none are published and a
re-send is checked at once (an original another worker still holds is then missed).

Bounds: a set holds the first sends one app had flushed in one minute; their number is
bounded by the app's rate (`rate_app` per worker), an id by 64 characters (protocol.py),
and a set lives `dedupe_window` + ID_SLICE seconds after its last write, so the ids
kept are what the app may send in that time — the same bound as a key per id, at half
the bytes. A set is freed whole when it expires, in one go: a set of 100 000 ids (an
app's minute at some 1 700 events/s) takes Redis some 15 ms (bench/dedupe_cost.py);
`lazyfree-lazy-expire yes` frees big sets in Redis' background thread instead. A check reads dedupe_window / ID_SLICE + 3
sets (63 for an hour) for each chunk of re-sent ids, a lookup per set and id: a client
that only re-sends costs Redis more per event than one that does not, within its rate
limit. (The first copy of an id per app and day is checked; its other copies in the
batch, whatever their minute, are duplicates.)

Not covered: an original that arrives *after* its re-send was admitted (it was still
in flight when the beacon gave up on it), and an original held by a worker that was
dead longer than `finality_writer_ttl` and replays its journal later. Both count twice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis.asyncio as aioredis

from collector.hit.record import Hit
from collector.store import keys, redis_client
from collector.store.aggregate import Snapshot
from collector.store.buckets import Calendar

FIRST_SEND = "1"  # the value of an id key recorded by a first send before the sets (rolling upgrade)
ID_SLICE = 60  # seconds of first sends recorded in one set per app and day
RECORD_IDS = 1000  # ids per SADD: one command instead of a thousand

ADMIT_IDS = 500  # re-sent ids per check script: a set is read once per chunk (SMISMEMBER)

# Checks a chunk of re-sent ids of one slot (app and day). KEYS: the sets of first sends
# that may hold them (ARGV[3] of them), then each id's admission key. ARGV: the admitting
# batch's token, the window (s), the number of sets, the ids.
# Per id, 1: count the re-sent event (its id is new, or this very batch admitted it before).
ADMIT_LUA = """
local token, window, sets = ARGV[1], ARGV[2], tonumber(ARGV[3])
local ids = {unpack(ARGV, 4)}
local recorded = {}
for s = 1, sets do
  if redis.call('EXISTS', KEYS[s]) == 1 then
    local found = redis.call('SMISMEMBER', KEYS[s], unpack(ids))
    for i = 1, #ids do if found[i] == 1 then recorded[i] = true end end
  end
end
local verdicts = {}
for i = 1, #ids do
  local key, admitted = KEYS[sets + i], 0
  if not recorded[i] then
    if redis.call('SET', key, token, 'NX', 'EX', window) or redis.call('GET', key) == token then admitted = 1 end
  end
  verdicts[i] = admitted
end
return verdicts
"""


def record_slice(moment: float) -> int:
    """The slice (epoch minute) whose set a first send flushed at `moment` goes to."""
    return int(moment // ID_SLICE)


def day_of(calendar: Calendar, minute: int) -> str:
    return calendar.buckets_of_minute(minute)[2].id


def id_key(calendar: Calendar, app: str, minute: int, event_id: str) -> str:
    return keys.event_id(app, day_of(calendar, minute), event_id)


@dataclass(frozen=True, slots=True)
class FirstSends:
    """The ids of first sends that one flush records in one slot (app and day): `key` is
    their set (keys.first_send_ids), kept `ttl` seconds after the write."""

    key: str
    ttl: int
    # Each once, in no set order: encode_calls sorts them where they fill more than one call
    # (and first_send_commands where they take more than one SADD), so that a batch rebuilt
    # from its journal splits into the very same calls. Sorting every slot's ids was most
    # of a POST-50 flush's record of them (bench/RESULTS.md, session 24).
    ids: list[str]


def first_sends_by_slot(snap: Snapshot, calendar: Calendar, window: int, now: float) -> dict[str, FirstSends]:
    """What a later re-send of a first send is checked against, by the slot tag of its
    app and day (keys.slot_tag): its id, a member of the set of its app, day and record
    slice (`now`), kept `window` + ID_SLICE seconds after this write. The flush script
    call of that slot records them (flusher.py encode_calls), with the slot's counts."""
    days: dict[int, str] = {}  # minute -> day: a batch spans a few minutes
    by_slot: dict[tuple[str, str], list[str]] = {}
    for (app, minute), ids in snap.event_ids.items():
        day = days.get(minute)
        if day is None:
            day = days[minute] = day_of(calendar, minute)
        by_slot.setdefault((app, day), []).extend(ids)
    piece = record_slice(now)
    return {
        keys.slot_tag(app, "day", day): FirstSends(keys.first_send_ids(app, day, piece), window + ID_SLICE, list(set(ids)))
        for (app, day), ids in by_slot.items()
    }


def first_send_commands(snap: Snapshot, calendar: Calendar, window: int, now: float) -> list[redis_client.Command]:
    """The same record as separate commands: one SADD per set and RECORD_IDS ids, one
    EXPIRE per set. What collectors before 2026-11-30 sent after their script calls; the
    flusher still sends them for a batch an earlier run left in its journal (whose
    script calls may have landed, under such a collector, without the ids)."""
    commands: list[redis_client.Command] = []
    for record in first_sends_by_slot(snap, calendar, window, now).values():
        ids = sorted(record.ids)  # the same SADDs on a rebuild (a retry resumes at a command)
        commands += [("SADD", record.key, *ids[start : start + RECORD_IDS]) for start in range(0, len(ids), RECORD_IDS)]
        commands.append(("EXPIRE", record.key, record.ttl))
    return commands


def sets_to_check(app: str, day: str, window: int, now: float) -> list[str]:
    """The sets that may hold an id recorded within `window` before `now`: one slice
    more at each end, for another process' clock (a set lives window + ID_SLICE)."""
    first, last = record_slice(now - window) - 1, record_slice(now) + 1
    return [keys.first_send_ids(app, day, piece) for piece in range(first, last + 1)]


async def admit(
    redis: aioredis.Redis, resent: list[Hit], token: str, window: int, calendar: Calendar, now: float | None = None
) -> list[Hit]:
    """The re-sent hits to count: the first of each id (per app and day), if no other send
    of it counted within `window` seconds before `now` (by default, this moment)."""
    now = time.time() if now is None else now
    by_slot: dict[tuple[str, str], dict[str, Hit]] = {}
    for hit in resent:
        by_slot.setdefault((hit.app, day_of(calendar, hit.minute)), {}).setdefault(hit.event_id, hit)
    checked: list[Hit] = []
    async with redis.pipeline(transaction=False) as pipe:
        for (app, day), first_of_id in by_slot.items():
            sets = sets_to_check(app, day, window, now)
            hits = list(first_of_id.values())
            for start in range(0, len(hits), ADMIT_IDS):
                chunk = hits[start : start + ADMIT_IDS]
                id_keys = [keys.event_id(app, day, hit.event_id) for hit in chunk]
                pipe.eval(ADMIT_LUA, len(sets) + len(chunk), *sets, *id_keys, token, window, len(sets),
                          *(hit.event_id for hit in chunk))
                checked += chunk
        verdicts = [verdict for reply in await pipe.execute() for verdict in reply]
    return [hit._replace(resent=0) for hit, admitted in zip(checked, verdicts, strict=True) if admitted]
