"""The HTTP edge against hostile clients, through the WSGI app: CORS,
metrics labels, the ``Host`` header, log lines and credentials in memory.

Slow and stalled clients need a real server: see ``test_slow_clients.py``.
"""

import gc
import json
import logging
import time
import uuid

import pytest

from cliquet.testing.app import basic_auth, make_app
from cliquet.testing.plugin import require_module

ORIGIN = "https://app.example.com"


def preflight(app, origin, **extra):
    headers = {"Origin": origin, "Access-Control-Request-Method": "POST",
               "Access-Control-Request-Headers": "Authorization, Content-Type"}
    return app.options("/v1/articles", headers=headers, **extra)


# -- CORS ----------------------------------------------------------------------------


@pytest.mark.parametrize("origin", [ORIGIN, "null", "https://evil.example"])
def test_any_origin_never_gets_credentials(origin):
    app = make_app()  # cors_origins = * (the default)
    for response in (app.get("/v1/articles", headers={"Origin": origin, **basic_auth()}),
                     app.get("/v1/articles", headers={"Origin": origin}, status=401),
                     preflight(app, origin)):
        assert response.headers["Access-Control-Allow-Origin"] == origin
        assert "Access-Control-Allow-Credentials" not in response.headers
        assert "Origin" in response.headers["Vary"]


def test_listed_origins_get_credentials_and_others_nothing():
    app = make_app(cors_origins=f"{ORIGIN} https://other.example *")
    listed = app.get("/v1/", headers={"Origin": ORIGIN})
    assert listed.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert listed.headers["Access-Control-Allow-Credentials"] == "true"
    unlisted = app.get("/v1/", headers={"Origin": "https://evil.example"})
    assert unlisted.headers["Access-Control-Allow-Origin"] == "https://evil.example"
    assert "Access-Control-Allow-Credentials" not in unlisted.headers

    strict = make_app(cors_origins=ORIGIN)
    refused = strict.get("/v1/", headers={"Origin": "null"})
    assert "Access-Control-Allow-Origin" not in refused.headers
    assert "Access-Control-Allow-Credentials" not in refused.headers


@pytest.mark.parametrize("cors_origins", ["*", ORIGIN])
def test_vary_origin_on_every_response_and_on_preflights(cors_origins):
    app = make_app(cors_origins=cors_origins)
    for response in (app.get("/v1/"), app.get("/v1/", headers={"Origin": ORIGIN}),
                     app.get("/v1/articles", status=401), app.get("/v1/nothing", status=404),
                     app.get("/__lbheartbeat__")):
        assert "Origin" in [value.strip() for value in response.headers["Vary"].split(",")]
    vary = [value.strip() for value in preflight(app, ORIGIN).headers["Vary"].split(",")]
    assert {"Origin", "Access-Control-Request-Method", "Access-Control-Request-Headers"} <= set(vary)


# -- Metrics -------------------------------------------------------------------------


def series(app, name="cliquet_request_duration_seconds_count"):
    text = app.get("/__metrics__").text
    return [line for line in text.splitlines() if line.startswith(name + "{")]


@pytest.mark.filterwarnings("ignore:Unknown REQUEST_METHOD")  # webtest's lint, about what this test sends
def test_made_up_methods_and_paths_add_no_series():
    require_module("prometheus_client", reason="the `prometheus` extra is not installed")
    app = make_app(prometheus_enabled="true")
    app.get("/v1/")
    before = len(series(app))
    started = time.monotonic()
    for i in range(300):
        app.request(f"/v1/nothing-{i}", method=f"X{i}", status="*")
        app.get(f"/v1/unknown/{i}", status=404)
        app.request("/v1/articles", method=f"Y{i}", status="*")
    after = series(app)
    assert time.monotonic() - started < 60
    assert len(after) - before <= 6, after
    assert not [line for line in after if 'method="X' in line or 'method="Y' in line]
    assert any('method="other"' in line for line in after)
    assert not [line for line in after if "nothing-" in line or "/unknown/" in line]


def test_statsd_keys_are_bounded_too():
    from cliquet.metrics import Metrics

    sent = []

    class Recorder:
        def timing(self, key, ms):
            sent.append(key)

    Metrics(statsd=Recorder()).observe_request("article-collection", "GET|c\nevil:1", 200, 0.001)
    assert sent == ["request.article-collection.other.200"]


def test_metrics_can_be_restricted_to_principals():
    require_module("prometheus_client", reason="the `prometheus` extra is not installed")
    scraper = make_app(prometheus_enabled="true").get("/v1/", headers=basic_auth("scraper")).json["user"]["id"]
    app = make_app(prometheus_enabled="true", prometheus_principals=scraper)
    assert app.get("/__metrics__", status=401).json["errno"] == 104
    assert app.get("/__metrics__", headers=basic_auth("alice"), status=403).json["errno"] == 121
    assert "cliquet_request_duration_seconds" in app.get("/__metrics__", headers=basic_auth("scraper")).text


