"""What ``ci/bench`` measures: the applications and the server configurations.

Adding a backend configuration is one :class:`Server` entry in
:data:`CONFIGS`: a label, the application (:data:`CLIQUET` or :data:`KINTO`),
its INI file, the environment variables that switch its backends, and
Granian's worker and thread counts. The first Kinto entry of a group is the
reference every other entry of the group is compared with.
"""

import base64
import dataclasses
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def basic(user, password="bench"):
    """Return the value of a Basic ``Authorization`` header."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return f"Basic {token}"


def http(base_url, method, path, auth, body=None, headers=None, timeout=60):
    """Send one request; return ``(status, headers, parsed JSON or text)``."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base_url + path, data=data, method=method)
    req.add_header("Authorization", auth)
    req.add_header("Accept", "application/json")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        req.add_header(name, value)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, hdrs, raw = resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        status, hdrs, raw = exc.code, dict(exc.headers), exc.read()
    try:
        payload = json.loads(raw) if raw else None
    except ValueError:
        payload = raw.decode(errors="replace")
    return status, {k.lower(): v for k, v in hdrs.items()}, payload


@dataclasses.dataclass(frozen=True)
class Target:
    """Where one collection of articles lives on one application."""

    auth: str
    path: str
    batch_path: str
    search_path: str = "/v1/search/articles"


class FloorApp:
    """The floor: a bare Pyramid view reading one row by primary key
    (``floor_app.py``), on the records of another server of the group."""

    name = "floor"
    bin_env = "BENCH_CLIQUET_BIN"
    preload_parallel = 1

    def target(self, base_url, collection):
        """The same paths as the example app's (no credentials are checked)."""
        return Target(basic(f"bench-{collection}"), "/v1/articles", "/articles")


class CliquetApp:
    """The example app: ``articles`` is a per-user resource at ``/v1/articles``.

    A "collection" is therefore a user: each name gets its own Basic
    credentials and so its own set of records.
    """

    name = "cliquet"
    bin_env = "BENCH_CLIQUET_BIN"
    preload_parallel = 4

    def target(self, base_url, collection):
        """Return the :class:`Target` of ``collection`` (nothing to create)."""
        return Target(basic(f"bench-{collection}"), "/v1/articles", "/articles")

    def migrate(self, server, env):
        """Initialise the backends' schemas (``cliquet migrate``)."""
        binary = os.path.join(os.environ[self.bin_env], "cliquet")
        # Its progress lines go to stderr: stdout carries only the report.
        subprocess.run([binary, "migrate", "--ini", server.ini_path], env=env, check=True, stdout=sys.stderr)


class KintoApp:
    """Kinto: records live in a collection of a bucket, both created first."""

    name = "kinto"
    bin_env = "BENCH_KINTO_BIN"
    # Concurrent creates in one collection get 409s from Kinto's PostgreSQL
    # backend (and a batch that hits one loses earlier creates): preload
    # one batch at a time.
    preload_parallel = 1
    bucket = "bench"

    def target(self, base_url, collection):
        """Create the bucket and ``collection``; return its :class:`Target`."""
        auth = basic("bench")
        bucket_path = f"/v1/buckets/{self.bucket}"
        for path in (bucket_path, f"{bucket_path}/collections/{collection}"):
            status, _, body = http(base_url, "PUT", path, auth, {"data": {}})
            if status >= 400:
                raise RuntimeError(f"PUT {path} answered {status}: {body}")
        path = f"{bucket_path}/collections/{collection}/records"
        return Target(auth, path, path[len("/v1"):])

    def migrate(self, server, env):
        """Initialise the backends' schemas (``kinto migrate``)."""
        binary = os.path.join(os.environ[self.bin_env], "kinto")
        # Its progress lines go to stderr: stdout carries only the report.
        subprocess.run([binary, "migrate", "--ini", server.ini_path], env=env, check=True, stdout=sys.stderr)


CLIQUET = CliquetApp()
FLOOR = FloorApp()
KINTO = KintoApp()


