"""The commands of the quickstart (and of the protocol page), run against the
example app as documented.

How the pages and this test stay in step: there is one copy of every
example, on the page (``docs/quickstart.rst``, ``docs/protocol.rst``). This
module reads the page, finds each
``.. code-block:: shell`` (or ``console``) whose command is ``curl`` or
``http`` (HTTPie),
turns the command into the same HTTP request (method, URL, headers, body,
Basic credentials), sends it through WebTest to the app that
``docs/example/myproject.ini`` builds (``pyramid.paster.get_app``, the same
INI ``./ci/serve`` serves), and compares the answer with the block that
follows it on the page:

* ``.. code-block:: http`` — status line, every header shown, and the body;
* ``.. code-block:: json`` — the body only.

Bodies are compared as parsed JSON, exactly (order of lists included),
except the ``headers`` objects of batch answers, where the page may show a
subset. Ids, timestamps, ``ETag`` values, pagination tokens and user ids
cannot be known in advance: the first time one appears in an answer, the
value on the page is bound to the real one, and from then on every
occurrence on the page (in later answers *and* in later commands) stands for
that real value. So editing a command or an answer on the page changes what
this test checks, and a page that no longer matches the service fails here.

When the service's answers change on purpose, ``docs/tests/refresh_examples.py``
rewrites the answers that no longer match (keeping the page's ids) — then read
the diff.
"""

from __future__ import annotations

import base64
import json
import re
import shlex
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import webtest
from pyramid.paster import get_app

DOCS = Path(__file__).resolve().parent.parent
INI = DOCS / "example" / "myproject.ini"
#: the pages whose examples are run, and how many each has at least
PAGES = {"quickstart.rst": 20, "protocol.rst": 5, "sharing.rst": 7}
HOST = "127.0.0.1:8888"
BASE_URL = "http://" + HOST

#: keys of JSON objects whose values are bound on first sight
BOUND_KEYS = {"id", "last_modified"}
#: headers only checked for presence (their values depend on the clock or the encoding)
PRESENT_ONLY = {"last-modified", "date", "content-length", "server"}


# -- reading the page ------------------------------------------------------------

_DIRECTIVE = re.compile(r"^(\s*)\.\. code-block:: *(\S+)\s*$")


def code_blocks(text: str):
    """Return ``[(language, content, line number)]`` of every code-block."""
    lines = text.splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        match = _DIRECTIVE.match(lines[i])
        if not match:
            i += 1
            continue
        indent, language, start = len(match.group(1)), match.group(2), i + 1
        i += 1
        while i < len(lines) and lines[i].strip().startswith(":"):  # options
            i += 1
        body = []
        while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent):
            body.append(lines[i])
            i += 1
        content = [line for line in body]
        while content and not content[-1].strip():
            content.pop()
        while content and not content[0].strip():
            content.pop(0)
        margin = min((len(line) - len(line.lstrip()) for line in content if line.strip()), default=0)
        blocks.append((language, "\n".join(line[margin:] for line in content), start))
    return blocks


def examples(text: str):
    """Return ``[(command, language of answer, answer, line)]`` from a page."""
    blocks = code_blocks(text)
    found = []
    for index, (language, content, line) in enumerate(blocks):
        if language not in ("shell", "console") or not content:
            continue
        command = content[2:] if content.startswith("$ ") else content
        program = command.split(None, 1)[0]
        if program not in ("curl", "http"):
            continue
        assert not re.search(r"\n\$? ?(curl|http) ", command), f"line {line}: one tested command per block"
        assert index + 1 < len(blocks) and blocks[index + 1][0] in ("http", "json"), (
            f"line {line}: a tested command must be followed by its answer (http or json block)")
        answer_language, answer, _ = blocks[index + 1]
        found.append((command, answer_language, answer, line))
    return found


# -- turning commands into requests ---------------------------------------------


def _split(command: str) -> list[str]:
    return shlex.split(command.replace("\\\n", " "))


def _basic(credentials: str) -> str:
    return "Basic " + base64.b64encode(credentials.encode()).decode()


def _path_of(url: str) -> str:
    if url.startswith(":"):  # HTTPie's localhost shorthand
        url = "http://127.0.0.1" + url
    parts = urlsplit(url)
    assert parts.netloc == HOST, f"examples talk to {HOST}, not {parts.netloc}"
    return parts.path + ("?" + parts.query if parts.query else "")


def parse_curl(args: list[str]) -> dict:
    """The request a ``curl`` command line sends (the options the docs use)."""
    request = {"method": None, "headers": {}, "body": None, "url": None}
    it = iter(args[1:])
    for arg in it:
        if arg in ("-s", "-S", "-i", "--silent", "--include", "--show-error"):
            continue
        if arg in ("-X", "--request"):
            request["method"] = next(it)
        elif arg in ("-H", "--header"):
            name, _, value = next(it).partition(":")
            request["headers"][name.strip()] = value.strip()
        elif arg in ("-d", "--data", "--data-raw", "--data-binary"):
            request["body"] = next(it).encode()
        elif arg in ("-u", "--user"):
            request["headers"]["Authorization"] = _basic(next(it))
        elif arg.startswith("-"):
            raise AssertionError(f"curl option {arg} is not understood by this test")
        else:
            request["url"] = arg
    if request["body"] is not None:
        request["headers"].setdefault("Content-Type", "application/x-www-form-urlencoded")
    request["method"] = request["method"] or ("POST" if request["body"] is not None else "GET")
    return request


