"""The registry in a real Redis: life cycle, key rotation, version, audit, pending cap, races."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
from conftest import FakeClock
from redis.crc import key_slot
from test_registry_model import application

from collector.registry.application import parse_application
from collector.registry.model import TransitionError
from collector.registry.store import AlreadyExists, NotFound, RegistryStore, TooManyPending
from collector.store import keys


@pytest.fixture
async def store(redis_url):
    client = aioredis.from_url(redis_url)
    yield RegistryStore(client, FakeClock(1_800_000_000.0))
    await client.aclose()


async def test_life_cycle_issues_keys_and_bumps_the_version(store):
    assert (await store.load_all()).version == 0
    await store.apply(parse_application(application()), "test")
    issued = await store.act("zjer", "approve", "admin:lead", "checked with the province")
    key = issued.app_key
    assert issued.platform.state == "approved" and issued.kit_token.startswith("ebk_")
    assert issued.platform.kit_token_sha256 and issued.kit_token not in str(issued.platform.as_dict())
    assert await store.platform_id_for_key(key) == "zjer"
    for action, state in (("activate", "active"), ("suspend", "suspended"), ("resume", "active"), ("revoke", "revoked")):
        assert (await store.act("zjer", action, "admin:lead")).platform.state == state
    snapshot = await store.load_all()
    assert snapshot.version == 6
    # A revoked platform keeps its key indexed, so the hit path can name the reason.
    assert snapshot.platform_for_key(key, store.clock()).state == "revoked"


async def test_invalid_transitions_and_unknown_platforms_are_refused(store):
    await store.apply(parse_application(application()), "test")
    with pytest.raises(TransitionError, match="cannot activate"):
        await store.act("zjer", "activate", "t")
    with pytest.raises(AlreadyExists):
        await store.apply(parse_application(application()), "test")
    with pytest.raises(NotFound):
        await store.act("nope", "approve", "t")
    await store.act("zjer", "reject", "t", "not an education platform")
    with pytest.raises(TransitionError, match="it is rejected"):
        await store.act("zjer", "approve", "t")
    with pytest.raises(TransitionError, match="rotate-key"):
        await store.rotate_key("zjer", "t", 60)
    assert (await store.load_all()).version == 2  # refusals change nothing


async def test_rotated_key_stays_valid_for_the_overlap_only(store):
    await store.apply(parse_application(application()), "t")
    old = (await store.act("zjer", "approve", "t")).app_key
    new = (await store.rotate_key("zjer", "t", overlap=3600)).app_key
    assert new != old
    snapshot = await store.load_all()
    assert snapshot.platform_for_key(new, store.clock()).id == "zjer"
    store.clock.advance(3599)
    assert snapshot.platform_for_key(old, store.clock()).id == "zjer"
    store.clock.advance(1)
    assert snapshot.platform_for_key(old, store.clock()) is None
    assert snapshot.platform_for_key(new, store.clock()).id == "zjer"
    # The next change of the platform drops the expired key from the record and the index.
    await store.act("zjer", "activate", "t")
    assert await store.platform_id_for_key(old) is None
    assert (await store.get("zjer")).retired_keys == ()


async def test_every_change_is_audited_with_who_and_states(store, rds):
    await store.apply(parse_application(application()), "apply:10.0.0.1")
    await store.act("zjer", "approve", "admin:lead", "ok")
    await store.rotate_key("zjer", "admin:lead", 60)
    await store.act("zjer", "revoke", "cli:ops", "contract ended")
    entries = await store.audit()
    assert [(e["action"], e["actor"], e["before"], e["after"]) for e in entries] == [
        ("revoke", "cli:ops", "approved", "revoked"),
        ("rotate-key", "admin:lead", "approved", "approved"),
        ("approve", "admin:lead", "applied", "approved"),
        ("apply", "apply:10.0.0.1", "", "applied"),
    ]
    assert entries[0]["detail"] == {"note": "contract ended"} and entries[0]["at"] == store.clock()
    assert len(await store.audit(platform_id="other")) == 0
    # Capped: XADD MAXLEN keeps the stream bounded.
    assert rds.xinfo_stream(keys.REGISTRY_AUDIT)["length"] == 4


async def test_pending_applications_are_capped(store):
    for i in range(3):
        await store.apply(parse_application(application(id=f"p{i}")), "t", max_pending=3)
    with pytest.raises(TooManyPending):
        await store.apply(parse_application(application(id="p3")), "t", max_pending=3)
    await store.act("p0", "reject", "t")
    await store.apply(parse_application(application(id="p3")), "t", max_pending=3)


async def test_concurrent_changes_cannot_both_win(store, redis_url):
    """Two admins approve at once: exactly one succeeds, one key is issued."""
    await store.apply(parse_application(application()), "t")
    clients = [aioredis.from_url(redis_url) for _ in range(8)]
    try:
        results = await asyncio.gather(*(RegistryStore(c).act("zjer", "approve", f"a{i}") for i, c in enumerate(clients)),
                                       return_exceptions=True)
    finally:
        for c in clients:
            await c.aclose()
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert all(isinstance(r, TransitionError) for r in results if isinstance(r, Exception))
    assert len([e for e in await store.audit() if e["action"] == "approve"]) == 1


async def test_all_registry_keys_share_one_cluster_slot(store, rds):
    await store.apply(parse_application(application()), "t")
    await store.act("zjer", "approve", "t")
    await store.create_admin_token("lead", "t")
    names = [k.decode() for k in rds.keys("eb:*")]
    assert names and all("{registry}" in name for name in names)
    assert len({key_slot(n.encode()) for n in names}) == 1


async def test_admin_tokens_are_stored_hashed(store, rds):
    token = await store.create_admin_token("lead", "t")
    assert await store.admin_token_name(token) == "lead"
    assert await store.admin_token_name(token[:-1]) is None
    assert await store.admin_token_name("") is None
    assert token.encode() not in b"".join(k + v for k, v in rds.hgetall(keys.REGISTRY_ADMIN_TOKENS).items())


async def test_demo_goes_only_into_an_empty_registry(store):
    demo = await store.register_demo("serve")
    assert (demo.id, demo.app_key, demo.state, demo.environment) == ("demo", "demo", "active", "test")
    assert set(demo.domains) == {"localhost", "127.0.0.1"}
    assert await store.register_demo("serve") is None