# -- Host ----------------------------------------------------------------------------


EVIL_HOST = {"HTTP_HOST": "evil.example:80"}


def test_an_untrusted_host_is_refused_and_never_reflected(headers):
    app = make_app(paginate_by=1)
    for _ in range(2):
        app.post_json("/v1/articles", {"data": {"title": "x"}}, headers=headers)
    responses = [
        app.get("/v1/articles", headers=headers, extra_environ=EVIL_HOST, status=400),
        app.get("/v1/", extra_environ=EVIL_HOST, status=400),
        app.get("/v1", extra_environ=EVIL_HOST, status=400),
        app.get("/articles", extra_environ=EVIL_HOST, status=400),
    ]
    for response in responses:
        assert response.json["errno"] == 107
        assert response.json["details"][0]["name"] == "Host"
        assert "evil.example" not in response.headers.get("Location", "")
    # health checks build no URL: they answer whatever the Host
    assert app.get("/__lbheartbeat__", extra_environ=EVIL_HOST).status_code == 200
    assert app.get("/v1/__heartbeat__", extra_environ=EVIL_HOST).status_code == 200


def test_the_public_host_is_used_in_every_url(headers):
    app = make_app(paginate_by=1, http_host="api.example.com", http_scheme="https")
    for _ in range(2):
        app.post_json("/v1/articles", {"data": {"title": "x"}}, headers=headers, extra_environ=EVIL_HOST)
    listed = app.get("/v1/articles", headers=headers, extra_environ=EVIL_HOST)
    assert listed.headers["Next-Page"].startswith("https://api.example.com/v1/articles?")
    assert app.get("/v1/", extra_environ=EVIL_HOST).json["url"] == "https://api.example.com/v1/"
    assert app.get("/v1", extra_environ=EVIL_HOST, status=307).headers["Location"] == \
        "https://api.example.com/v1/"


def test_trusted_hosts_are_reflected():
    app = make_app(http_trusted_hosts=".example.com")
    for host in ("example.com", "api.example.com:8443"):
        assert app.get("/v1/", extra_environ={"HTTP_HOST": host}).json["url"] == f"http://{host}/v1/"
    for host in ("evilexample.com", "example.com.evil.net", "a b", "x\r\nSet-Cookie: a=b", "h:port"):
        assert app.get("/v1/", extra_environ={"HTTP_HOST": host}, status=400).json["errno"] == 107
    assert make_app().get("/v1/").json["url"] == "http://localhost/v1/"  # WebTest's default host


# -- Logs ----------------------------------------------------------------------------


@pytest.mark.parametrize("renderer", ["console", "json"])
def test_control_characters_in_request_data_stay_on_one_log_line(capsys, renderer):
    app = make_app(logging_renderer=renderer)
    capsys.readouterr()
    app.get("/v1/x%0A12:00:00.000 GET /v1/forged 200 0.1ms%0D%1B[31m%E2%80%AE", status=404)
    app.get("/v1/y%C2%85z%E2%80%A8", status=404)  # NEL and LINE SEPARATOR: line breaks to many tools
    app.request("/v1/", method="GET\x0bX", status="*")
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 3, lines
    assert all(line.isprintable() for line in lines)
    if renderer == "console":
        assert "\\n12:00:00.000" in lines[0] and "\\x1b[31m" in lines[0] and "\\u202e" in lines[0]
    else:  # escaped the JSON way: the values are intact
        assert json.loads(lines[0])["path"] == "/v1/x\n12:00:00.000 GET /v1/forged 200 0.1ms\r\x1b[31m\u202e"


def test_an_unexpected_error_logs_its_path_escaped(caplog):
    from pyramid.testing import DummyRequest

    from cliquet.views.errors import internal_error

    request = DummyRequest(path="/v1/articles\n12:00:00 forged line", method="GET\r")
    with caplog.at_level(logging.ERROR, logger="cliquet"):
        internal_error(RuntimeError("boom"), request)
    [message] = [record.getMessage() for record in caplog.records if record.name == "cliquet"]
    assert message == "Unexpected error on GET\\r /v1/articles\\n12:00:00 forged line"


# -- Credentials ---------------------------------------------------------------------


def reachable_strings(containing):
    """Every ``str`` reachable from the objects the garbage collector tracks
    (through untracked tuples and dicts too) that contains ``containing``."""
    seen, found = set(), []
    stack = gc.get_objects()
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, str):
            if containing in obj:
                found.append(obj)
            continue
        stack.extend(gc.get_referents(obj))
    return found


def test_no_plaintext_credentials_are_kept_in_memory():
    app = make_app()
    password = f"pw-{uuid.uuid4().hex}"
    for user in ("carol", "dave"):
        app.get("/v1/", headers=basic_auth(user, password))
    gc.collect()
    assert reachable_strings(":" + password) == []  # no "user:password" anywhere


# -- Bodies the server could not read (cliquet.serving) ---------------------------------


