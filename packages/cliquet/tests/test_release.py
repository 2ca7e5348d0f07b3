"""The release: ``ci/release`` builds and checks every artifact, and what it
built installs and works from a package index of its own.

The artifacts are built once per run (``ci/release`` into a temporary folder,
or the folder in ``CLIQUET_RELEASE_DIR`` when ``ci/test`` already built them
there), published with ``twine upload`` to a real package index server on a
loopback port (pypiserver, from PyPI), and installed from it into a fresh
virtual environment:
``cliquet-riak`` and ``cliquet[testing]``, ``cliquet`` resolved from that
index (the public one only serves the original 3.x releases under that name).
There, the shared cache contract suite of the *installed* ``cliquet`` runs on
``cliquet.cache_backend = cliquet_riak.cache`` against the Riak stand-in the
installed ``cliquet_riak.testing`` ships. No service of ``ci/services`` is
needed; PyPI is, for the third-party dependencies (``uv``'s cache makes that
quick after the first run). The client's npm tarball is published the same
way to a Verdaccio registry on loopback (from npm) and installed from it
into a fresh Node project, where it runs.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import re
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request

import pytest

pytestmark = pytest.mark.xdist_group("release")

REPO = pathlib.Path(__file__).resolve().parents[3]
RELEASE = REPO / "ci" / "release"
CHECK = REPO / "ci" / "release.d" / "check.py"
UV = shutil.which("uv") or str(REPO / ".cache" / "tools" / "bin" / "uv")
ARTIFACT_LINE = re.compile(r"^(\S+\.(?:whl|tar\.gz|tgz))\s+([\d.]+ [kM]B)$")


def _load_check():
    spec = importlib.util.spec_from_file_location("release_check", CHECK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _clean_env(**extra):
    """The environment for child processes: nothing of this test run's
    virtual environment, pytest options or coverage leaks into them."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_", "COV_", "COVERAGE_", "VIRTUAL_ENV", "PYTHON"))}
    env.update(extra)
    return env


def _run(cmd, timeout=300, **kwargs):
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, **kwargs)
    if result.returncode != 0:
        pytest.fail(f"{' '.join(map(str, cmd))} exited {result.returncode}:\n"
                    f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}", pytrace=False)
    return result


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """``(folder, listing)``: the artifacts of ``ci/release`` and the lines it
    printed for them (name, size)."""
    prebuilt = os.environ.get("CLIQUET_RELEASE_DIR")
    if prebuilt:
        folder = pathlib.Path(prebuilt)
        cmd = [sys.executable, CHECK, folder, "--python", "cliquet", "cliquet-riak", "cliquet-indexing",
               "cliquet-elasticsearch", "cliquet-oidc", "cliquet-admin", "--npm", "cliquet-client"]
        if importlib.util.find_spec("twine") is None:  # the check itself is ci/release's, already run
            cmd = [UV, "run", "--quiet", "--no-project", "--with", "twine>=6,<8", "--with", "pkginfo>=1.12",
                   "python", *cmd[1:]]
        result = _run(cmd, env=_clean_env())
    else:
        folder = tmp_path_factory.mktemp("release")
        result = _run(["bash", RELEASE, folder], timeout=600, env=_clean_env(), cwd=REPO)
    listing = [m.groups() for m in map(ARTIFACT_LINE.match, result.stdout.splitlines()) if m]
    return folder, listing


def test_release_lists_each_artifact_with_its_size(release):
    folder, listing = release
    names = [name for name, _ in listing]
    for distribution in ("cliquet", "cliquet_riak", "cliquet_indexing", "cliquet_elasticsearch",
                         "cliquet_oidc", "cliquet_admin"):
        assert len([n for n in names if n.startswith(f"{distribution}-") and n.endswith(".whl")]) == 1, names
        assert len([n for n in names if n.startswith(f"{distribution}-") and n.endswith(".tar.gz")]) == 1, names
    assert [n for n in names if n.startswith("cliquet-client-") and n.endswith(".tgz")], names
    assert len(listing) == 13
    for name, size in listing:
        assert (folder / name).is_file()
        assert float(size.split()[0]) > 0


