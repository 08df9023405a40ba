"""Sending a flush's commands to a Redis Cluster (redis_url `redis+cluster://…`).

The flusher's commands are script calls, each on the keys of one slot, and a SADD. On a
single Redis they go out as one packed pipeline (redis_client.send_packed); on a
cluster this module routes them, with three rules that keep the flush exact:

- Per slot, in order, one call in flight. A slot's calls of one flush are numbered in
  order and the script skips any call at or below the slot's marker (apply_flush.lua).
  If call k failed (TRYAGAIN during a slot migration, a node gone) while call k+1 of the
  same slot applied, the retry would skip k for good. So the commands go in waves: wave
  k holds the k-th command of each slot, and a wave starts only once the previous one
  was applied everywhere.
- No redirection is followed here. A MOVED, ASK, TRYAGAIN, CLUSTERDOWN or connection
  error fails the round trip; the slot map is refreshed and the flusher retries the
  same part with the same sequence numbers later (backing off), and every slot that
  already applied a call skips it. That is the flusher's ordinary retry, so a migration
  or a failover needs no path of its own.
- Replicated before done. After its calls, each master is sent `WAIT replicas timeout`
  on the same connection: the batch is taken off the journal only once a replica holds
  it too, so a master killed right after answering cannot take acknowledged hits with
  it (Redis replicates asynchronously; the replica that is promoted has what WAIT
  confirmed). A master without any replica online (after a failover, until the old
  master comes back as a replica) cannot do better than itself, so it is not waited for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import cast

from redis.asyncio.cluster import ClusterNode, PipelineCommand, RedisCluster
from redis.exceptions import AskError, ClusterDownError, MovedError, RedisError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from collector.store.redis_client import Arg, Command

# How long a master waits for its replica to confirm a round trip's writes (ms). A
# replica on the same network confirms in about a millisecond; one that takes longer
# than this fails the round trip, which is then retried like any other failure.
WAIT_TIMEOUT_MS = 1000


class ReplicationLag(RedisError):
    """A master's replica did not confirm the writes within WAIT_TIMEOUT_MS."""


def command_key(command: Command) -> Arg:
    """The key a command is routed by: EVALSHA sha numkeys KEY… (EVAL alike), or CMD KEY …."""
    return command[3] if command[0] in ("EVALSHA", "EVAL") else command[1]


def waves(commands: Iterable[Command], slot_of: Callable[[Arg], int]) -> list[list[Command]]:
    """Wave k: the k-th flush script call (EVALSHA) of each slot, in the order given.
    Other commands (SADD, the first sends' ids, the touched buckets) are idempotent and
    carry no sequence number: they go in the first wave, whatever their slot."""
    sent: dict[int, int] = {}
    out: list[list[Command]] = [[]]
    for command in commands:
        k = 0
        if command[0] == "EVALSHA":
            slot = slot_of(command_key(command))
            k = sent[slot] = sent.get(slot, -1) + 1
        if k == len(out):
            out.append([])
        out[k].append(command)
    return out


class ClusterSender:
    """Sends flush round trips to a cluster; after a failure that may mean a new topology,
    the next round trip starts by asking the cluster for its slot map again."""

    def __init__(self, client: RedisCluster, replicas: int) -> None:
        self.client = client
        self.replicas = replicas
        self._stale = False
        # Replicas online per master at its last round trip (ROLE): WAIT asks for no more
        # than there are, or every round trip would last WAIT_TIMEOUT_MS.
        self._online: dict[str, int] = {}

    async def send(self, commands: list[Command], timeout: float | None) -> None:
        """Apply `commands` wave by wave; raise a RedisError if any command was not
        applied (and replicated): the caller retries the same commands later."""
        try:
            async with asyncio.timeout(timeout):
                if self._stale:
                    await self.client.nodes_manager.initialize()
                    self._stale = False
                await self.client.initialize()
                for wave in waves(commands, self.client.keyslot):
                    await self._send_wave(wave)
        except TimeoutError:  # asyncio's deadline
            self._stale = True
            raise RedisTimeoutError(f"cluster round trip of {len(commands)} commands took over {timeout}s") from None
        except MovedError as moved:  # the slot's new owner is named: no need to ask around
            await self.client.nodes_manager.move_slot(moved)
            raise
        except (AskError, TryAgainError, ClusterDownError, RedisConnectionError, RedisTimeoutError, OSError):
            # A migration or a failover under way, or a node gone.
            self._stale = True
            raise

    async def _send_wave(self, wave: list[Command]) -> None:
        by_node: dict[str, tuple[ClusterNode, list[Command]]] = {}
        for command in wave:
            node = self.client.nodes_manager.get_node_from_slot(self.client.keyslot(command_key(command)))
            by_node.setdefault(node.name, (node, []))[1].append(command)
        # Every node's round trip ends before a failure is raised: none is still in
        # flight when the caller retries.
        outcomes = await asyncio.gather(
            *(self._node_round_trip(node, node_commands) for node, node_commands in by_node.values()), return_exceptions=True
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    async def _node_round_trip(self, node: ClusterNode, commands: list[Command]) -> None:
        """One write to the node: the commands, then WAIT and ROLE (its online replicas)."""
        stack = [PipelineCommand(i, *command) for i, command in enumerate(commands)]
        wanted = min(self.replicas, self._online.get(node.name, self.replicas))
        if self.replicas:
            stack += [PipelineCommand(len(stack), "WAIT", wanted, WAIT_TIMEOUT_MS), PipelineCommand(len(stack) + 1, "ROLE")]
        await node.execute_pipeline(stack)
        for entry in stack:
            if isinstance(entry.result, BaseException):
                raise entry.result
        if self.replicas:
            confirmed, role = cast(int, stack[-2].result), stack[-1].result
            online = self._online[node.name] = len(role[2]) if isinstance(role, list | tuple) and len(role) > 2 else 0
            if confirmed < min(self.replicas, online):
                raise ReplicationLag(f"{node.name}: {confirmed} of {online} replicas confirmed within {WAIT_TIMEOUT_MS} ms")