@dataclasses.dataclass(frozen=True)
class Server:
    """One application under Granian with one backend configuration.

    ``env`` values may contain ``{postgresql}`` / ``{redis}``: they are filled
    from ``CLIQUET_TEST_POSTGRESQL_URL`` / ``CLIQUET_TEST_REDIS_URL`` (a
    PostgreSQL URL gets a database of its own per server, see ``bench.py``).
    """

    label: str
    app: object
    ini: str
    workers: int = 1
    threads: int = 1
    env: dict = dataclasses.field(default_factory=dict)
    needs: tuple = ()
    migrate: bool = False
    profile: bool = False
    #: ``shipped`` (search plugin and request log on, as a newcomer runs the
    #: example app), ``core`` (both off, like Kinto) or ``floor``; the report
    #: pairs the shipped and core entries of a group.
    role: str = ""
    #: Whether the server answers ``/v1/search/articles`` (the search scenario).
    search: bool = False
    #: Configure logging from the INI file (the request log), as ``cliquet serve`` does.
    logging: bool = False
    #: Label of the server of the group whose PostgreSQL database and records
    #: this one reads (the floor reads the core server's rows).
    shares: str = ""
    #: The only scenarios this server runs (empty: all).
    scenarios: tuple = ()
    #: The indexer answering its searches (for the report).
    indexer: str = ""

    @property
    def bulk(self):
        """Whether records past the first thousand may be preloaded without
        HTTP (``bulk.py``): ours on PostgreSQL or Redis, Kinto's on PostgreSQL."""
        return "postgresql" in self.needs and self.app in (CLIQUET, KINTO) or (
            "redis" in self.needs and self.app is CLIQUET)

    @property
    def ini_path(self):
        """Absolute path of the INI file."""
        return os.path.join(ROOT, self.ini)

    @property
    def is_reference(self):
        """Whether the others of its group are compared with this one."""
        return self.app is KINTO


EXAMPLE_INI = "docs/example/myproject.ini"


#: Kinto runs without any logging configured (its request summaries are
#: dropped before they are formatted), so ours runs without its request log.
QUIET = {"CLIQUET_LOGGING_RENDERER": "off"}
#: The core alone: the example app without its search plugin indexing writes
#: (Kinto indexes nothing), for the like-for-like ratios.
CORE = {**QUIET, "CLIQUET_INDEXING_RESOURCES": ""}

#: The indexer of the as-shipped server per storage: None keeps the example
#: app's default (the embedded indexer). PostgreSQL storage uses the
#: PostgreSQL indexer of cliquet-indexing once it exists (switch it here).
_PG_INDEXER = "cliquet_indexing.postgresql"
SHIPPED_INDEXER = {
    "memory": None,
    "postgresql": _PG_INDEXER if any(
        os.path.exists(os.path.join(ROOT, "packages/cliquet-indexing/src", *_PG_INDEXER.split("."))
                       + ext) for ext in (".py", "/__init__.py")) else None,
    "redis": None,
}


