"""The registry in Redis: records, the app-key index, the version counter, the audit log.

Every change is one optimistic transaction: WATCH the version counter, read, decide,
then MULTI the new record, the key index, the pending set, the version bump and the
audit entry together. Every change bumps the version, so two concurrent changes can
never both commit on a stale read: the loser's EXEC fails and it decides again.
All keys share the hash tag {registry} (store/keys.py), so this works on Redis Cluster.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError, WatchError

from collector.registry import credentials
from collector.registry.groups import GroupRef, NamedSet, check_set, every_group, resolve, series_of
from collector.registry.model import (
    ACTIVE,
    APPLIED,
    KEYED_STATES,
    REVOKED,
    Contact,
    Platform,
    RegistrySnapshot,
    RetiredKey,
    Scope,
    TransitionError,
    next_state,
)
from collector.store import keys

# What a registry read or write raises when Redis cannot be reached (for callers that
# must not import redis themselves: the layer rule).
UNAVAILABLE = (RedisError, OSError)

DEMO_ID = "demo"
DEMO_APP_KEY = "demo"  # the README's "Try it" sends k=demo


class NotFound(LookupError):
    pass


class AlreadyExists(ValueError):
    pass


class TooManyPending(RuntimeError):
    pass


@dataclass(frozen=True)
class Issued:
    """A change's result, with the secrets it issued: shown once, never stored in clear."""

    platform: Platform
    app_key: str | None = None
    kit_token: str | None = None
    read_token: str | None = None


@dataclass(frozen=True)
class ReadCredential:
    """Who a read-API token belongs to: an admin (every platform) or one platform."""

    admin: str | None = None  # the admin token's name
    platform_id: str | None = None


def encode(platform: Platform) -> bytes:
    return orjson.dumps(platform.as_dict())


def decode(raw: bytes | str) -> Platform:
    return Platform.from_dict(orjson.loads(raw))


def reply_text(raw: bytes | str) -> str:
    """A reply as text: the registry's client answers bytes (redis-py types replies as either)."""
    return raw.decode() if isinstance(raw, bytes) else raw