class TestChecks:
    """The checks of ``ci/release`` find what they are meant to find."""

    def test_a_missing_changelog_heading_is_a_problem(self, tmp_path, monkeypatch):
        check = _load_check()
        monkeypatch.setattr(check, "ROOT", tmp_path)
        changelog = tmp_path / "CHANGELOG.md"
        changelog.write_text("# Changelog\n\n## 1.0.0\n\n- old\n")
        assert check.changelog_problems(changelog, "1.1.0.dev0")
        changelog.write_text("# Changelog\n\n## 1.1.0 (unreleased)\n\n## 1.0.0\n")
        assert check.changelog_problems(changelog, "1.1.0.dev0") == []
        assert check.changelog_problems(changelog, "1.1.0", final=True)  # still says unreleased
        assert check.changelog_problems(changelog, "1.1.0.dev0", final=True)  # a dev version
        changelog.write_text("# Changelog\n\n## 1.1.0 (2027-01-02)\n")
        assert check.changelog_problems(changelog, "1.1.0", final=True) == []
        assert check.changelog_problems(tmp_path / "missing.md", "1.0.0")

    def test_metadata_without_licence_or_readme_is_a_problem(self):
        check = _load_check()
        meta = check.email.parser.Parser().parsestr(
            "Metadata-Version: 2.4\nName: demo\nVersion: 1.0\nRequires-Python: >=3.11\n\n")
        problems = check.metadata_problems("demo.whl", meta, [], "demo", "1.0")
        text = "\n".join(problems)
        assert "licence is None" in text
        assert "readme" in text
        assert "License-File" in text

    def test_the_licence_file_must_be_inside(self, release):
        check = _load_check()
        folder, _ = release
        wheel = next(folder.glob("cliquet_riak-*.whl"))
        meta, names = check.wheel_metadata(wheel)
        assert check.metadata_problems(wheel.name, meta, names, "cliquet-riak", meta["Version"]) == []
        without = [n for n in names if not n.endswith("LICENSE")]
        problems = check.metadata_problems(wheel.name, meta, without, "cliquet-riak", meta["Version"])
        assert any("licence file LICENSE is not inside" in p for p in problems), problems


#: the package index server the artifacts are published to, from PyPI.
PYPISERVER = "pypiserver==2.4.2"


def _tool(*requirements):
    """A command prefix running a tool from PyPI in a throw-away environment of uv's."""
    command = [UV, "run", "--quiet", "--no-project", "--python", sys.executable]
    for requirement in requirements:
        command += ["--with", requirement]
    return command


@pytest.fixture(scope="module")
def package_index(release, tmp_path_factory):
    """``(url, uploaded)``: a pypiserver on a loopback port (uploads without
    credentials), every Python artifact of the release published to it with
    ``twine upload``; ``url`` is its simple index."""
    folder, _ = release
    root = tmp_path_factory.mktemp("index")
    (root / "packages").mkdir()
    port = _free_port()
    log = root / "server.log"
    with open(log, "w") as stream:
        server = subprocess.Popen(_tool(PYPISERVER) + ["pypi-server", "run", "-i", "127.0.0.1", "-p", str(port),
                                                      "-a", ".", "-P", ".", str(root / "packages")],
                                  stdout=stream, stderr=subprocess.STDOUT, env=_clean_env())
    url = f"http://127.0.0.1:{port}/simple/"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url, timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail(f"the index server did not start: {log.read_text()}")
                time.sleep(0.2)
        artifacts = sorted(str(path) for path in folder.iterdir() if path.suffix in (".whl", ".gz"))
        _run(_tool("twine>=6,<8", "pkginfo>=1.12") + ["twine", "upload", "--non-interactive",
                                                     "--repository-url", f"http://127.0.0.1:{port}/",
                                                     "-u", "release", "-p", "test", *artifacts],
             env=_clean_env(), timeout=300)
        uploaded = sorted(path.name for path in (root / "packages").iterdir())
        yield url, uploaded
    finally:
        server.terminate()
        server.wait(10)


