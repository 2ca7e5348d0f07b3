"""The shared search endpoint contract (:mod:`cliquet_indexing.testing.endpoint`)
with Elasticsearch as the indexer, enabled by including ``cliquet_elasticsearch``
(the test node of ``ci/services``, an index prefix of this test's own)."""

from __future__ import annotations

import pytest
import webtest
from pyramid.config import Configurator

import cliquet
from cliquet.testing.app import TEST_SECRET, Article
from cliquet_elasticsearch.indexer import ElasticsearchIndexer
from cliquet_indexing.testing.endpoint import SearchEndpointContract


class TestElasticsearchSearchEndpoint(SearchEndpointContract):
    """Elasticsearch answers the endpoint as every indexer does."""

    @pytest.fixture
    def make_app(self, elasticsearch_url, es_prefix):
        def make(resources=None, include="pyramid.includes", **settings):
            raw = {"userid_hmac_secret": TEST_SECRET, "indexing_url": elasticsearch_url,
                   "indexing_prefix": es_prefix, "indexing_retry_interval": "0",
                   "elasticsearch_timeout": "30s", **settings}
            app_settings = {f"cliquet.{k}": v for k, v in raw.items()}
            if include == "pyramid.includes":
                app_settings["pyramid.includes"] = "cliquet_elasticsearch"
            config = Configurator(settings=app_settings)
            cliquet.initialize(config, "0.0.1", project_name="testapp")
            if include == "config.include":
                config.include("cliquet_elasticsearch")
            for resource_cls in resources or (Article,):
                config.add_resource(resource_cls)
            app = webtest.TestApp(config.make_wsgi_app())
            assert isinstance(app.app.registry.indexer, ElasticsearchIndexer)
            return app

        return make
