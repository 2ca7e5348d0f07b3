"""Fixtures of the cliquet-indexing tests."""

from __future__ import annotations

import pytest

from cliquet.testing.app import Article, SharedArticle, basic_auth
from cliquet_indexing.testing.app import make_search_app


@pytest.fixture(params=["per-user", "shareable"])
def app(request):
    """A fresh app whose ``articles`` are per-user or shareable."""
    return make_search_app(resources=(Article,) if request.param == "per-user" else (SharedArticle,))


@pytest.fixture
def alice():
    return basic_auth("alice")


@pytest.fixture
def bob():
    return basic_auth("bob")
