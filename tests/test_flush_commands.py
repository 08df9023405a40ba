"""The commands a flush sends to Redis: one script call per hash slot, whatever it records.

A flush's first sends' event ids (store/dedupe.py) ride in the script call of their
slot (the app's and day's), and the buckets it touched (store/finality.py) go in one
call for every granularity: each separate command would be one more dispatch and reply
for Redis, per slot and per flush. Counted on a real redis-server with MONITOR, the only
place that tells a command a client sent from one a script ran (INFO commandstats
counts both alike).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Awaitable, Callable

from redis.crc import key_slot
from test_flush_bounds import MINUTE, a_hit

from collector.store import dedupe, keys, redis_client
from collector.store.aggregate import Aggregator
from collector.store.buckets import GRANULARITIES, Calendar
from collector.store.flusher import FIRST_SEQ, Flusher
from collector.store.journal import Journal, encode_hit
from collector.store.rollup import RollupBuilder

CALENDAR = Calendar("Asia/Shanghai")
TTLS = {"minute": 0, "hour": 0, "day": 0, "month": 0}
DAY = CALENDAR.buckets_of_minute(MINUTE)[2].id
APPS = [f"cmd{i:02d}" for i in range(12)]
END = "flush-commands-end"


async def sent_by_clients(rds, action: Callable[[], Awaitable[object]]) -> list[tuple[str, ...]]:
    """The commands clients sent while `action` ran (MONITOR; a script's own are left out)."""
    seen: list[tuple[str, ...]] = []
    with rds.monitor() as monitor:
        def record() -> None:
            while True:
                entry = monitor.next_command()
                command = tuple(entry["command"].split(" "))
                if command == ("ECHO", END):
                    return
                if entry.get("client_type") != "lua":
                    seen.append(command)

        reader = threading.Thread(target=record, daemon=True)
        reader.start()
        await action()
        rds.echo(END)
        reader.join(20)
    return seen


def hits_with_ids(per_app: int) -> Aggregator:
    aggregator = Aggregator()
    for app in APPS:
        for n in range(per_app):
            aggregator.count(a_hit(app, n)._replace(event_id=f"{app}-{n}"))
    return aggregator


def flusher(client, aggregator: Aggregator, journal: Journal | None = None, writer: str = "w-cmds") -> Flusher:
    return Flusher(client, aggregator, RollupBuilder(CALENDAR, TTLS), 1.0, journal, writer=writer, dedupe_window=3600,
                   record_touched=GRANULARITIES)


def recorded_ids(rds, app: str) -> set[str]:
    found: set[str] = set()
    for key in rds.scan_iter(keys.first_send_ids(app, DAY, 0).rsplit(":", 1)[0] + ":*"):
        found |= {member.decode() for member in rds.smembers(key)}
    return found


async def test_a_flush_sends_one_command_per_slot_with_the_ids_and_touched_buckets_in_script_calls(redis_url, rds):
    client = redis_client.connect(redis_url)
    try:
        writer = flusher(client, hits_with_ids(1500))  # more ids per app than one SADD took (dedupe.RECORD_IDS)
        writer._known_apps = set(APPS)  # no SADD of new apps: this counts what every flush sends
        sent = await sent_by_clients(rds, writer.flush)
    finally:
        await client.aclose()
    flush_commands = [c for c in sent if c[0] not in ("SCRIPT", "CLIENT", "HELLO")]
    by_slot = Counter(key_slot((c[3] if c[0] in ("EVALSHA", "EVAL") else c[1]).strip('"').encode()) for c in flush_commands)
    # A day's slot and a month's per app, and {finality}: one command each.
    assert len(by_slot) == 2 * len(APPS) + 1, Counter(c[0] for c in flush_commands)
    assert set(by_slot.values()) == {1}, Counter(c[0] for c in flush_commands)
    assert {c[0] for c in flush_commands} == {"EVALSHA", "EVAL"}
    # And they did what the separate commands did: the ids in their sets, the buckets recorded.
    for app in APPS:
        assert recorded_ids(rds, app) == {f"{app}-{n}" for n in range(1500)}
    for gran in GRANULARITIES:
        assert rds.zcard(keys.finality_touched(gran)) == len(APPS)
    ttls = [rds.ttl(key) for key in rds.scan_iter("eb:*:ids:*")]
    assert ttls and all(3600 < ttl <= 3600 + dedupe.ID_SLICE for ttl in ttls)


async def test_a_batch_left_by_a_collector_that_recorded_ids_apart_has_them_recorded_on_replay(tmp_path, redis_url, rds):
    """A collector before the ids rode in the script calls crashed after its calls landed
    and before its SADDs: replayed by this one, those calls are skipped by their
    sequence markers, and the ids are still recorded."""
    journal = Journal(tmp_path)
    journal.open()
    journal.begin("w-previous", FIRST_SEQ)
    for app in APPS[:3]:
        journal.append(b"".join(encode_hit(a_hit(app, n)._replace(event_id=f"{app}-{n}")) for n in range(5)))
    journal.close()
    for app in APPS[:3]:  # its calls landed (a marker far beyond this batch's numbers)
        for tag in (keys.slot_tag(app, "day", DAY), keys.slot_tag(app, "month", DAY[:6])):
            rds.set(keys.flush_sequence(tag, "w-previous"), 10**12)
    again = Journal(tmp_path)
    leftovers = again.open()
    again.begin("w-next", FIRST_SEQ)
    client = redis_client.connect(redis_url)
    try:
        writer = flusher(client, Aggregator(), again, writer="w-next")
        writer.recover(leftovers)
        assert await writer.flush()
    finally:
        again.close()
        await client.aclose()
    for app in APPS[:3]:
        assert recorded_ids(rds, app) == {f"{app}-{n}" for n in range(5)}
        assert not rds.exists(keys.counters(app, "day", DAY))  # the counts had landed: not again


def test_a_slots_calls_hold_the_same_writes_whatever_the_order_of_its_ids_and_fields():
    """A slot's first sends' ids are a set's (dedupe.first_sends_by_slot, unsorted), and an
    'h' group's fields come in their dict's order (a rebuild from the journal may fill it
    in another): the calls made of them must not depend on that order, or a batch rebuilt
    from its journal would put other writes into the calls its sequence marker skips, and
    lose them. Up to a call's worth they are one piece of one call (the same call, the same
    writes in another order: HINCRBY and SADD, which no order changes); more are sorted by
    encode_calls, so each call holds the same ones."""
    import random

    from collector.store.flush_calls import CALL_ARGS, encode_calls
    from collector.store.rollup import BucketDeltas, SlotWrites

    draw = random.Random(24)
    writes = RollupBuilder(CALENDAR, TTLS).build(hits_with_ids(40).drain())[0]  # a slot's counts before the rest
    prefixes = next(iter(writes.buckets))
    for count in (1, 5_000, CALL_ARGS // 2 - 20, CALL_ARGS - 3, CALL_ARGS, CALL_ARGS + 1, 2 * CALL_ARGS + 7):
        ids = [f"{draw.getrandbits(64):016x}" for _ in range(count)]
        fields = {f"f{draw.getrandbits(64):016x}": n for n in range(count // 2 + 1)}
        for slot in (writes, SlotWrites(writes.tag)):
            made = []
            for order in (ids, ids[::-1], draw.sample(ids, len(ids))):
                shuffled = dict(draw.sample(list(fields.items()), len(fields)))
                with_fields = SlotWrites(slot.tag, dict(slot.buckets))
                with_fields.buckets[prefixes] = BucketDeltas({**slot.buckets.get(prefixes, BucketDeltas({}, {})).fields,
                                                             "zz:extra": shuffled}, {})
                record = dedupe.FirstSends("eb:ids", 60, order)
                made.append([(script_keys, args[:2], Counter(map(str, args[2:])))
                             for script_keys, args in encode_calls(with_fields, "w", 1, first_sends=record)])
            assert made[0] == made[1] == made[2], count
            assert sum(len(call[2]) for call in made[0]) > count + len(fields)
