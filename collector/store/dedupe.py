"""Exactly once when a client re-sends: an event whose answer was lost is counted once.

The beacon marks an event it sends again `re=1` (docs/protocol.md) and keeps its `id`.
A first send (no `re`) is counted at once, and its flush records its id in Redis —
`SET eb:{APP|DAY}:id:ID 1 EX dedupe_window` in the slot of its app and the day of its
bucket, in the same batch as its counts (`first_send_commands`, a script per slot). A re-sent event is held
back from the counts (aggregate.py `Snapshot.resent`) until two things hold:

1. every other live writer's first sends' watermark (finality.py) has passed the
   moment the re-sent event arrived: an original that any worker received before the
   re-send is then in Redis with its id. (This writer's own earlier first sends are:
   its batches are applied in order, and a batch's first sends before its re-sends.)
   A writer that cannot catch up within `dedupe_hold_max` is not waited for longer.
2. its id is new: `SET id TOKEN NX EX window` (`ADMIT_LUA`) succeeds — or the key holds
   this batch's own TOKEN (writer:seq), which is how a batch replayed after a crash
   finds the re-sends it had admitted before.

The admitted re-sends are then counted as a flush of their own, numbered within their
batch's sequence (flusher.py `RESENT_CALLS`), so the per-slot sequence markers make
that idempotent too. A duplicate is dropped and counted as `flagged:duplicate_resend`.

The wait needs the watermarks: with `finality_interval` 0 none are published and a
re-send is checked at once (an original another worker still holds is then missed).

Not covered: an original that arrives *after* its re-send was admitted (it was still
in flight when the beacon gave up on it), and an original held by a worker that was
dead longer than `finality_writer_ttl` and replays its journal later. Both count twice.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from collector.hit.record import Hit
from collector.store import keys, redis_client
from collector.store.aggregate import Snapshot
from collector.store.buckets import Calendar

FIRST_SEND = "1"  # the value of an id recorded by a first send

# KEYS[1]: the event id's key.  ARGV: the admitting batch's token, the window (s).
# 1: count the re-sent event (its id is new, or this very batch admitted it before).
ADMIT_LUA = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then return 1 end
return 0
"""


def id_key(calendar: Calendar, app: str, minute: int, event_id: str) -> str:
    return keys.event_id(app, calendar.buckets_of_minute(minute)[2].id, event_id)


# Records the ids of first sends. KEYS: id keys of one slot (app and day). ARGV: the window.
RECORD_LUA = """
for i = 1, #KEYS do redis.call('SET', KEYS[i], '1', 'EX', ARGV[1]) end
return #KEYS
"""
RECORD_IDS = 1000  # ids per script call: one packed command instead of a thousand


def first_send_commands(snap: Snapshot, calendar: Calendar, window: int) -> list[redis_client.Command]:
    """What a later re-send of a first send is checked against: its id, kept `window`
    seconds. One script call per slot (app and day) and RECORD_IDS ids."""
    by_slot: dict[tuple[str, str], list[str]] = {}
    for app, minute, event_id in snap.event_ids:
        day = calendar.buckets_of_minute(minute)[2].id
        by_slot.setdefault((app, day), []).append(keys.event_id(app, day, event_id))
    commands: list[redis_client.Command] = []
    for slot_keys in by_slot.values():
        for start in range(0, len(slot_keys), RECORD_IDS):
            chunk = slot_keys[start : start + RECORD_IDS]
            commands.append(("EVAL", RECORD_LUA, len(chunk), *chunk, window))
    return commands


async def admit(redis: aioredis.Redis, resent: list[Hit], token: str, window: int, calendar: Calendar) -> list[Hit]:
    """The re-sent hits to count: the first of each id, if no other send of it counted."""
    unique: dict[tuple[str, int, str], Hit] = {}
    for hit in resent:
        unique.setdefault((hit.app, hit.minute, hit.event_id), hit)
    if not unique:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for app, minute, event_id in unique:
            pipe.eval(ADMIT_LUA, 1, id_key(calendar, app, minute, event_id), token, window)
        verdicts = await pipe.execute()
    return [hit._replace(resent=0) for hit, admitted in zip(unique.values(), verdicts, strict=True) if admitted]
