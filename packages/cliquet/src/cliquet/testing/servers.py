"""Private, throw-away PostgreSQL and Redis servers for fault drills: tests
that stop and restart a server start their own on a free loopback port, so
the shared servers of ``ci/services`` (used by every other test worker) are
never touched.

Each server has ``url``, ``start()``, ``stop()`` and ``cleanup()``;
:func:`private_postgresql` and :func:`private_redis` build and start one, or
skip the test (fail it when ``CI=true``) when the server binaries are missing.
:func:`private_postgresql_pair` starts a primary and its streaming replica
(:class:`PrivatePostgreSQLPair`), :func:`private_redis_cluster` a Redis
Cluster of three masters and three replicas (:class:`PrivateRedisCluster`),
for failover drills.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def client_replaced(backend, client, close):
    """Give ``backend`` another ``client`` for the block (typically one
    pointed at :func:`free_port`, where nothing listens, to make it fail
    like a server that is down), then its own back and ``close(client)``."""
    saved = backend.client
    backend.client = client
    try:
        yield
    finally:
        backend.client = saved
        close(client)


def postgres_bindir() -> str | None:
    """The newest PostgreSQL server ``bin`` directory (with ``pg_ctl``), if any."""
    candidates = []
    if os.path.isdir("/usr/lib/postgresql"):
        candidates = sorted((os.path.join("/usr/lib/postgresql", v, "bin")
                             for v in os.listdir("/usr/lib/postgresql")), reverse=True)
    for candidate in candidates:
        if os.path.exists(os.path.join(candidate, "pg_ctl")):
            return candidate
    found = shutil.which("pg_ctl")
    return os.path.dirname(found) if found else None


class PrivatePostgreSQL:
    """A throw-away PostgreSQL cluster (run as the ``postgres`` user when the
    tests run as root, as PostgreSQL requires)."""

    def __init__(self, bindir: str):
        self.bindir = bindir
        self.root = tempfile.mkdtemp(prefix="cliquet-pg-")
        self.datadir = os.path.join(self.root, "data")
        self.port = free_port()
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            self.prefix = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.root, "postgres")
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        #: more ``name: value`` server settings given at start (see
        #: :class:`PrivatePostgreSQLPair`).
        self.settings: dict = {}

    def _run(self, *args):
        subprocess.run(self.prefix + list(args), check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, cwd="/")

    def init(self):
        """Create the cluster."""
        self._run(os.path.join(self.bindir, "initdb"), "-D", self.datadir, "-U", "postgres",
                  "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C.UTF-8")

    def start(self):
        """Start (or restart) the server and wait until it accepts connections."""
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off"
        for name, value in self.settings.items():
            options += f" -c {name}={value}"
        self._run(os.path.join(self.bindir, "pg_ctl"), "-D", self.datadir, "-l",
                  os.path.join(self.root, "log"), "-o", options, "-w", "-t", "30", "start")

    def stop(self, mode="fast"):
        """Stop the server."""
        self._run(os.path.join(self.bindir, "pg_ctl"), "-D", self.datadir, "-m", mode, "-w", "stop")

    def cleanup(self):
        """Stop it and remove its files."""
        with contextlib.suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


class PrivatePostgreSQLPair:
    """A throw-away PostgreSQL primary and its streaming replica (a
    ``pg_basebackup`` of it, following its WAL), for failover drills.

    :attr:`url` names both servers, the replica first, with
    ``target_session_attrs=read-write``: libpq connects to whichever is the
    primary at the time. With ``synchronous``, the primary waits for the
    replica to have flushed a transaction's WAL before it acknowledges the
    commit (``synchronous_standby_names = '*'``, ``synchronous_commit =
    on``), so nothing acknowledged is lost when the replica takes over.
    The replica does not inherit that setting: once promoted it runs alone
    (nothing to wait for) instead of blocking every commit.
    """

    def __init__(self, bindir: str, synchronous: bool = True):
        self.bindir = bindir
        self.synchronous = synchronous
        self.primary = PrivatePostgreSQL(bindir)
        self.replica = PrivatePostgreSQL(bindir)
        self.primary.settings = {"wal_level": "replica", "max_wal_senders": "5", "wal_keep_size": "64MB"}
        if synchronous:
            self.primary.settings.update(synchronous_standby_names="'*'", synchronous_commit="on")
        # The replica answers reads while it follows (hot standby) and says
        # so quickly to a client that wants the primary.
        self.replica.settings = {"hot_standby": "on", "wal_receiver_status_interval": "1s"}
        hosts = ",".join(f"127.0.0.1:{server.port}" for server in (self.replica, self.primary))
        self.url = f"postgresql://postgres@{hosts}/postgres?target_session_attrs=read-write&connect_timeout=2"

    def init(self):
        """Create the primary, start it, clone it into the replica and start
        that; wait until the replica streams (and, with ``synchronous``, is the
        primary's synchronous standby)."""
        self.primary.init()
        self.primary.start()
        self.primary._run(os.path.join(self.bindir, "pg_basebackup"), "-h", "127.0.0.1", "-p",
                          str(self.primary.port), "-U", "postgres", "-D", self.replica.datadir,
                          "-R", "-X", "stream", "--no-sync", "-c", "fast")
        self.replica.start()
        wanted = "sync" if self.synchronous else "async"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.primary_sql("SELECT sync_state FROM pg_stat_replication").strip() == wanted:
                return
            time.sleep(0.1)
        raise RuntimeError(f"the replica did not become an {wanted} standby of the primary")

    def _psql(self, server: PrivatePostgreSQL, sql: str) -> str:
        done = subprocess.run([os.path.join(self.bindir, "psql"), "-X", "-At", "-h", "127.0.0.1", "-p",
                               str(server.port), "-U", "postgres", "-d", "postgres", "-c", sql],
                              capture_output=True, text=True, timeout=30)
        if done.returncode != 0:
            raise RuntimeError(f"psql on port {server.port}: {done.stderr.strip()}")
        return done.stdout

    def primary_sql(self, sql: str) -> str:
        """Run ``sql`` on the primary with ``psql``; return its unaligned output."""
        return self._psql(self.primary, sql)

    def replica_sql(self, sql: str) -> str:
        """Run ``sql`` on the replica with ``psql``; return its unaligned output."""
        return self._psql(self.replica, sql)

    def stop_primary(self, mode: str = "immediate"):
        """Stop the primary (by default at once, as a crash would: no
        shutdown checkpoint, connections cut)."""
        self.primary.stop(mode)

    def promote(self):
        """Promote the replica and wait until it accepts writes."""
        self.replica._run(os.path.join(self.bindir, "pg_ctl"), "-D", self.replica.datadir, "-w", "-t", "30",
                          "promote")

    def cleanup(self):
        """Stop both servers and remove their files."""
        self.replica.cleanup()
        self.primary.cleanup()


class PrivateRedis:
    """A throw-away ``redis-server``, persisting to an append-only file so
    that data survives a restart."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="cliquet-redis-")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        """Start (or restart) the server and wait for its PONG."""
        subprocess.run(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--daemonize", "yes",
                        "--dir", self.dir, "--save", "", "--appendonly", "yes", "--appendfsync", "always",
                        "--logfile", f"{self.dir}/log", "--pidfile", f"{self.dir}/pid"], check=True,
                       stdout=subprocess.DEVNULL)
        for _ in range(100):
            if self._cli("ping").strip() == "PONG":
                return
            time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    def _cli(self, *args) -> str:
        return subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True, text=True).stdout

    def stop(self):
        """Shut it down (without saving) and wait until it is gone."""
        self._cli("shutdown", "nosave")
        for _ in range(100):
            if self._cli("ping").strip() != "PONG":
                return
            time.sleep(0.05)

    shutdown = stop

    def cleanup(self):
        """Stop it and remove its files."""
        with contextlib.suppress(Exception):
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


#: milliseconds without an answer before the cluster fails a master over.
NODE_TIMEOUT_MS = 1000


def _free_cluster_port() -> int:
    """A free port whose cluster bus port (+10 000) is free too."""
    for _ in range(100):
        port = free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free pair of ports for a cluster node")


class PrivateRedisCluster:
    """Six throw-away ``redis-server`` nodes on free loopback ports made one
    cluster (``--cluster-replicas 1``: three masters, a replica each), for
    failover drills: :meth:`kill` a node, :meth:`start_node` it again.

    :attr:`url` is a ``redis+cluster://`` URL naming the first node. Nodes
    keep no data on disk (no RDB, no AOF): a node started again comes back
    empty and takes a full copy from the master it now replicates."""

    def __init__(self, node_timeout_ms: int = NODE_TIMEOUT_MS):
        self.dir = tempfile.mkdtemp(prefix="cliquet-redis-cluster-")
        self.ports = []
        while len(self.ports) < 6:
            port = _free_cluster_port()
            if port not in self.ports:
                self.ports.append(port)
        self.node_timeout_ms = node_timeout_ms
        self.url = f"redis+cluster://127.0.0.1:{self.ports[0]}"

    def cli(self, port, *args) -> str:
        """Run ``redis-cli`` against one node; return its output."""
        return subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True,
                              timeout=30).stdout

    def start_node(self, port):
        """Start (or restart, with its ``nodes.conf``: it rejoins the cluster it
        knew, as a replica if its slots went to another node) one node."""
        os.makedirs(f"{self.dir}/{port}", exist_ok=True)
        subprocess.run(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--daemonize", "yes",
                        "--dir", f"{self.dir}/{port}", "--cluster-enabled", "yes",
                        "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", str(self.node_timeout_ms),
                        "--save", "", "--appendonly", "no", "--repl-diskless-sync-delay", "0",
                        "--logfile", f"{self.dir}/{port}/log",
                        "--pidfile", f"{self.dir}/{port}/pid"], check=True, stdout=subprocess.DEVNULL)
        self._wait(lambda: self.cli(port, "ping").strip() == "PONG", "node start")

    def start(self):
        """Start the nodes and make them a cluster."""
        for port in self.ports:
            self.start_node(port)
        subprocess.run(["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports),
                        "--cluster-replicas", "1", "--cluster-yes"], check=True, capture_output=True, timeout=60)
        # Converged: every node sees the cluster ok and knows the three
        # masters and three replicas; every replica finished its first sync
        # (until then a replica cannot take over, and WAIT counts nobody).
        for port in self.ports:
            self._wait(lambda p=port: "cluster_state:ok" in self.cli(p, "cluster", "info"), "cluster ok")
            self._wait(lambda p=port: self._roles_known(p), "every node to know every other")
        for port in self.ports:
            self._wait(lambda p=port: self._synced(p), "the replicas' first sync")

    def _roles_known(self, port) -> bool:
        flags = [line.split()[2] for line in self.cli(port, "cluster", "nodes").splitlines() if line.strip()]
        return sum("master" in f for f in flags) == 3 and sum("slave" in f for f in flags) == 3

    def _synced(self, port) -> bool:
        info = self.cli(port, "info", "replication")
        if "role:slave" in info:
            return "master_link_status:up" in info and "master_sync_in_progress:0" in info
        return "connected_slaves:1" in info and "state=online" in info

    @staticmethod
    def _wait(condition, what, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.05)
        raise RuntimeError(f"private Redis Cluster: timed out waiting for {what}")

    def master_of(self, key, asking=None) -> int:
        """The port of the master serving ``key``'s slot (as node ``asking``,
        by default the first, sees it)."""
        asking = asking or self.ports[0]
        slot = int(self.cli(asking, "cluster", "keyslot", key).strip())
        for line in self.cli(asking, "cluster", "nodes").splitlines():
            fields = line.split()
            if "master" in fields[2] and "fail" not in fields[2]:
                for span in fields[8:]:
                    low, _, high = span.partition("-")
                    if low.isdigit() and int(low) <= slot <= int(high or low):
                        return int(fields[1].split(":")[1].split("@")[0])
        raise RuntimeError(f"no master for slot {slot}")

    def wait_taken_over(self, key, victim, timeout=30.0):
        """Wait until a node other than ``victim`` serves ``key``'s slot as
        its master (seen by a node other than ``victim``)."""
        witness = next(port for port in self.ports if port != victim)

        def taken_over():
            try:
                return self.master_of(key, witness) != victim
            except RuntimeError:  # no master for the slot yet
                return False

        self._wait(taken_over, "the failover", timeout)

    def kill(self, port):
        """``SIGKILL`` one node (no chance to send anything more)."""
        with open(f"{self.dir}/{port}/pid") as pid:
            os.kill(int(pid.read()), signal.SIGKILL)

    def cleanup(self):
        """Stop every node and remove the files."""
        for port in self.ports:
            with contextlib.suppress(Exception):
                self.cli(port, "shutdown", "nosave")
        shutil.rmtree(self.dir, ignore_errors=True)


def _unavailable(reason):
    import pytest

    from cliquet.testing.plugin import running_in_ci

    if running_in_ci():
        pytest.fail(reason)
    pytest.skip(reason)


def private_postgresql() -> PrivatePostgreSQL:
    """A started private PostgreSQL (call ``cleanup()`` when done)."""
    bindir = postgres_bindir()
    if bindir is None:
        _unavailable("no PostgreSQL server binaries (pg_ctl) for the fault drill: run ./ci/services")
    server = PrivatePostgreSQL(bindir)
    try:
        server.init()
        server.start()
    except BaseException:
        server.cleanup()
        raise
    return server


def private_postgresql_pair(synchronous: bool = True) -> PrivatePostgreSQLPair:
    """A started private PostgreSQL primary and streaming replica (call
    ``cleanup()`` when done); see :class:`PrivatePostgreSQLPair`."""
    bindir = postgres_bindir()
    if bindir is None or not os.path.exists(os.path.join(bindir, "pg_basebackup")):
        _unavailable("no PostgreSQL server binaries (pg_ctl, pg_basebackup) for the failover drill: "
                     "run ./ci/services")
    pair = PrivatePostgreSQLPair(bindir, synchronous=synchronous)
    try:
        pair.init()
    except BaseException:
        pair.cleanup()
        raise
    return pair


def private_redis() -> PrivateRedis:
    """A started private Redis (call ``cleanup()`` when done)."""
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        _unavailable("no redis-server/redis-cli for the fault drill: run ./ci/services")
    server = PrivateRedis()
    try:
        server.start()
    except BaseException:
        server.cleanup()
        raise
    return server


def private_redis_cluster(node_timeout_ms: int = NODE_TIMEOUT_MS) -> PrivateRedisCluster:
    """A started, converged private Redis Cluster (call ``cleanup()`` when
    done); see :class:`PrivateRedisCluster`."""
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        _unavailable("no redis-server/redis-cli for the failover drill: run ./ci/services")
    cluster = PrivateRedisCluster(node_timeout_ms=node_timeout_ms)
    try:
        cluster.start()
    except BaseException:
        cluster.cleanup()
        raise
    return cluster