# The text of a test module written into the fresh venv: its imports are its own
# (contextlib is used by its backend_error fixture).
INSTALLED_TEST = '''
"""The shared cache contract suite of the installed cliquet, on the installed
cliquet_riak named by its setting, against the Riak stand-in it ships."""

import contextlib
import uuid

import pytest
from cliquet.cache import CacheBase
from cliquet.setup import load_backend
from cliquet.testing import make_config
from cliquet.testing.cache import CacheContract
from cliquet_riak.testing import StandinProcess


@pytest.fixture(scope="session")
def node():
    node = StandinProcess().start()
    yield node
    node.kill()


def riak_cache(node, prefix):
    config = make_config(cache_backend="cliquet_riak.cache",
                         cache_url=f"{node.url}/types/default/buckets/release",
                         cache_prefix=prefix, riak_read_timeout="5s")
    backend = load_backend(config, "cache", CacheBase)
    backend.initialize_schema()
    return backend


class TestInstalledRiakCache(CacheContract):
    @pytest.fixture
    def backend(self, node):
        backend = riak_cache(node, f"t{uuid.uuid4().hex[:12]}:")
        yield backend
        backend.close()

    @pytest.fixture
    def make_backend(self, node):
        return lambda prefix: riak_cache(node, prefix)

    @pytest.fixture
    def backend_error(self, node):
        @contextlib.contextmanager
        def down():
            node.kill()
            try:
                yield
            finally:
                node.start()
        return down
'''


@pytest.fixture(scope="module")
def venv(package_index, tmp_path_factory):
    """A fresh virtual environment with ``cliquet-riak`` and ``cliquet[testing]``
    installed from the local index (third-party dependencies from PyPI);
    returns ``(python, install output, the index's files)``."""
    url, uploaded = package_index
    where = tmp_path_factory.mktemp("venv") / "env"
    _run([UV, "venv", "--quiet", "--python", sys.executable, where], env=_clean_env())
    python = where / "bin" / "python"
    # `--index` comes before the default index (PyPI) and, with uv's default
    # first-index strategy, a project found there is taken from there only.
    result = _run([UV, "pip", "install", "--python", python, "--index", url,
                   "cliquet-riak", "cliquet[testing]"], env=_clean_env(), timeout=600)
    return python, result.stdout + result.stderr, uploaded


def test_every_python_artifact_is_published_to_the_index(package_index, release):
    url, uploaded = package_index
    folder, _ = release
    built = sorted(path.name for path in folder.iterdir() if path.suffix in (".whl", ".gz")
                   and not path.name.startswith("cliquet-client-"))
    assert uploaded == built
    page = urllib.request.urlopen(url + "cliquet/", timeout=10).read().decode()
    assert re.search(r"cliquet-3\.\d+\.\d+\S*-py3-none-any\.whl", page), page


def test_cliquet_riak_installs_with_cliquet_from_the_local_index(venv):
    python, output, _ = venv
    # The public index has no cliquet-riak, and no cliquet of this version:
    # both can only come from the local one.
    version = _run([python, "-c", "import cliquet, cliquet_riak, importlib.metadata as m;"
                    "print(m.version('cliquet'), cliquet.__file__)"]).stdout.split()
    local = re.search(r'__version__ = "([^"]+)"', (REPO / "packages/cliquet/src/cliquet/__about__.py").read_text())
    assert version[0] == local.group(1)
    assert str(REPO) not in version[1]  # the installed copy, not the checkout


def test_cliquet_testing_extra_is_minimal(venv):
    python, _, _ = venv
    missing = _run([python, "-c", "import importlib.util as u; print(' '.join(n for n in "
                    "('pytest', 'webtest', 'hypothesis', 'schemathesis', 'xdist', 'pytest_cov') "
                    "if u.find_spec(n) is None))"]).stdout.split()
    assert missing == ["hypothesis", "schemathesis", "xdist", "pytest_cov"]


