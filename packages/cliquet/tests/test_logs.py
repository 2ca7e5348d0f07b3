"""Request logs: one line per request on the ``cliquet.request`` logger."""

import json
import logging

import pytest
from pyramid.exceptions import ConfigurationError

from cliquet.logs import LOGGER_NAME, _StderrHandler, render_console
from cliquet.resource import UserResource
from cliquet.testing.app import Article, ArticleSchema, basic_auth, make_app


def lines(capsys):
    """The request lines written to stderr since the last call."""
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def json_lines(capsys):
    return [json.loads(line) for line in lines(capsys)]


@pytest.fixture
def app(capsys):
    application = make_app()
    capsys.readouterr()
    return application


def test_one_json_line_per_request_with_the_request_fields(app, capsys):
    hello = app.get("/v1/", headers=basic_auth("alice")).json
    capsys.readouterr()
    response = app.get("/v1/articles", headers=basic_auth("alice"))
    [line] = json_lines(capsys)
    assert line["method"] == "GET"
    assert line["path"] == "/v1/articles"
    assert line["route"] == "article-collection"
    assert line["status"] == 200
    assert isinstance(line["duration_ms"], float) and 0 <= line["duration_ms"] < 10_000
    assert line["user_id"] == hello["user"]["id"]
    assert line["request_id"] == response.headers["X-Request-Id"]
    assert len(line["request_id"]) == 32
    assert line["level"] == "INFO"
    assert line["time"].endswith("Z") and line["time"][10] == "T"
    assert "errno" not in line


def test_error_lines_carry_the_errno(app, capsys):
    app.get("/v1/articles", status=401)
    app.get("/v1/articles/not-an-id", headers=basic_auth(), status=400)
    app.get("/v1/nowhere", status=404)
    anonymous, bad_id, unknown = json_lines(capsys)
    assert (anonymous["status"], anonymous["errno"], anonymous["user_id"]) == (401, 104, None)
    assert (bad_id["status"], bad_id["errno"]) == (400, 110)
    assert (unknown["status"], unknown["errno"], unknown["route"]) == (404, 111, None)


def test_a_sane_incoming_request_id_is_kept_and_returned(app, capsys):
    response = app.get("/v1/", headers={"X-Request-Id": "edge-42.abc:7"})
    assert response.headers["X-Request-Id"] == "edge-42.abc:7"
    assert json_lines(capsys)[0]["request_id"] == "edge-42.abc:7"


@pytest.mark.parametrize("incoming", ["has spaces", "x" * 129, "é"])
def test_an_unusable_request_id_is_replaced(app, capsys, incoming):
    response = app.get("/v1/", headers={"X-Request-Id": incoming.encode().decode("latin-1")})
    assert response.headers["X-Request-Id"] != incoming
    assert len(response.headers["X-Request-Id"]) == 32
    assert json_lines(capsys)[0]["request_id"] == response.headers["X-Request-Id"]


def test_batch_subrequests_are_logged_with_the_batch_request_id(app, capsys):
    body = {"requests": [{"method": "POST", "path": "/articles", "body": {"data": {"title": "a"}}},
                         {"method": "GET", "path": "/articles"}]}
    response = app.post_json("/v1/batch", body, headers={**basic_auth(), "X-Request-Id": "batch-1"})
    logged = json_lines(capsys)
    assert [(line["method"], line["status"], line.get("batch", False)) for line in logged] == [
        ("POST", 201, True), ("GET", 200, True), ("POST", 200, False)]
    assert {line["request_id"] for line in logged} == {"batch-1"}
    assert response.headers["X-Request-Id"] == "batch-1"


def test_console_renderer_writes_a_readable_line(capsys):
    app = make_app(logging_renderer="console")
    capsys.readouterr()
    app.get("/v1/articles", headers=basic_auth(), status=200)
    app.get("/v1/articles", status=401)
    ok, denied = lines(capsys)
    assert " GET /v1/articles 200 " in ok and "ms user=basicauth:" in ok and " id=" in ok
    assert " GET /v1/articles 401 " in denied and "errno=104" in denied and "user=-" in denied
    with pytest.raises(ValueError):
        json.loads(ok)


def test_render_console_format():
    line = render_console({"time": "2026-01-02T03:04:05.678Z", "method": "PUT", "path": "/v1/x", "status": 412,
                           "duration_ms": 1.25, "user_id": None, "request_id": "r1", "errno": 114})
    assert line == "03:04:05.678 PUT /v1/x 412 1.2ms errno=114 user=- id=r1"