_HTTPIE_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


def parse_httpie(args: list[str]) -> dict:
    """The request an ``http`` (HTTPie) command line sends."""
    request = {"method": None, "headers": {}, "body": None, "url": None}
    rest = []
    it = iter(args[1:])
    for arg in it:
        if arg in ("-a", "--auth"):
            request["headers"]["Authorization"] = _basic(next(it))
        elif arg in ("-b", "--body", "-h", "--headers", "-v", "--verbose"):
            continue
        elif arg.startswith("-"):
            raise AssertionError(f"http option {arg} is not understood by this test")
        else:
            rest.append(arg)
    if rest and rest[0] in _HTTPIE_METHODS:
        request["method"] = rest.pop(0)
    request["url"] = rest.pop(0)
    data, query = {}, []
    for item in rest:
        match = re.match(r"^([^:=]+)(:=|==|=|:)(.*)$", item, re.S)
        assert match, f"HTTPie item {item!r} is not understood by this test"
        key, separator, value = match.groups()
        if separator == ":=":
            data[key] = json.loads(value)
        elif separator == "=":
            data[key] = value
        elif separator == "==":
            query.append((key, value))
        else:
            request["headers"][key] = value
    if query:
        from urllib.parse import urlencode

        request["url"] += ("&" if "?" in request["url"] else "?") + urlencode(query)
    if data:
        request["body"] = json.dumps(data).encode()
        request["headers"].setdefault("Content-Type", "application/json")
    request["headers"].setdefault("Accept", "application/json, */*;q=0.5")
    request["method"] = request["method"] or ("POST" if data else "GET")
    return request


def parse_command(command: str) -> dict:
    """The request of a ``curl`` or ``http`` command line."""
    args = _split(command)
    request = parse_curl(args) if args[0] == "curl" else parse_httpie(args)
    request["path"] = _path_of(request.pop("url"))
    return request


# -- comparing answers -------------------------------------------------------------


class Bindings:
    """Values of the page bound to the values the service really returned."""

    def __init__(self):
        self.values: dict[str, str] = {}

    def bind(self, documented, actual, where):
        """Bind (or check) one value; ints and strings are bound as text."""
        assert type(documented) is type(actual), f"{where}: {actual!r} is not like {documented!r}"
        doc_text, actual_text = str(documented), str(actual)
        if doc_text in self.values:
            assert self.values[doc_text] == actual_text, (
                f"{where}: the page's {doc_text} stands for {self.values[doc_text]}, got {actual_text}")
        else:
            assert actual_text not in self.values.values(), (
                f"{where}: {actual_text} was already shown under another value on the page")
            self.values[doc_text] = actual_text

    def apply(self, text: str) -> str:
        """Replace the page's values by the real ones in ``text``."""
        for documented in sorted(self.values, key=len, reverse=True):
            text = text.replace(documented, self.values[documented])
        return text


def match_json(documented, actual, bindings: Bindings, where="body", key=None):
    """Assert ``actual`` is what the page shows (see the module docstring)."""
    if key in BOUND_KEYS and not isinstance(documented, (dict, list)):
        bindings.bind(documented, actual, where)
        return
    if isinstance(documented, dict):
        assert isinstance(actual, dict), f"{where}: expected an object, got {actual!r}"
        if key == "headers":
            actual = {k.lower(): v for k, v in actual.items()}
            for name, value in documented.items():
                assert name.lower() in actual, f"{where}: header {name} missing"
                match_header(name, value, actual[name.lower()], bindings, f"{where}.{name}")
            return
        assert set(documented) == set(actual), (
            f"{where}: keys {sorted(actual)} differ from the page's {sorted(documented)}")
        for name in documented:
            match_json(documented[name], actual[name], bindings, f"{where}.{name}", name)
        return
    if isinstance(documented, list):
        assert isinstance(actual, list) and len(actual) == len(documented), (
            f"{where}: expected {len(documented)} items, got {actual!r}")
        for i, (mine, theirs) in enumerate(zip(documented, actual)):
            match_json(mine, theirs, bindings, f"{where}.{i}", key)
        return
    if key == "id" or (where.endswith("user.id")):
        bindings.bind(documented, actual, where)
        return
    if isinstance(documented, str):
        documented = bindings.apply(documented)
    assert documented == actual and type(documented) is type(actual), (
        f"{where}: the page shows {documented!r}, the service answered {actual!r}")


def _token(url: str):
    return dict(parse_qsl(urlsplit(url).query)).get("_token")


