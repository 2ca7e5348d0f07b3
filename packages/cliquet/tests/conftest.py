import pytest

from cliquet.testing.app import Article, SharedArticle, basic_auth, make_app


@pytest.fixture(params=["per-user", "shareable"])
def app(request):
    """A fresh test app on memory backends (nothing shared between tests), whose
    ``articles`` are per-user or shareable: the protocol is the same."""
    resources = (Article,) if request.param == "per-user" else (SharedArticle,)
    return make_app(resources=resources)


@pytest.fixture
def headers():
    return basic_auth("alice")


@pytest.fixture
def other_headers():
    return basic_auth("bob")
