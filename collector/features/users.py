"""Logged-in users (`uid`): distinct users (a HyperLogLog of the uid hashed like an
address, under the day's and the month's salt) and the page views they made."""

from __future__ import annotations

from collector.features.facts import DeepFacts
from collector.features.reading import BucketReading
from collector.store import keys

# A visitor's uid goes into the users HLL hashed like an address: under the day's and
# month's salt, with this marker in place of the IP, which no IP can equal.
USER_MARK = "\x00uid"
HLLS = (keys.USERS,)


def count(facts: DeepFacts, etype: str, user: tuple[bytes, bytes]) -> None:
    """`user`: the user's keys under the day's and the month's salt (see USER_MARK)."""
    facts.members.append((keys.USERS, user[0].hex(), user[1].hex()))
    if etype == "pageview":
        facts.total("pv_logged_in")


def figures(reading: BucketReading) -> dict:
    """The `users` figures of a bucket or range."""
    pv = reading.counters.get("pv", 0)
    logged_in_pv = reading.counters.get("pv_logged_in", 0)
    return {
        "logged_in": reading.hlls[keys.USERS],
        "pv_logged_in": logged_in_pv,
        "pv_anonymous": max(pv - logged_in_pv, 0),
    }
