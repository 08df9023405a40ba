"""The flush script, made cheaper for Redis (issue 17, session 26), leaves exactly the data
the script of session 25 left (tests/data/apply_flush_session25.lua: apply_flush.lua
with media_sessions.lua, as main had them at 40330f0) for the same calls: realistic POST-50
batches (bench.redis_instructions builds them as the flusher does, media sessions, first
sends' id sets and touched records included), each key's value (DEBUG DIGEST-VALUE:
hashes, HyperLogLog bytes, sets) and expiry compared. The argument format is unchanged,
so the reference script takes the very same calls."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import redis

from bench import redis_instructions
from bench.flush_cpu import _data_digest

REFERENCE = Path(__file__).parent / "data" / "apply_flush_session25.lua"


def _applied(rds, script: str, packed: list[list[bytes]], sha: str) -> str:
    """The digest of the data the calls leave, applied by `script` (its SHA put in place of `sha`)."""
    rds.flushall()
    loaded = rds.script_load(script).encode()
    connection = rds.connection_pool.get_connection()
    try:
        for commands in packed:
            connection.send_packed_command([command.replace(sha, loaded) for command in commands])
            for _ in commands:
                connection.read_response()  # an error reply raises
    finally:
        rds.connection_pool.release(connection)
    assert rds.dbsize() > 100
    return _data_digest(rds)


def test_the_script_leaves_the_data_of_session_25s_for_realistic_post50_batches(redis_url, tmp_path):
    rds = redis.Redis.from_url(redis_url, decode_responses=True)  # as bench.flush_cpu's digest reads
    out = tmp_path / "built.pickle"
    redis_instructions.build(out, apps=4, batch=2000, batches=2)
    built = pickle.loads(out.read_bytes())
    sha = hashlib.sha1(built["script"].encode()).hexdigest().encode()
    assert any(b"\r\n$1\r\ns\r\n" in command for commands in built["packed"] for command in commands)  # sessions sent
    now = _applied(rds, built["script"], built["packed"], sha)
    assert now == _applied(rds, REFERENCE.read_text(encoding="utf-8"), built["packed"], sha)