def test_installed_cache_contract_suite_passes_on_riak(venv, tmp_path):
    python, _, _ = venv
    (tmp_path / "test_installed_riak.py").write_text(textwrap.dedent(INSTALLED_TEST))
    result = subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
                             "test_installed_riak.py"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=300, env=_clean_env())
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    passed = re.search(r"(\d+) passed", summary)
    assert passed and int(passed.group(1)) >= 15, summary
    assert "failed" not in summary and "error" not in summary, summary


# -- the npm tarball, published to a real npm registry on loopback ------------------

#: the npm registry the client's tarball is published to (6.8: 6.10 wants Node 22).
VERDACCIO = "verdaccio@6.8.0"
VERDACCIO_CONFIG = """\
storage: ./storage
auth:
  htpasswd:
    file: ./htpasswd
    max_users: -1
uplinks:
  npmjs:
    url: https://registry.npmjs.org/
packages:
  'cliquet-*':
    access: $all
    publish: $all
  '**':
    access: $all
    proxy: npmjs
log: { type: stdout, format: pretty, level: warn }
"""


@pytest.fixture(scope="module")
def npm_registry(tmp_path_factory):
    """``(url, npmrc)``: a Verdaccio on a loopback port (installed once into
    ``.cache/tools/verdaccio`` from npm), taking publications of ``cliquet-*``
    packages from anyone and proxying every other package to npm's registry."""
    if shutil.which("npm") is None or shutil.which("node") is None:
        pytest.fail("Node.js and npm are needed (the machine has Node 20)")
    tool = REPO / ".cache" / "tools" / "verdaccio"
    binary = tool / "node_modules" / ".bin" / "verdaccio"
    if not binary.exists():
        _run(["npm", "install", "--prefix", str(tool), "--no-audit", "--no-fund", "--loglevel=error", VERDACCIO],
             timeout=600)
    root = tmp_path_factory.mktemp("npm-registry")
    (root / "config.yaml").write_text(VERDACCIO_CONFIG)
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    npmrc = root / "npmrc"
    npmrc.write_text(f"//127.0.0.1:{port}/:_authToken=release-test\n")
    log = root / "verdaccio.log"
    with open(log, "w") as stream:
        server = subprocess.Popen([str(binary), "--config", str(root / "config.yaml"), "--listen",
                                   f"127.0.0.1:{port}"], cwd=root, stdout=stream, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url + "-/ping", timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail(f"Verdaccio did not start: {log.read_text()}")
                time.sleep(0.2)
        yield url, npmrc
    finally:
        server.terminate()
        server.wait(10)


def test_the_client_tarball_publishes_and_installs_from_an_npm_registry(npm_registry, release, tmp_path):
    url, npmrc = npm_registry
    folder, _ = release
    tarball = next(folder.glob("cliquet-client-*.tgz"))
    npm = ["npm", "--registry", url, "--userconfig", str(npmrc), "--no-audit", "--no-fund"]
    _run([*npm, "publish", str(tarball)], timeout=120)
    project = tmp_path / "app"
    project.mkdir()
    (project / "package.json").write_text('{"name": "app", "version": "1.0.0", "type": "module"}\n')
    _run([*npm, "install", "cliquet-client"], cwd=project, timeout=300)
    version = tarball.name[len("cliquet-client-"):-len(".tgz")]
    # The installed copy works offline: a local create and get on the memory store.
    check = ("import { Client, MemoryStore } from 'cliquet-client';"
             "import fs from 'node:fs';"
             "const meta = JSON.parse(fs.readFileSync('node_modules/cliquet-client/package.json'));"
             "const client = new Client({server: 'http://127.0.0.1:9/v1', store: new MemoryStore()});"
             "const articles = client.resource('/articles');"
             "const record = await articles.create({title: 'published'});"
             "console.log(meta.version, (await articles.get(record.id)).title);")
    out = _run(["node", "--input-type=module", "-e", check], cwd=project, timeout=60).stdout.split()
    assert out == [version, "published"], out
