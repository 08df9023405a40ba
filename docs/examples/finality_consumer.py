"""Reading rollups safely: a downstream job that reads a bucket once it is final.

读取汇总的安全方式：下游任务只在桶已终结后读取它。

The collector appends every bucket that became final — no event can still be added to
it — to the stream `eb:{finality}:closed` (docs/redis-keys.md, "Reading rollups
safely"). A job reads the stream in a consumer group: each entry is delivered to one
consumer of the group, stays pending until acknowledged (XACK), and is delivered
again to a consumer that restarts before acknowledging it. So a job that crashes
half way loses nothing: it first takes back its own pending entries, then new ones.

    python docs/examples/finality_consumer.py --redis redis://localhost:6379/0 \
        --group daily-report --granularity day

prints one JSON line per final bucket: app, granularity, bucket, and its counters.
Only the `redis` package is needed; nothing of the collector.
"""

from __future__ import annotations

import argparse
import json
import time

import redis

STREAM = "eb:{finality}:closed"


def bucket_prefix(app: str, granularity: str, bucket: str) -> str:
    """The keys of one bucket (docs/redis-keys.md): month keys are tagged by the month."""
    period = bucket if granularity == "month" else bucket[:8]
    return f"eb:{{{app}|{period}}}:{granularity}:{bucket}"


def ensure_group(r: redis.Redis, group: str, start: str) -> None:
    """The consumer group, created at `start` ('0': every entry the stream still holds,
    '$': only those appended from now on) unless it exists."""
    try:
        r.xgroup_create(STREAM, group, id=start, mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def handle(r: redis.Redis, entry: dict[str, str]) -> dict:
    """The job's work for one final bucket: here, read its counters."""
    counters = r.hgetall(bucket_prefix(entry["app"], entry["granularity"], entry["bucket"]) + ":c")
    return {**entry, "counters": {field: int(value) for field, value in counters.items()}}


def consume(r: redis.Redis, group: str, consumer: str, granularities: set[str], until: float, most: int) -> int:
    done = 0
    cursor = "0"  # first our own entries left pending by an earlier run, then new ones ('>')
    while time.time() < until and done < most:
        reply = r.xreadgroup(group, consumer, {STREAM: cursor}, count=100, block=200)
        entries = reply[0][1] if reply else []
        if cursor == "0" and not entries:
            cursor = ">"
            continue
        for entry_id, entry in entries:
            if entry["granularity"] in granularities:
                print(json.dumps(handle(r, entry), ensure_ascii=False), flush=True)
                done += 1
            r.xack(STREAM, group, entry_id)  # after the work: a crash before it redelivers the entry
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", default="redis://localhost:6379/0")
    parser.add_argument("--group", default="example-job")
    parser.add_argument("--consumer", default="consumer-1")
    parser.add_argument("--start", default="0", help="where a new group starts: 0 (all kept) or $ (new only)")
    parser.add_argument("--granularity", action="append", help="minute, hour, day, month (repeatable; default all)")
    parser.add_argument("--max", type=int, default=1 << 62, help="stop after this many buckets")
    parser.add_argument("--timeout", type=float, default=float("inf"), help="stop after this many seconds")
    args = parser.parse_args()
    r = redis.Redis.from_url(args.redis, decode_responses=True)
    ensure_group(r, args.group, args.start)
    granularities = set(args.granularity or ("minute", "hour", "day", "month"))
    consume(r, args.group, args.consumer, granularities, time.time() + args.timeout, args.max)


if __name__ == "__main__":
    main()
