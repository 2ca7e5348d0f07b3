"""``cliquet init``: write a new service project from chosen packages.

The choices are an :class:`Options`; :func:`render` turns them into the
project's files (a mapping of relative paths to text) and :func:`create`
writes them in a new directory. The templates are files of this package
(``cliquet/scaffold/templates``), filled with :class:`string.Template`.

What a project holds, for ``myservice``:

* ``myservice/`` — the package: ``main()`` (the PasteDeploy app factory) and
  one resource with its schema (``myservice/resources.py``);
* ``myservice.ini`` — the chosen backends, ``pyramid.includes`` of the chosen
  packages, the development server;
* ``pyproject.toml`` — depending on exactly the chosen distributions (and
  the extras of ``cliquet`` that the backends need);
* ``tests/`` — the shared contract suites of :mod:`cliquet.testing` (and
  :mod:`cliquet_indexing.testing`) on the chosen backends, and a functional
  test of the service built from its INI file;
* ``README.md`` — how to run the tests and serve.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import keyword
import pathlib
import re
import secrets
import string
import sys

__all__ = ["Options", "ScaffoldError", "STORAGES", "CACHES", "FEATURES", "validate_name",
           "distributions", "render", "create"]

#: storage (and permission) backends: name -> dotted module suffix
STORAGES = ("memory", "postgresql", "redis")
#: cache backends
CACHES = ("memory", "postgresql", "redis", "riak")
#: optional packages (``--with``); ``elasticsearch`` brings ``indexing``
FEATURES = ("indexing", "elasticsearch", "oidc", "admin")

#: the distribution of each feature, and the range a new project depends on
FEATURE_DISTRIBUTIONS = {
    "riak": "cliquet-riak",
    "indexing": "cliquet-indexing",
    "elasticsearch": "cliquet-elasticsearch",
    "oidc": "cliquet-oidc",
    "admin": "cliquet-admin",
}
CORE_RANGE = ">=3.2.0.dev0,<4"
PACKAGE_RANGE = ">=0.1.0.dev0,<1"

#: import names a project must not take: its package would hide them
RESERVED = frozenset({
    "cliquet", "cliquet_riak", "cliquet_indexing", "cliquet_elasticsearch", "cliquet_oidc", "cliquet_admin",
    "pyramid", "cornice", "colander", "webtest", "pytest", "granian", "psycopg", "redis", "elasticsearch",
    "urllib3", "orjson", "tests", "test", "setup", "conftest", "myproject",
})


class ScaffoldError(ValueError):
    """A choice ``cliquet init`` refuses (the message says why)."""


def validate_name(name: str) -> str:
    """Return ``name`` if it can name the new project and its package.

    It must be a lowercase Python identifier (letters, digits, ``_``), not a
    keyword, and not the name of a module of the standard library, of
    Cliquet's packages or of their main dependencies, which the project's
    package would shadow.

    :raises ScaffoldError: naming what is wrong.
    """
    if not name:
        raise ScaffoldError("a project name is required")
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name) or not name.isidentifier():
        raise ScaffoldError(f"{name!r} is not a valid name: use lowercase letters, digits and _ "
                            "(a Python identifier, e.g. myservice)")
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        raise ScaffoldError(f"{name!r} is a Python keyword")
    if name in sys.stdlib_module_names:
        raise ScaffoldError(f"{name!r} is a module of Python's standard library: the project would shadow it")
    if name in RESERVED or name.startswith("cliquet"):
        raise ScaffoldError(f"{name!r} is the name of a module a Cliquet service uses: choose another")
    return name


@dataclasses.dataclass(frozen=True)
class Options:
    """What ``cliquet init`` was asked for.

    :param name: the project and package name (see :func:`validate_name`).
    :param storage: one of :data:`STORAGES`.
    :param cache: one of :data:`CACHES`.
    :param permission: one of :data:`STORAGES` (default: the storage's).
    :param features: some of :data:`FEATURES`.
    """

    name: str
    storage: str = "memory"
    cache: str = "memory"
    permission: str | None = None
    features: tuple[str, ...] = ()

    def __post_init__(self):
        validate_name(self.name)
        if self.storage not in STORAGES:
            raise ScaffoldError(f"unknown storage {self.storage!r}: choose one of {', '.join(STORAGES)}")
        if self.cache not in CACHES:
            raise ScaffoldError(f"unknown cache {self.cache!r}: choose one of {', '.join(CACHES)}")
        permission = self.permission or self.storage
        if permission not in STORAGES:
            raise ScaffoldError(f"unknown permission backend {permission!r}: choose one of {', '.join(STORAGES)}")
        object.__setattr__(self, "permission", permission)
        features = {f.strip() for f in self.features if f.strip()}
        unknown = sorted(features - set(FEATURES))
        if unknown:
            raise ScaffoldError(f"unknown package(s) {', '.join(unknown)}: choose among {', '.join(FEATURES)}")
        if "elasticsearch" in features:
            features.add("indexing")  # cliquet-elasticsearch is an indexer of cliquet-indexing
        object.__setattr__(self, "features", tuple(f for f in FEATURES if f in features))

    @property
    def backends(self) -> set[str]:
        """The servers the project's backends use (``memory`` included)."""
        return {self.storage, self.cache, self.permission}

    @property
    def indexer(self) -> str | None:
        """The indexer: ``elasticsearch``, ``postgresql`` (the storage's
        database), ``embedded``, or ``None`` without indexing."""
        if "elasticsearch" in self.features:
            return "elasticsearch"
        if "indexing" in self.features:
            return "postgresql" if self.storage == "postgresql" else "embedded"
        return None


def distributions(options: Options) -> list[str]:
    """Return the requirements of the project: ``cliquet`` with the extras
    its backends need (and ``serve``), then exactly the chosen packages."""
    extras = ["serve"] + [b for b in ("postgresql", "redis") if b in options.backends]
    requirements = [f"cliquet[{','.join(extras)}]{CORE_RANGE}"]
    chosen = (["riak"] if options.cache == "riak" else []) + list(options.features)
    requirements += [f"{FEATURE_DISTRIBUTIONS[c]}{PACKAGE_RANGE}" for c in chosen]
    return requirements


def testing_requirements(options: Options) -> list[str]:
    """Return the ``test`` extra of the project: what the contract suites
    need (``cliquet[testing]``), and pytest-xdist for parallel runs."""
    return [f"cliquet[testing]{CORE_RANGE}", "pytest-xdist>=3.5"]


def _template(name: str) -> string.Template:
    text = importlib.resources.files(__name__).joinpath("templates", name).read_text(encoding="utf-8")
    return string.Template(text)


def _fill(template: str, **values) -> str:
    return _template(template).substitute(**values)


# -- the INI file -----------------------------------------------------------------

DEFAULT_URLS = {
    "postgresql": "postgresql://postgres@127.0.0.1:5432/{name}",
    "redis": "redis://127.0.0.1:6379/0",
}


def _backend_lines(kind: str, backend: str, name: str) -> list[str]:
    if backend == "riak":
        lines = [f"cliquet.{kind}_backend = cliquet_riak.cache",
                 f"cliquet.{kind}_url = riak://127.0.0.1:8098/default/{name}_cache"]
    else:
        lines = [f"cliquet.{kind}_backend = cliquet.{kind}.{backend}"]
        if backend in DEFAULT_URLS:
            lines.append(f"cliquet.{kind}_url = {DEFAULT_URLS[backend].format(name=name)}")
    if kind == "cache":
        lines.append(f"cliquet.cache_prefix = {name}:")
    return lines


def _ini_settings(options: Options) -> str:
    name = options.name
    lines = ["# Backends (each setting can be overridden by its environment variable,",
             "# e.g. CLIQUET_STORAGE_URL or MYSERVICE_STORAGE_URL).".replace("MYSERVICE", name.upper())]
    lines += _backend_lines("storage", options.storage, name)
    lines += _backend_lines("permission", options.permission, name)
    lines += _backend_lines("cache", options.cache, name)
    if options.indexer == "elasticsearch":
        lines += ["# Indexing: records indexed in Elasticsearch, searched at /v1/search/{resource}.",
                  "cliquet.indexing_backend = cliquet_elasticsearch",
                  "cliquet.indexing_url = http://127.0.0.1:9200",
                  f"cliquet.indexing_prefix = {name}_"]
    elif options.indexer == "postgresql":
        lines += ["# Indexing: in the storage's PostgreSQL database, in the same transaction",
                  "# (cliquet_indexing.postgresql, the default beside a PostgreSQL storage)."]
    elif options.indexer == "embedded":
        lines += ["# Indexing: the embedded indexer (SQLite FTS5), in memory: one process.",
                  "# For several processes give it a file: cliquet.indexing_url = sqlite:///index.db"]
    if "oidc" in options.features:
        lines += ["# OpenID Connect providers (cliquet-oidc), beside HTTP Basic:",
                  "# cliquet.oidc_providers = keycloak",
                  "# cliquet.oidc.keycloak.issuer = https://sso.example.com/realms/myrealm",
                  "# cliquet.oidc.keycloak.audience = " + name]
    return "\n".join(lines)


def _includes(options: Options) -> str:
    modules = [f"cliquet_{f}" for f in options.features if f != "elasticsearch"]
    if not modules:
        return "# pyramid.includes = (packages adding features, e.g. cliquet_indexing)"
    return "pyramid.includes = " + " ".join(modules)


# -- the tests ----------------------------------------------------------------------


def _contract_tests(options: Options) -> str:
    snippets = [f"storage_{options.storage}", f"permission_{options.permission}", f"cache_{options.cache}"]
    if options.indexer:
        snippets.append(f"indexer_{options.indexer}")
    imports, bodies = set(), []
    for snippet in snippets:
        lines = _fill(f"tests/{snippet}.py.tmpl").strip("\n").splitlines()
        while lines and lines[0].startswith(("import ", "from ")):
            imports.add(lines.pop(0))
        bodies.append("\n".join(lines).strip("\n"))
    third_party = sorted(i for i in imports if not i.startswith(("from cliquet", "import cliquet")))
    ours = sorted(i for i in imports if i not in third_party)
    header = _fill("tests/contracts_header.py.tmpl").strip("\n")
    head = header + ("\n" + "\n".join(third_party) if third_party else "") + "\n\n" + "\n".join(ours)
    return "\n\n\n".join([head] + bodies) + "\n"


def _conftest(options: Options) -> str:
    servers = options.backends | ({options.indexer} if options.indexer else set())
    parts = [_fill("tests/conftest_header.py.tmpl")]
    for server in ("postgresql", "riak", "elasticsearch"):  # Redis: the plugin's redis_url
        if server in servers:
            parts.append(_fill(f"tests/conftest_{server}.py.tmpl"))
    settings = []
    for kind, backend in (("storage", options.storage), ("permission", options.permission),
                          ("cache", options.cache)):
        settings.append(_SETTINGS_LINES[backend].format(kind=kind))
    if options.indexer == "elasticsearch":
        settings.append('"indexing_url": request.getfixturevalue("elasticsearch_url"), '
                        '"indexing_prefix": request.getfixturevalue("es_prefix"),')
    elif options.indexer == "postgresql":
        settings.append('"indexing_url": request.getfixturevalue("pg_url"),')
    parts.append(_fill("tests/conftest_settings.py.tmpl",
                       settings="\n        ".join(settings)))
    return "\n\n\n".join(part.strip("\n") for part in parts) + "\n"


_SETTINGS_LINES = {
    "memory": '# {kind}: in memory',
    "postgresql": '"{kind}_url": request.getfixturevalue("pg_url"),',
    "redis": '"{kind}_url": request.getfixturevalue("redis_url"), '
             '"{kind}_prefix": f"{{cliquet_worker_prefix}}{kind}:",',
    "riak": '"{kind}_url": request.getfixturevalue("riak_bucket_url"), '
            '"{kind}_prefix": f"{{cliquet_worker_prefix}}{kind}:",',
}


def _functional_tests(options: Options) -> str:
    text = _fill("tests/test_service.py.tmpl", name=options.name)
    if options.indexer:
        text += "\n\n" + _fill("tests/search.py.tmpl").strip("\n") + "\n"
    return text


# -- the project ----------------------------------------------------------------------


def _toml_list(items: list[str]) -> str:
    return "[\n" + "".join(f'  "{item}",\n' for item in items) + "]"


def _readme_backends(options: Options) -> str:
    rows = [f"- storage: {options.storage}", f"- permission: {options.permission}", f"- cache: {options.cache}"]
    if options.indexer:
        rows.append(f"- indexing: {options.indexer}")
    extra = [f for f in options.features if f not in ("indexing", "elasticsearch")]
    if extra:
        rows.append("- with: " + ", ".join(f"cliquet-{f}" for f in extra))
    return "\n".join(rows)


def _readme_services(options: Options) -> str:
    needs = []
    if "postgresql" in options.backends:
        needs.append("- PostgreSQL: `CLIQUET_TEST_POSTGRESQL_URL` (tests), `cliquet.*_url` in the INI file (serving)")
    if "redis" in options.backends:
        needs.append("- Redis: `CLIQUET_TEST_REDIS_URL` (tests), `cliquet.*_url` in the INI file (serving)")
    if options.cache == "riak":
        needs.append("- Riak KV: `CLIQUET_RIAK_URL` (tests; without it they start cliquet-riak's stand-in), "
                     "`cliquet.cache_url` in the INI file (serving)")
    if options.indexer == "elasticsearch":
        needs.append("- Elasticsearch: `CLIQUET_TEST_ELASTICSEARCH_URL` (tests), `cliquet.indexing_url` "
                     "in the INI file (serving)")
    if not needs:
        return "Nothing else: every backend lives in the service's process."
    return ("The servers the backends need (a test whose server is not given is skipped, "
            "or fails when `CI=true`):\n\n" + "\n".join(needs))


def render(options: Options) -> dict[str, str]:
    """Return the files of the project: relative POSIX path -> text."""
    name = options.name
    title = name.replace("_", " ").title()
    values = {"name": name, "title": title}
    return {
        "pyproject.toml": _fill("pyproject.toml.tmpl", **values,
                                dependencies=_toml_list(distributions(options)),
                                test_dependencies=_toml_list(testing_requirements(options))),
        "README.md": _fill("README.md.tmpl", **values, backends=_readme_backends(options),
                           services=_readme_services(options)),
        f"{name}.ini": _fill("service.ini.tmpl", **values, includes=_includes(options),
                             secret=secrets.token_hex(16), settings=_ini_settings(options)),
        f"{name}/__init__.py": _fill("package/__init__.py.tmpl", **values),
        f"{name}/resources.py": _fill("package/resources.py.tmpl", **values),
        "tests/conftest.py": _conftest(options),
        "tests/test_backends.py": _contract_tests(options),
        "tests/test_service.py": _functional_tests(options),
    }


def create(options: Options, parent: str | pathlib.Path = ".") -> pathlib.Path:
    """Write the project in ``parent/<name>`` and return that directory.

    :raises ScaffoldError: the directory already exists (nothing is overwritten).
    """
    target = pathlib.Path(parent) / options.name
    if target.exists():
        raise ScaffoldError(f"{target} already exists: choose another name or directory (nothing was written)")
    files = render(options)
    target.mkdir(parents=True)
    for relative, text in files.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return target