class RegistryStore:
    def __init__(self, redis: aioredis.Redis, clock: Callable[[], float] = time.time) -> None:
        self.redis = redis
        self.clock = clock

    # ---- reading ---------------------------------------------------------------------

    async def load_all(self) -> RegistrySnapshot:
        """Every platform and the version they are at, read atomically in one round trip."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.get(keys.REGISTRY_VERSION)
            pipe.hgetall(keys.REGISTRY_PLATFORMS)
            version, records = await pipe.execute()
        return RegistrySnapshot.of(int(version or 0), (decode(raw) for raw in records.values()))

    async def version(self) -> int:
        """Cheap to poll: a worker reloads (load_all) when this moved."""
        return int(await self.redis.get(keys.REGISTRY_VERSION) or 0)

    async def get(self, platform_id: str) -> Platform:
        raw = await self.redis.hget(keys.REGISTRY_PLATFORMS, platform_id)
        if raw is None:
            raise NotFound(f"no platform {platform_id!r}")
        return decode(raw)

    async def list(self, state: str | None = None) -> list[Platform]:
        platforms = sorted((await self.load_all()).platforms.values(), key=lambda p: p.created_at)
        return [p for p in platforms if state is None or p.state == state]

    async def platform_id_for_key(self, app_key: str) -> str | None:
        raw = await self.redis.hget(keys.REGISTRY_APP_KEYS, app_key)
        return reply_text(raw) if raw else None

    # (`builtins.list`: inside this class `list` is the method above.)
    async def audit(self, limit: int = 50, platform_id: str | None = None) -> builtins.list[dict]:
        """The newest entries first; with `platform_id`, only that platform's."""
        count = limit if platform_id is None else keys.REGISTRY_AUDIT_MAXLEN
        entries = []
        # The client does not decode replies: ids, names and values are bytes (redis-py
        # types an XREVRANGE reply as Optional all the way down).
        rows = cast("builtins.list[tuple[bytes, dict[bytes, bytes]]]", await self.redis.xrevrange(keys.REGISTRY_AUDIT, count=count))
        for entry_id, fields in rows:
            entry: dict[str, Any] = {k.decode(): v.decode() for k, v in fields.items()}
            if platform_id is not None and entry.get("platform") != platform_id:
                continue
            entry["id"] = entry_id.decode()
            entry["at"] = float(entry["at"])
            entry["detail"] = orjson.loads(entry.get("detail") or "{}")
            entries.append(entry)
            if len(entries) >= limit:
                break
        return entries

    # ---- changing --------------------------------------------------------------------

    async def apply(self, application: Platform, actor: str, max_pending: int | None = None) -> Platform:
        """Store a new application (state `applied`); its id must be free."""

        def create(before: Platform | None, pending: int) -> Platform:
            if before is not None:
                raise AlreadyExists(f"platform id {application.id!r} is taken")
            if max_pending is not None and pending >= max_pending:
                raise TooManyPending(f"{pending} applications are waiting for review; try again later")
            now = self.clock()
            return application.replace(state=APPLIED, created_at=now, updated_at=now)

        after, _ = await self._commit(application.id, "apply", actor, create, {"name": application.name})
        return after

    async def act(self, platform_id: str, action: str, actor: str, note: str = "") -> Issued:
        """A state change (model.TRANSITIONS); `approve` issues the app key and a kit token."""
        issued: dict[str, str] = {}

        def change(before: Platform | None, pending: int) -> Platform:
            platform = _existing(before, platform_id)
            state = next_state(platform, action)
            changes = dict(state=state, note=note, updated_at=self.clock())
            if action == "approve":
                issued["app_key"] = credentials.new_app_key()
                issued["kit_token"] = credentials.new_token(credentials.KIT_TOKEN_PREFIX)
                changes.update(app_key=issued["app_key"], kit_token_sha256=credentials.token_hash(issued["kit_token"]))
            return platform.replace(**changes)

        after, _ = await self._commit(platform_id, action, actor, change, {"note": note} if note else {})
        return Issued(after, issued.get("app_key"), issued.get("kit_token"))

    async def rotate_key(self, platform_id: str, actor: str, overlap: float) -> Issued:
        """A new app key; the old one stays valid for `overlap` seconds, then belongs to nobody."""
        new_key = credentials.new_app_key()

        def change(before: Platform | None, pending: int) -> Platform:
            platform = _existing(before, platform_id)
            if platform.state not in KEYED_STATES:
                raise TransitionError(
                    f"cannot rotate-key platform {platform_id!r}: it is {platform.state}; "
                    f"only {', '.join(sorted(KEYED_STATES))} platforms hold a key"
                )
            now = self.clock()
            retired = (*platform.retired_keys, RetiredKey(platform.app_key, now + overlap))
            return platform.replace(app_key=new_key, retired_keys=retired, updated_at=now)

        after, _ = await self._commit(platform_id, "rotate-key", actor, change, {"overlap_s": overlap})
        return Issued(after, app_key=new_key)

    async def reissue_kit_token(self, platform_id: str, actor: str) -> Issued:
        """A new kit token (the old one stops working at once): for a lost or leaked one."""
        token = credentials.new_token(credentials.KIT_TOKEN_PREFIX)

        def change(before: Platform | None, pending: int) -> Platform:
            platform = _existing(before, platform_id)
            if platform.state not in KEYED_STATES:
                raise TransitionError(f"platform {platform_id!r} is {platform.state}: it has no kit")
            return platform.replace(kit_token_sha256=credentials.token_hash(token), updated_at=self.clock())

        after, _ = await self._commit(platform_id, "kit-token", actor, change, {})
        return Issued(after, kit_token=token)

    async def issue_read_token(self, platform_id: str, actor: str) -> Issued:
        """A new read token for the platform's own figures (the old one stops working at once)."""
        token = credentials.new_token(credentials.READ_TOKEN_PREFIX)

        def change(before: Platform | None, pending: int) -> Platform:
            platform = _existing(before, platform_id)
            if platform.state not in KEYED_STATES:
                raise TransitionError(f"platform {platform_id!r} is {platform.state}: only an approved, active "
                                      f"or suspended platform gets a read token")
            return platform.replace(read_token_sha256=credentials.token_hash(token), updated_at=self.clock())

        after, _ = await self._commit(platform_id, "read-token", actor, change, {})
        return Issued(after, read_token=token)

    async def register_demo(self, actor: str) -> Platform | None:
        """The README's `demo` platform (key `demo`, test traffic), only into an empty registry."""

        def create(before: Platform | None, pending: int) -> Platform:
            now = self.clock()
            return Platform(
                id=DEMO_ID, name="演示平台 demo", type="resource", org="edu-beacon", region="110000",
                domains=("localhost", "127.0.0.1"), environment="test",
                scope=Scope(True, True, ("click", "custom", "engagement", "exposure", "interaction", "media", "pageview")),
                contact=Contact("edu-beacon", "demo@localhost.invalid"), state=ACTIVE, app_key=DEMO_APP_KEY,
                # Counted and flagged, not refused, off localhost: people try it on pages of
                # their own hosts, and the README's hand-made hits name www.zjer.cn.
                foreign_origin="flag",
                created_at=now, updated_at=now, note="registered on the first embedded start",
            )

        try:
            after, _ = await self._commit(DEMO_ID, "register-demo", actor, create, {}, only_if_empty=True)
        except AlreadyExists:
            return None
        return after

    async def _commit(self, platform_id: str, action: str, actor: str, change, detail: dict, only_if_empty: bool = False):
        """Read the record, let `change(before, pending_count)` decide, write it all at once."""
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(keys.REGISTRY_VERSION)
                    if only_if_empty and await pipe.hlen(keys.REGISTRY_PLATFORMS):
                        raise AlreadyExists("the registry is not empty")
                    raw = await pipe.hget(keys.REGISTRY_PLATFORMS, platform_id)
                    before = decode(raw) if raw else None
                    after = change(before, await pipe.scard(keys.REGISTRY_PENDING))
                    after = _prune_retired(after, self.clock())
                    pipe.multi()
                    self._write(pipe, before, after, action, actor, detail)
                    await pipe.execute()
                    return after, before
                except WatchError:
                    continue

    def _write(self, pipe, before: Platform | None, after: Platform, action: str, actor: str, detail: dict) -> None:
        pipe.hset(keys.REGISTRY_PLATFORMS, after.id, encode(after))
        gone = set(before.keys() if before else ()) - set(after.keys())
        if gone:
            pipe.hdel(keys.REGISTRY_APP_KEYS, *gone)
        # Revoked platforms keep their keys indexed: the hit path can then say "revoked"
        # instead of "unknown key", which tells the platform's developers what happened.
        for app_key in after.keys():
            pipe.hset(keys.REGISTRY_APP_KEYS, app_key, after.id)
        self._index_read_token(pipe, before, after)
        if after.state == APPLIED:
            pipe.sadd(keys.REGISTRY_PENDING, after.id)
        else:
            pipe.srem(keys.REGISTRY_PENDING, after.id)
        pipe.incr(keys.REGISTRY_VERSION)
        self._audit(pipe, action, actor, after.id, before.state if before else "", after.state, detail)

    @staticmethod
    def _index_read_token(pipe, before: Platform | None, after: Platform) -> None:
        """Keep the read-token index in step: a reissued token replaces the old one, and a
        revoked platform's token stops opening anything."""
        old = before.read_token_sha256 if before else ""
        new = after.read_token_sha256 if after.state != REVOKED else ""
        if old and old != new:
            pipe.hdel(keys.REGISTRY_READ_TOKENS, old)
        if new:
            pipe.hset(keys.REGISTRY_READ_TOKENS, new, after.id)

    def _audit(self, pipe, action: str, actor: str, platform_id: str, before: str, after: str, detail: dict) -> None:
        entry = {
            "at": repr(self.clock()), "actor": actor[:128], "action": action, "platform": platform_id,
            "before": before, "after": after, "detail": orjson.dumps(detail),
        }
        pipe.xadd(keys.REGISTRY_AUDIT, entry, maxlen=keys.REGISTRY_AUDIT_MAXLEN, approximate=True)

    # ---- named sets of platforms (groups set:NAME, registry/groups.py) ----------------

    async def sets(self) -> dict[str, NamedSet]:
        records = await self.redis.hgetall(keys.REGISTRY_GROUPS)
        return {reply_text(name): NamedSet.from_dict(orjson.loads(raw)) for name, raw in records.items()}

    async def group(self, group_id: str) -> tuple[GroupRef, builtins.list[str]]:
        """The group (groups.resolve: BadGroup when malformed or an unknown set) and the
        series its counts are stored under."""
        snapshot, sets = await self._snapshot_and_sets()
        group = resolve(group_id, snapshot, sets)
        return group, series_of(group, snapshot)

    async def groups(self) -> builtins.list[GroupRef]:
        return every_group(*await self._snapshot_and_sets())

    async def _snapshot_and_sets(self) -> tuple[RegistrySnapshot, dict[str, NamedSet]]:
        return await self.load_all(), await self.sets()

    async def save_set(self, name: str, title: str, platforms: builtins.list[object], actor: str) -> NamedSet:
        """Create or replace the set `name` (BadGroup when malformed); its platforms need not
        exist yet: a set names what an authority oversees, possibly before it registers."""
        title, members = check_set(name, title, platforms)
        before = await self.redis.hget(keys.REGISTRY_GROUPS, name)
        now = self.clock()
        created = NamedSet.from_dict(orjson.loads(before)).created_at if before else now
        named = NamedSet(name, title, members, created, now, actor[:128])
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.REGISTRY_GROUPS, name, orjson.dumps(named.as_dict()))
            pipe.incr(keys.REGISTRY_VERSION)
            self._audit(pipe, "set-save", actor, "", "", "", {"set": name, "platforms": len(members)})
            await pipe.execute()
        return named

    async def delete_set(self, name: str, actor: str) -> bool:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hdel(keys.REGISTRY_GROUPS, name)
            pipe.incr(keys.REGISTRY_VERSION)
            self._audit(pipe, "set-delete", actor, "", "", "", {"set": name})
            deleted, _, _ = await pipe.execute()
        return bool(deleted)

    # ---- admin tokens ----------------------------------------------------------------

    async def create_admin_token(self, name: str, actor: str) -> str:
        """A new admin token; only its SHA-256 is stored, so this is the one time it is seen."""
        token = credentials.new_token(credentials.ADMIN_TOKEN_PREFIX)
        record = orjson.dumps({"name": name, "created_at": self.clock()})
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.REGISTRY_ADMIN_TOKENS, credentials.token_hash(token), record)
            self._audit(pipe, "admin-token", actor, "", "", "", {"name": name})
            await pipe.execute()
        return token

    async def admin_tokens(self) -> builtins.list[dict]:
        records = await self.redis.hgetall(keys.REGISTRY_ADMIN_TOKENS)
        return sorted((orjson.loads(v) for v in records.values()), key=lambda r: r["created_at"])

    async def admin_token_name(self, token: str) -> str | None:
        """The name of the admin token `token` is, or None (compared in constant time)."""
        records = await self.redis.hgetall(keys.REGISTRY_ADMIN_TOKENS)
        found = credentials.token_matches(token, [reply_text(h) for h in records])
        return orjson.loads(records[found.encode()])["name"] if found else None


    async def read_credential(self, token: str) -> ReadCredential | None:
        """Whose token `token` is, admin or one platform's read token, or None.

        Both kinds are checked in one round trip and with one comparison each
        (credentials.token_matches), so the time taken tells nothing of which kind matched.
        """
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.REGISTRY_ADMIN_TOKENS)
            pipe.hgetall(keys.REGISTRY_READ_TOKENS)
            admins, readers = await pipe.execute()
        found = credentials.token_matches(token, [h.decode() for h in (*admins, *readers)])
        if found is None:
            return None
        if found.encode() in admins:
            return ReadCredential(admin=orjson.loads(admins[found.encode()])["name"])
        return ReadCredential(platform_id=readers[found.encode()].decode())

    async def any_read_credential(self) -> bool:
        """Whether any admin or platform read token exists (for the startup warning)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hlen(keys.REGISTRY_ADMIN_TOKENS)
            pipe.hlen(keys.REGISTRY_READ_TOKENS)
            return any(await pipe.execute())


def _existing(before: Platform | None, platform_id: str) -> Platform:
    if before is None:
        raise NotFound(f"no platform {platform_id!r}")
    return before


def _prune_retired(platform: Platform, now: float) -> Platform:
    """Retired keys past their overlap leave the record (and so the key index)."""
    kept = tuple(r for r in platform.retired_keys if now < r.until)
    return platform if len(kept) == len(platform.retired_keys) else platform.replace(retired_keys=kept)