@pytest.mark.parametrize("error, status, errno", [("timeout", 408, 107), ("too-large", 413, 113)])
def test_a_body_the_server_gave_up_on_is_a_json_error_and_writes_nothing(headers, error, status, errno):
    app = make_app(request_body_timeout="3s")
    response = app.post("/v1/articles", b"", headers={**headers, "Content-Type": "application/json"},
                        extra_environ={"cliquet.body_error": error}, status=status)
    assert (response.json["code"], response.json["errno"]) == (status, errno)
    assert app.get("/v1/articles", headers=headers).json["data"] == []


def test_the_rsgi_scope_becomes_a_wsgi_environ():
    from types import SimpleNamespace

    from cliquet.serving import wsgi_environ

    class Headers(dict):
        def items(self):
            return [("content-type", "application/json"), ("x-a", "1"), ("x-a", "2")]

    scope = SimpleNamespace(server="[::1]:8888", client="127.0.0.1:5000", method="POST", path="/v1/é",
                            query_string="a=1", http_version="2", scheme="https", headers=Headers(),
                            authority="api.example.com")
    environ = wsgi_environ(scope, b"{}")
    assert environ["PATH_INFO"] == "/v1/\xc3\xa9"  # UTF-8 bytes read as latin-1 (PEP 3333)
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"], environ["REMOTE_ADDR"]) == ("::1", "8888", "127.0.0.1")
    assert environ["CONTENT_TYPE"] == "application/json" and environ["HTTP_X_A"] == "1,2"
    assert environ["HTTP_HOST"] == "api.example.com" and environ["SERVER_PROTOCOL"] == "HTTP/2"
    assert environ["wsgi.input"].read() == b"{}" and environ["wsgi.url_scheme"] == "https"


class FakeProtocol:
    """An RSGI HTTP protocol: a body in chunks (``None`` = the client stalls,
    an exception = the client disconnects), and the answer it was given."""

    def __init__(self, *chunks):
        self.chunks, self.answer = chunks, None

    def __aiter__(self):
        return self._chunks()

    async def _chunks(self):
        import asyncio

        for chunk in self.chunks:
            if chunk is None:
                await asyncio.sleep(3600)
            if isinstance(chunk, Exception):
                raise chunk
            yield chunk

    def response_bytes(self, status, headers, body):
        self.answer = (status, dict(headers), body)


def rsgi_scope(method="POST", length=None, path="/v1/articles"):
    from types import SimpleNamespace

    headers = {"host": "127.0.0.1", "content-type": "application/json", **basic_auth()}
    if length is not None:
        headers["content-length"] = str(length)

    class Headers(dict):
        def items(self):
            return list(super().items())

    return SimpleNamespace(proto="http", server="127.0.0.1:8888", client="127.0.0.1:5000", method=method,
                           path=path, query_string="", http_version="1.1", scheme="http",
                           headers=Headers(headers), authority=None)


def serve_once(app, scope, protocol):
    import asyncio

    asyncio.run(app.__rsgi__(scope, protocol))
    return protocol.answer


def test_buffered_wsgi_reads_whole_bodies_and_refuses_the_rest():
    from cliquet.serving import BufferedWSGI
    from cliquet.testing.app import make_wsgi_app

    wsgi = make_wsgi_app(request_body_timeout="0.2s", max_request_body_size="100")
    app = BufferedWSGI.from_app(wsgi, threads=1)
    body = b'{"data": {"title": "in two chunks"}}'
    status, _, content = serve_once(app, rsgi_scope(length=len(body)), FakeProtocol(body[:5], body[5:]))
    assert status == 201 and json.loads(content)["data"]["title"] == "in two chunks"

    started = time.monotonic()
    status, headers, content = serve_once(app, rsgi_scope(length=50), FakeProtocol(b"{", None))
    assert (status, json.loads(content)["errno"], headers["Connection"]) == (408, 107, "close")
    assert time.monotonic() - started < 5

    for scope, protocol in ((rsgi_scope(length=10_000), FakeProtocol()),  # refused from the header
                            (rsgi_scope(), FakeProtocol(b"x" * 60, b"x" * 60))):  # grows past the limit
        status, headers, content = serve_once(app, scope, protocol)
        assert (status, json.loads(content)["errno"], headers["Connection"]) == (413, 113, "close")

    assert serve_once(app, rsgi_scope(length=10), FakeProtocol(b"{", ConnectionResetError())) is None
    listed = serve_once(app, rsgi_scope("GET"), FakeProtocol())
    assert [r["title"] for r in json.loads(listed[2])["data"]] == ["in two chunks"]  # nothing else written


def test_buffered_wsgi_answers_500_when_the_application_crashes():
    from cliquet.serving import BufferedWSGI

    def broken(environ, start_response):
        raise RuntimeError("boom")

    status, _, content = serve_once(BufferedWSGI(broken), rsgi_scope("GET"), FakeProtocol())
    assert (status, json.loads(content)["errno"]) == (500, 999)
