"""``cliquet init`` without installing anything: names, choices, the files
written, the command line (the projects are installed, tested and served in
``test_scaffold_projects.py``)."""

from __future__ import annotations

import ast
import configparser
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from cliquet.scaffold import Options, ScaffoldError, create, distributions, render, validate_name
from cliquet.scripts.cliquet import main
from cliquet.testing.plugin import require_module

CLIQUET = Path(sys.executable).parent / "cliquet"


@pytest.mark.parametrize("name", ["myservice", "notes_api", "s2", "_private"])
def test_valid_names(name):
    assert validate_name(name) == name


@pytest.mark.parametrize("name, reason", [
    ("", "required"),
    ("My-Service", "not a valid name"),
    ("2fast", "not a valid name"),
    ("café", "not a valid name"),
    ("class", "keyword"),
    ("match", "keyword"),
    ("json", "standard library"),
    ("asyncio", "standard library"),
    ("cliquet", "a Cliquet service uses"),
    ("cliquet_riak", "a Cliquet service uses"),
    ("cliquetx", "a Cliquet service uses"),
    ("pyramid", "a Cliquet service uses"),
    ("tests", "a Cliquet service uses"),
])
def test_invalid_names_are_refused_with_the_reason(name, reason):
    with pytest.raises(ScaffoldError, match=reason):
        validate_name(name)


def test_unknown_choices_are_refused():
    with pytest.raises(ScaffoldError, match="unknown storage 'mysql'"):
        Options("svc", storage="mysql")
    with pytest.raises(ScaffoldError, match="unknown cache"):
        Options("svc", cache="memcached")
    with pytest.raises(ScaffoldError, match="unknown package"):
        Options("svc", features=("search",))


def test_elasticsearch_brings_indexing_and_permission_follows_storage():
    options = Options("svc", storage="redis", features=("elasticsearch",))
    assert options.features == ("indexing", "elasticsearch")
    assert options.permission == "redis"
    assert options.indexer == "elasticsearch"
    assert Options("svc", storage="postgresql", features=("indexing",)).indexer == "postgresql"
    assert Options("svc", features=("indexing",)).indexer == "embedded"
    assert Options("svc").indexer is None


@pytest.mark.parametrize("options, expected", [
    (Options("svc"), ["cliquet[serve]>=3.2.0.dev0,<4"]),
    (Options("svc", storage="postgresql", cache="riak", features=("indexing", "elasticsearch")),
     ["cliquet[serve,postgresql]>=3.2.0.dev0,<4", "cliquet-riak>=0.1.0.dev0,<1",
      "cliquet-indexing>=0.1.0.dev0,<1", "cliquet-elasticsearch>=0.1.0.dev0,<1"]),
    (Options("svc", storage="redis", cache="postgresql", features=("admin", "oidc")),
     ["cliquet[serve,postgresql,redis]>=3.2.0.dev0,<4", "cliquet-oidc>=0.1.0.dev0,<1",
      "cliquet-admin>=0.1.0.dev0,<1"]),
])
def test_the_project_depends_on_exactly_the_chosen_distributions(options, expected):
    assert distributions(options) == expected
    pyproject = tomllib.loads(render(options)["pyproject.toml"])
    assert pyproject["project"]["dependencies"] == expected
    assert pyproject["project"]["entry-points"]["paste.app_factory"] == {"main": "svc:main"}
    # The tests need what the contract suites need, not this repository's own test tools.
    assert pyproject["project"]["optional-dependencies"]["test"] == ["cliquet[testing]>=3.2.0.dev0,<4",
                                                                     "pytest-xdist>=3.5"]


def test_the_ranges_admit_the_monorepo_versions():
    from importlib.metadata import version

    from packaging.specifiers import SpecifierSet

    from cliquet.scaffold import CORE_RANGE, PACKAGE_RANGE

    assert version("cliquet") in SpecifierSet(CORE_RANGE, prereleases=True)
    for name in ("cliquet-riak", "cliquet-indexing", "cliquet-elasticsearch", "cliquet-oidc", "cliquet-admin"):
        assert version(name) in SpecifierSet(PACKAGE_RANGE, prereleases=True), name


ALL_COMBINATIONS = [Options("svc", storage=s, cache=c, features=f)
                    for s in ("memory", "postgresql", "redis")
                    for c in ("memory", "postgresql", "redis", "riak")
                    for f in ((), ("indexing",), ("elasticsearch", "oidc", "admin"))]


@pytest.mark.parametrize("options", ALL_COMBINATIONS, ids=lambda o: f"{o.storage}-{o.cache}-{'+'.join(o.features)}")
def test_every_combination_renders_valid_python_ini_and_toml(options):
    files = render(options)
    assert set(files) == {"pyproject.toml", "README.md", "svc.ini", "svc/__init__.py", "svc/resources.py",
                          "tests/conftest.py", "tests/test_backends.py", "tests/test_service.py"}
    for path, text in files.items():
        if path.endswith(".py"):
            ast.parse(text, path)
            assert "$" not in text, path  # no template placeholder left
    tomllib.loads(files["pyproject.toml"])
    ini = configparser.ConfigParser(interpolation=None)
    ini.read_string(files["svc.ini"])
    app = ini["app:main"]
    assert app["use"] == "egg:svc"
    assert app["cliquet.storage_backend"] == f"cliquet.storage.{options.storage}"
    assert app["cliquet.permission_backend"] == f"cliquet.permission.{options.storage}"
    expected_cache = "cliquet_riak.cache" if options.cache == "riak" else f"cliquet.cache.{options.cache}"
    assert app["cliquet.cache_backend"] == expected_cache
    includes = app.get("pyramid.includes", "").split()
    assert includes == [f"cliquet_{f}" for f in options.features if f != "elasticsearch"]
    if options.indexer == "elasticsearch":
        assert app["cliquet.indexing_backend"] == "cliquet_elasticsearch"
    tests = files["tests/test_backends.py"]
    classes = [node.name for node in ast.parse(tests).body if isinstance(node, ast.ClassDef)]
    assert classes == ["TestStorage", "TestPermission", "TestCache"] + (["TestIndexer"] if options.indexer else [])
    assert ("test_notes_are_searchable" in files["tests/test_service.py"]) == bool(options.indexer)


