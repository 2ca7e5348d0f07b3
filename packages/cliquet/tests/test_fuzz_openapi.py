"""Schemathesis fuzzes two applications from their own OpenAPI documents,
authenticated, in-process through WSGI: the test application (per-user
articles) and the documentation's example service (shareable articles, as
``./ci/serve`` runs it, from its INI file).

Checked on every response: no 5xx; a documented status code, content type,
headers and body schema; schema-valid requests accepted and schema-violating
ones rejected. Positive and negative examples of each operation, then
stateful sequences that follow the document's links (create a record, then
read, replace, modify or delete it); bounded so the run stays under a
minute.

A 412 is a right answer to schema-valid and schema-violating requests
alike (preconditions are checked before the body). Two answers are right
although the data is schema-valid, and are expected:
412 (``If-Match``/``If-None-Match`` hold a well-formed timestamp that is not
the current one) and a 400 for a ``_token`` (an opaque signed token: no
schema can tell a valid one, so positive acceptance is not asked of requests
carrying one).
"""

import hypothesis
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from pathlib import Path

from pyramid.paster import get_app

from cliquet.testing.app import basic_auth, make_wsgi_app

#: examples per operation and generation mode.
MAX_EXAMPLES = 20
EXAMPLE_INI = Path(__file__).resolve().parents[3] / "docs" / "example" / "myproject.ini"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance,
          negative_data_rejection, positive_data_acceptance]
CONFIG = schemathesis.Config.from_dict({
    "checks": {
        "positive_data_acceptance": {"expected-statuses": ["2xx", "3xx", "401", "403", "404", "412"]},
        "negative_data_rejection": {"expected-statuses": ["400", "401", "403", "404", "405", "406", "411",
                                                          "412", "413", "415"]},
    },
})

_test_wsgi = make_wsgi_app(batch_max_requests=5)
_example_wsgi = get_app(str(EXAMPLE_INI))
test_app = schemathesis.openapi.from_wsgi("/v1/__api__", _test_wsgi, config=CONFIG)
example_app = schemathesis.openapi.from_wsgi("/v1/__api__", _example_wsgi, config=CONFIG)


def _flush(wsgi_app):
    """Empty the app's backends: each stateful run starts from the same state,
    so that Hypothesis can replay a run and get the same answers."""
    registry = wsgi_app.registry
    for name in ("storage", "cache", "permission", "indexer"):
        backend = getattr(registry, name, None)
        if backend is not None:
            backend.flush()


def filter_query(context, query):
    """Leave out raw ';' in query values: the WSGI test transport sends them
    unencoded, and WebOb (like browsers' old form rules) splits on them."""
    values = []
    for value in (query or {}).values():
        values.extend(value if isinstance(value, list) else [value])
    return not any(";" in str(value) for value in values)


for _schema in (test_app, example_app):
    _schema.hook(filter_query)

_SETTINGS = hypothesis.settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                                suppress_health_check=list(hypothesis.HealthCheck))


def _call_and_validate(case, user):
    checks = CHECKS
    if case.query and "_token" in case.query:
        checks = [check for check in CHECKS if check is not positive_data_acceptance]
    case.call_and_validate(headers=basic_auth(user), checks=checks)


@pytest.mark.xdist_group("fuzz_openapi_test_app")
@test_app.parametrize()
@_SETTINGS
def test_test_app_conforms_to_its_openapi_description(case):
    _call_and_validate(case, "fuzzer")


@pytest.mark.xdist_group("fuzz_openapi_example")
@example_app.parametrize()
@_SETTINGS
def test_example_app_conforms_to_its_openapi_description(case):
    _call_and_validate(case, "fuzzer")


# -- stateful: create a record, then read, change and delete it (OpenAPI links) --

def _workflows(schema, user, wsgi_app):
    machine = schema.as_state_machine()

    class Workflows(machine):
        def setup(self):
            _flush(wsgi_app)
            super().setup()

        def get_call_kwargs(self, case):
            return {"headers": basic_auth(user)}

        def validate_response(self, response, case, **kwargs):
            _validate_stateful(case, response)

    Workflows.TestCase.settings = hypothesis.settings(
        max_examples=15, stateful_step_count=8, deadline=None, derandomize=True, database=None,
        suppress_health_check=list(hypothesis.HealthCheck))
    return Workflows


def _validate_stateful(case, response):
    checks = [check for check in CHECKS if check is not positive_data_acceptance or
              not (case.query and "_token" in case.query)]
    case.validate_response(response, checks=checks)


@pytest.mark.xdist_group("fuzz_openapi_test_app")
class TestTestAppWorkflows(_workflows(test_app, "fuzzer", _test_wsgi).TestCase):
    """Sequences of linked calls on the per-user articles."""


@pytest.mark.xdist_group("fuzz_openapi_example")
class TestExampleWorkflows(_workflows(example_app, "fuzzer", _example_wsgi).TestCase):
    """Sequences of linked calls on the shareable articles."""
