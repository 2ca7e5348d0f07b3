"""The pytest plugin and the contract-suite machinery of cliquet.testing."""

import re
import subprocess
import sys
import textwrap

import pytest

from cliquet.testing import plugin


def test_service_url_returns_the_variable():
    assert plugin.service_url("X_URL", environ={"X_URL": " redis://h/1 "}) == "redis://h/1"


def test_missing_service_skips_with_the_variable_name():
    with pytest.raises(pytest.skip.Exception, match="X_URL is not set"):
        plugin.service_url("X_URL", environ={"X_URL": ""})


@pytest.mark.parametrize("ci", ["true", "TRUE", " true "])
def test_missing_service_fails_in_ci(ci):
    with pytest.raises(pytest.fail.Exception, match="X_URL .*CI=true"):
        plugin.service_url("X_URL", environ={"CI": ci})


def test_ci_other_values_skip():
    with pytest.raises(pytest.skip.Exception):
        plugin.service_url("X_URL", environ={"CI": "1"})


def test_require_module_returns_the_module():
    assert plugin.require_module("json", environ={}).dumps([]) == "[]"


def test_missing_driver_skips_locally():
    with pytest.raises(pytest.skip.Exception, match="the `nope` extra"):
        plugin.require_module("cliquet_no_such_driver", reason="the `nope` extra", environ={})


def test_missing_driver_fails_in_ci():
    with pytest.raises(pytest.fail.Exception, match="cliquet_no_such_driver.*CI=true"):
        plugin.require_module("cliquet_no_such_driver", environ={"CI": "true"})


def test_no_backend_suite_hides_behind_an_import_skip():
    """pytest's import-or-skip helper at module level skips a whole suite even in CI."""
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[2]
    offenders = [str(path.relative_to(root)) for path in root.glob("*/tests/**/*.py")
                 if "importor" + "skip(" in path.read_text(encoding="utf-8")]
    assert offenders == [], "use cliquet.testing.plugin.require_module instead"


def test_worker_prefix_is_safe_everywhere():
    prefix = plugin.worker_prefix("gw12", "3F9A-2C1D-EEEE")
    assert prefix == "t3f9a2c1d_gw12_"
    assert plugin.worker_prefix("", "") == "trun_main_"


def test_cliquet_worker_prefix_fixture(cliquet_worker_prefix, request):
    assert re.fullmatch(r"t[a-z0-9]{1,8}_[a-z0-9]+_", cliquet_worker_prefix)
    assert cliquet_worker_prefix == request.getfixturevalue("cliquet_worker_prefix")


SUITE_USER = '''
import pytest
from cliquet.storage import memory
from cliquet.testing.cache import CacheContract
from cliquet.testing.storage import StorageContract


class TestForgotTheBackend(CacheContract):
    pass


class TestNoTransactions(StorageContract):
    @pytest.fixture
    def backend(self):
        return memory.Storage()

    @pytest.fixture
    def capabilities(self):
        return set()
'''


def test_contract_machinery_in_a_separate_run(tmp_path):
    """A missing `backend` fixture is an error naming it; a missing capability
    or `backend_error` is a skip with its reason."""
    (tmp_path / "test_user.py").write_text(textwrap.dedent(SUITE_USER))
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:randomly", "-p", "no:cacheprovider", "-n0", "-rs", "-q",
         "-k", "heartbeat or transaction or backend_error", str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    assert "needs a `backend` fixture" in output
    assert "does not declare the 'transactions' capability" in output
    assert "no `backend_error` fixture" in output
    assert re.search(r"\d+ passed", output) and re.search(r"\d+ skipped", output)
    assert re.search(r"\d+ errors?", output)