def test_off_logs_nothing_and_adds_no_header(capsys):
    app = make_app(logging_renderer="off")
    capsys.readouterr()
    response = app.get("/v1/")
    assert lines(capsys) == []
    assert "X-Request-Id" not in response.headers


class Exploding(UserResource):
    """A resource whose writes fail with an unexpected error."""

    schema = ArticleSchema

    def process_record(self, new, old=None):
        raise RuntimeError("boom")


def test_level_setting_filters_and_5xx_are_logged_as_errors(capsys):
    app = make_app(logging_level="WARNING", resources=(Article, Exploding))
    capsys.readouterr()
    app.get("/v1/", status=200)
    app.post_json("/v1/explodings", {"data": {"title": "x"}}, headers=basic_auth(), status=500)
    [line] = [line for line in lines(capsys) if line.startswith("{")]
    line = json.loads(line)
    assert (line["status"], line["level"], line["errno"]) == (500, "ERROR", 999)
    make_app()  # back to INFO for the other tests of this process


@pytest.mark.parametrize("name, value", [("logging_renderer", "xml"), ("logging_level", "LOUD")])
def test_invalid_settings_fail_at_start_up(name, value):
    with pytest.raises(ConfigurationError, match=f"cliquet.{name}"):
        make_app(**{name: value})


def test_a_handler_configured_on_the_logger_is_respected(capsys):
    logger = logging.getLogger(LOGGER_NAME)
    records = []

    class Collect(logging.Handler):
        def emit(self, record):
            records.append(record)

    saved = (logger.handlers[:], logger.level, logger.propagate)
    logger.handlers[:] = [Collect()]
    logger.setLevel(logging.INFO)
    try:
        app = make_app()
        capsys.readouterr()
        app.get("/v1/articles", headers=basic_auth())
        assert lines(capsys) == []
        [record] = records
        assert record.cliquet_request["status"] == 200
        assert json.loads(record.getMessage())["route"] == "article-collection"
    finally:
        logger.handlers[:], level, logger.propagate = saved
        logger.setLevel(level)


def test_response_errno_reads_error_bodies():
    from pyramid.response import Response

    from cliquet.logs import response_errno

    error = Response(body=b'{"code": 409, "errno": 122, "error": "Conflict"}', status=409,
                     content_type="application/json", charset=None)
    assert response_errno(error) == 122
    assert response_errno(Response(body=b"nope", status=400, content_type="text/plain")) is None
    assert response_errno(Response(body=b"[1]", status=400, content_type="application/json", charset=None)) is None
    assert response_errno(Response(body=b"{", status=400, content_type="application/json", charset=None)) is None
    assert response_errno(Response(body=b'{"errno": 1}', status=200, content_type="application/json",
                                   charset=None)) is None


def test_an_exception_escaping_the_application_is_logged_as_a_500(capsys):
    from pyramid.request import Request

    from cliquet.logs import request_log_tween_factory

    registry = make_app().app.registry
    capsys.readouterr()

    def handler(request):
        raise RuntimeError("escaped")

    tween = request_log_tween_factory(handler, registry)
    request = Request.blank("/v1/somewhere")
    request.registry = registry
    with pytest.raises(RuntimeError):
        tween(request)
    [line] = json_lines(capsys)
    assert (line["status"], line["level"], line["errno"], line["path"]) == (500, "ERROR", 999, "/v1/somewhere")


def test_lines_to_the_own_handler_skip_the_log_record(app, capsys, monkeypatch):
    """The default set-up (Cliquet's stderr handler alone on the logger)
    writes each line without building a LogRecord — the most expensive part
    of a line; a logging configuration of its own still gets records."""
    made = []
    original = logging.Logger.makeRecord
    monkeypatch.setattr(logging.Logger, "makeRecord", lambda self, *a, **k: made.append(a) or original(self, *a, **k))
    logger = logging.getLogger(LOGGER_NAME)
    # alone, as outside pytest (whose capture handlers land on the logger too)
    monkeypatch.setattr(logger, "handlers", [h for h in logger.handlers if isinstance(h, _StderrHandler)])
    assert len(logger.handlers) == 1 and not logger.propagate
    app.get("/v1/", status=200)
    app.get("/v1/nothing-here", status=404)
    assert made == []
    ok, missing = json_lines(capsys)
    assert (ok["status"], missing["status"], missing["errno"]) == (200, 404, 111)
    seen = []
    handler = logging.Handler()
    handler.emit = seen.append
    logger.addHandler(handler)
    app.get("/v1/", status=200)
    assert len(made) == 1 and seen[0].cliquet_request["status"] == 200