def test_create_writes_the_project_and_refuses_to_overwrite(tmp_path):
    target = create(Options("svc"), tmp_path)
    assert target == tmp_path / "svc"
    ini = (target / "svc.ini").read_text()
    (target / "svc.ini").write_text("mine")
    with pytest.raises(ScaffoldError, match="already exists"):
        create(Options("svc", storage="redis"), tmp_path)
    assert (target / "svc.ini").read_text() == "mine"
    # Each project gets its own secret.
    other = create(Options("svc2"), tmp_path)
    secret = [line for line in ini.splitlines() if line.startswith("cliquet.userid_hmac_secret")]
    assert secret and secret[0] not in (other / "svc2.ini").read_text()


def test_the_command_writes_a_project(tmp_path, capsys):
    code = main(["init", "svc", "--storage", "postgresql", "--cache", "riak", "--with", "indexing,elasticsearch",
                 "--directory", str(tmp_path), "--no-input"])
    assert code == 0
    out = capsys.readouterr().out
    assert "cliquet serve --ini svc.ini" in out
    assert "cliquet-riak" in (tmp_path / "svc" / "pyproject.toml").read_text()


@pytest.mark.parametrize("argv, message", [
    (["init", "json"], "standard library"),
    (["init", "svc", "--with", "nope"], "unknown package"),
    (["init"], "a project name is required"),
])
def test_the_command_refuses_bad_choices_in_one_line(tmp_path, capsys, argv, message):
    assert main([*argv, "--directory", str(tmp_path), "--no-input"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_the_command_refuses_an_existing_directory(tmp_path, capsys):
    (tmp_path / "svc").mkdir()
    (tmp_path / "svc" / "keep").write_text("x")
    assert main(["init", "svc", "--directory", str(tmp_path)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "svc").iterdir()] == ["keep"]


def test_without_a_terminal_the_flags_decide(tmp_path):
    """Standard input not a terminal (CI, a pipe): no question, defaults."""
    result = subprocess.run([CLIQUET, "init", "svc", "--directory", tmp_path], stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "cliquet.storage_backend = cliquet.storage.memory" in (tmp_path / "svc" / "svc.ini").read_text()


def test_in_a_terminal_the_questions_fill_what_the_flags_left_open():
    """The real questionary prompts, fed keystrokes through prompt_toolkit's pipe input."""
    questionary = require_module("questionary", reason="the `init` extra of cliquet is not installed")
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    from cliquet.scaffold.prompt import ask

    down, enter, space = "\x1b[B", "\r", " "
    with create_pipe_input() as keys:
        # name: the default (myservice) erased, notes; storage: down once
        # (postgresql); cache: given by a flag; packages: the first (indexing) ticked.
        keys.send_text("\x7f" * 9 + "notes" + enter + down + enter + space + enter)
        answers = ask(questionary, {"name": None, "storage": None, "cache": "riak", "features": None},
                      input=keys, output=DummyOutput())
    assert answers == {"name": "notes", "storage": "postgresql", "cache": "riak", "features": ["indexing"]}


def test_a_name_the_questions_refuse_is_asked_again():
    questionary = require_module("questionary", reason="the `init` extra of cliquet is not installed")
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    from cliquet.scaffold.prompt import ask

    with create_pipe_input() as keys:
        # "json" shadows the standard library: refused; erased, then "svc".
        keys.send_text("\x7f" * 20 + "json\r" + "\x7f" * 4 + "svc\r")
        answers = ask(questionary, {"name": None, "storage": "memory", "cache": "memory", "features": []},
                      input=keys, output=DummyOutput())
    assert answers["name"] == "svc"


def test_in_a_real_terminal_the_command_asks(tmp_path):
    """``cliquet init`` in a pseudo-terminal: the questions appear, and the
    answers typed make the project."""
    require_module("questionary", reason="the `init` extra of cliquet is not installed")
    import os
    import pty
    import select
    import time

    master, slave = pty.openpty()
    process = subprocess.Popen([CLIQUET, "init", "--cache", "redis", "--directory", tmp_path],
                               stdin=slave, stdout=slave, stderr=slave, close_fds=True,
                               env={**os.environ, "TERM": "xterm"})
    os.close(slave)
    screen = b""

    def read_until(text: bytes, timeout: float = 30.0):
        nonlocal screen
        deadline = time.monotonic() + timeout
        while text not in screen:
            assert time.monotonic() < deadline, f"{text!r} not shown; the terminal shows {screen[-2000:]!r}"
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    screen += os.read(master, 65536)
                except OSError:
                    break

    try:
        read_until(b"Project name")
        os.write(master, b"\x7f" * 9 + b"termsvc\r")
        read_until(b"Storage")
        os.write(master, b"\x1b[B\x1b[B\r")  # memory, postgresql, redis: the third
        read_until(b"Packages to include")
        os.write(master, b"\r")  # none
        read_until(b"Created")
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)
    assert b"Cache" not in screen  # given by a flag: not asked
    ini = (tmp_path / "termsvc" / "termsvc.ini").read_text()
    assert "cliquet.storage_backend = cliquet.storage.redis" in ini
    assert "cliquet.cache_backend = cliquet.cache.redis" in ini