def stop_group(proc, grace=10.0):
    """Stop a server started in a process group of its own (``proc``, a
    :class:`subprocess.Popen`): TERM the group, KILL it after ``grace`` s."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


def _backends(kind, url, shipped):
    env = {} if shipped else dict(CORE)
    for what in ("STORAGE", "CACHE", "PERMISSION"):
        env[f"CLIQUET_{what}_BACKEND"] = f"cliquet.{what.lower()}.{kind}"
        env[f"CLIQUET_{what}_URL"] = url
    if shipped and SHIPPED_INDEXER.get(kind):
        env["CLIQUET_INDEXING_BACKEND"] = SHIPPED_INDEXER[kind]
        env["CLIQUET_INDEXING_URL"] = url
    return env


def _kinto_backends(url):
    return {f"KINTO_{what}_URL": url for what in ("STORAGE", "CACHE", "PERMISSION")}


def _pair(label, kind, workers, threads):
    """The example app as shipped and like for like, same backends."""
    if kind == "memory":
        shipped_env, core_env, extra = {}, CORE, {}
    else:
        url = "{%s}" % kind
        shipped_env, core_env = _backends(kind, url, True), _backends(kind, url, False)
        extra = {"needs": (kind,), "migrate": kind == "postgresql"}
    indexer = SHIPPED_INDEXER.get(kind) or "embedded"
    return [
        Server(f"{label} shipped", CLIQUET, EXAMPLE_INI, workers, threads, env=shipped_env,
               role="shipped", search=True, logging=True, profile=kind == "postgresql",
               indexer=indexer, **extra),
        Server(f"{label} core", CLIQUET, EXAMPLE_INI, workers, threads, env=core_env,
               role="core", profile=True, **extra),
    ], indexer


_MEMORY, MEMORY_INDEXER = _pair("cliquet memory", "memory", 1, 1)
_POSTGRESQL, POSTGRESQL_INDEXER = _pair("cliquet postgresql", "postgresql", 2, 2)
_REDIS, REDIS_INDEXER = _pair("cliquet redis", "redis", 2, 2)
_KINTO_PG = Server("kinto postgresql", KINTO, "ci/bench.d/kinto-postgresql.ini", 2, 2,
                   env=_kinto_backends("{postgresql}"), needs=("postgresql",), migrate=True)

#: Server groups, selected with ``BENCH_CONFIG`` (comma-separated names).
CONFIGS = {
    "memory": [
        *_MEMORY,
        Server("kinto memory", KINTO, "ci/bench.d/kinto-memory.ini", 1, 1),
    ],
    # The production backends, 2 workers x 2 threads each; the floor reads
    # the core server's rows.
    "postgresql": [
        *_POSTGRESQL,
        Server("floor postgresql", FLOOR, "ci/bench.d/floor.ini", 2, 2,
               env={"BENCH_FLOOR_URL": "{postgresql}"}, needs=("postgresql",),
               role="floor", shares="cliquet postgresql core", scenarios=("get",)),
        _KINTO_PG,
    ],
    # Kinto has no Redis storage: the reference is Kinto on PostgreSQL, as
    # measured in the postgresql group of the same run (REFERENCES).
    "redis": _REDIS,
    # Search only: the PostgreSQL storage with the embedded indexer, as the
    # example app ran before the PostgreSQL indexer (its search p50 beside
    # the PostgreSQL indexer's).
    "postgresql-embedded": [
        Server("cliquet postgresql, embedded search", CLIQUET, EXAMPLE_INI, 2, 2,
               env={**{k: v for k, v in _backends("postgresql", "{postgresql}", False).items()
                       if not k.startswith("CLIQUET_INDEXING") and k != "CLIQUET_LOGGING_RENDERER"},
                    "CLIQUET_INDEXING_BACKEND": "cliquet_indexing.embedded"},
               needs=("postgresql",), migrate=True, search=True, logging=True,
               scenarios=("search",), indexer="embedded"),
    ],
    # Reads like for like in what they check: the same articles per-user
    # (no per-record read check, as Kinto's bucket owner has none) against
    # Kinto on PostgreSQL (issue 12's reasons).
    "postgresql-peruser": [
        Server("cliquet postgresql per-user", CLIQUET, "ci/bench.d/cliquet-peruser.ini", 2, 2,
               env=_backends("postgresql", "{postgresql}", False), needs=("postgresql",), migrate=True),
        _KINTO_PG,
    ],
    # The shareable resource's cost against the per-user one (issue 3).
    "memory-peruser": [
        Server("cliquet memory", CLIQUET, EXAMPLE_INI, 1, 1, env=QUIET),
        Server("cliquet memory per-user", CLIQUET, "ci/bench.d/cliquet-peruser.ini", 1, 1,
               env=QUIET),
        Server("kinto memory", KINTO, "ci/bench.d/kinto-memory.ini", 1, 1),
    ],
}
#: The reference of a group without a Kinto of its own: a server of another group.
REFERENCES = {"redis": "kinto postgresql"}
#: Names that stand for several groups.
ALIASES = {"production": ["postgresql", "redis"], "all": ["memory", "postgresql", "redis"]}
#: Indexer of each group's as-shipped server, for the report.
INDEXERS = {"memory": MEMORY_INDEXER, "postgresql": POSTGRESQL_INDEXER, "redis": REDIS_INDEXER}