def match_header(name, documented, actual, bindings, where):
    """Compare one header value (binding ETags and pagination tokens)."""
    lowered = name.lower()
    if lowered in PRESENT_ONLY:
        return
    if lowered == "etag":
        assert actual.startswith('"') and actual.endswith('"'), f"{where}: {actual}"
        bindings.bind(int(documented.strip('"')), int(actual.strip('"')), where)
        return
    if lowered == "next-page":
        documented_token, actual_token = _token(documented), _token(actual)
        assert actual_token, f"{where}: no _token in {actual}"
        bindings.bind(documented_token, actual_token, where)
    assert bindings.apply(documented) == actual, f"{where}: the page shows {documented!r}, got {actual!r}"


def match_answer(language, answer, response, bindings, where):
    """Compare a whole answer block with the WebTest response."""
    body = answer
    if language == "http":
        head, _, body = answer.partition("\n\n")
        status_line, *header_lines = head.splitlines()
        status = status_line.split(" ", 1)[1]
        assert response.status == status, f"{where}: status {response.status}, the page shows {status}"
        for line in header_lines:
            name, _, value = line.partition(":")
            assert name in response.headers, f"{where}: header {name} missing from {dict(response.headers)}"
            match_header(name, value.strip(), response.headers[name], bindings, f"{where} {name}")
    else:
        assert response.status_int < 400, f"{where}: answered {response.status}: {response.text}"
    if body.strip():
        match_json(json.loads(body), response.json, bindings, where)
    elif "json" in (response.content_type or ""):
        # No body on the page: the service must not answer one either (a
        # redirect's short text for browsers is not part of the protocol).
        assert not response.body, f"{where}: the page shows no body, got {response.text}"


# -- the tests -----------------------------------------------------------------------


def run_page(page: str):
    """Run every example of ``page`` in order; return how many ran."""
    text = (DOCS / page).read_text()
    app = webtest.TestApp(get_app(str(INI)), extra_environ={"HTTP_HOST": HOST})
    bindings = Bindings()
    ran = 0
    for command, language, answer, line in examples(text):
        where = f"{page}:{line}"
        request = parse_command(bindings.apply(command))
        response = app.request(request["path"], method=request["method"], headers=request["headers"],
                               body=request["body"] or b"", base_url=BASE_URL, expect_errors=True)
        match_answer(language, answer, response, bindings, where)
        ran += 1
    return ran


@pytest.mark.parametrize("page", sorted(PAGES))
def test_page_examples_answer_as_documented(page):
    assert run_page(page) >= PAGES[page]


def test_example_files_the_quickstart_includes_exist():
    text = (DOCS / "quickstart.rst").read_text()
    included = re.findall(r"literalinclude:: (\S+)", text)
    assert included
    for path in included:
        assert (DOCS / path).is_file(), path


# The harness must be able to fail: a page that lies is caught.


def test_a_wrong_status_on_the_page_fails():
    page = (
        ".. code-block:: shell\n\n   curl -i http://127.0.0.1:8888/v1/articles\n\n"
        ".. code-block:: http\n\n   HTTP/1.1 200 OK\n"
    )
    command, language, answer, _ = examples(page)[0]
    app = webtest.TestApp(get_app(str(INI)), extra_environ={"HTTP_HOST": HOST})
    request = parse_command(command)
    response = app.request(request["path"], method=request["method"], headers=request["headers"],
                           base_url=BASE_URL, expect_errors=True)
    with pytest.raises(AssertionError, match="401"):
        match_answer(language, answer, response, Bindings(), "fake")


def test_a_value_bound_twice_must_agree():
    bindings = Bindings()
    match_json({"id": "a"}, {"id": "x"}, bindings)
    match_json({"data": [{"id": "a"}]}, {"data": [{"id": "x"}]}, bindings)
    with pytest.raises(AssertionError):
        match_json({"id": "a"}, {"id": "y"}, bindings)
    with pytest.raises(AssertionError):
        match_json({"title": "a", "id": "b"}, {"title": "a", "id": "x"}, bindings)


@pytest.mark.parametrize("command,expected", [
    ("curl -s -u alice:secret 'http://127.0.0.1:8888/v1/articles?_limit=2'",
     {"method": "GET", "path": "/v1/articles?_limit=2"}),
    ("curl -i -u a:b -X PATCH http://127.0.0.1:8888/v1/articles/x \\\n  -H 'If-Match: \"12\"' "
     "-H 'Content-Type: application/json' -d '{\"data\": {}}'",
     {"method": "PATCH", "path": "/v1/articles/x", "body": b'{"data": {}}'}),
    ("http -a a:b POST :8888/v1/articles data:='{\"title\": \"x\"}'",
     {"method": "POST", "path": "/v1/articles", "body": b'{"data": {"title": "x"}}'}),
    ("http -a a:b :8888/v1/articles published==true",
     {"method": "GET", "path": "/v1/articles?published=true"}),
])
def test_commands_are_read_like_the_tools_do(command, expected):
    request = parse_command(command)
    for key, value in expected.items():
        assert request[key] == value
    assert request["headers"]["Authorization"].startswith("Basic ")
