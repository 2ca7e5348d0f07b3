import pytest

from cliquet.testing.app import basic_auth, make_app


@pytest.fixture
def app():
    """A fresh test app on memory backends (nothing shared between tests)."""
    return make_app()


@pytest.fixture
def headers():
    return basic_auth("alice")


@pytest.fixture
def other_headers():
    return basic_auth("bob")
