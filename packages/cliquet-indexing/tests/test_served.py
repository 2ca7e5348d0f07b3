"""The search endpoint served for real: ``cliquet serve`` (Granian) on a
socket, an app including ``cliquet_indexing`` from its INI file, HTTP
requests from this process."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

INI = """
[app:main]
use = call:cliquet_indexing.testing.app:app_factory
pyramid.includes = cliquet_indexing
cliquet.userid_hmac_secret = served
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    ini = tmp_path / "app.ini"
    ini.write_text(INI)
    port = free_port()
    env = {**os.environ, "PORT": str(port)}
    proc = subprocess.Popen([str(Path(sys.executable).parent / "cliquet"), "serve", "--ini", str(ini)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            urllib.request.urlopen(url + "/__lbheartbeat__", timeout=1)
            break
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(proc.stderr.read().decode())
            if time.time() > deadline:
                proc.kill()
                raise RuntimeError("the server did not start")
            time.sleep(0.2)
    yield url
    proc.terminate()
    proc.wait(timeout=20)


def call(url, method, path, user, body=None):
    token = base64.b64encode(f"{user}:pw".encode()).decode()
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, method=method, data=data,
                                     headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, resp.headers, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, json.loads(exc.read())


def test_search_over_http(server):
    for i in range(6):
        assert call(server, "POST", "/v1/articles", "alice", {"data": {"title": f"alpha {i}", "score": i}})[0] == 201
    assert call(server, "POST", "/v1/articles", "bob", {"data": {"title": "alpha of bob"}})[0] == 201
    status, headers, body = call(server, "POST", "/v1/search/articles", "alice",
                                 {"query": {"bool": {"must": {"match": {"title": "alpha"}},
                                                     "filter": {"range": {"score": {"gte": 2}}}}},
                                  "sort": [{"score": "desc"}], "size": 2})
    assert status == 200
    assert headers["Total-Records"] == "4"
    assert [r["score"] for r in body["data"]] == [5, 4]
    status, headers, body = call(server, "GET", "/v1/search/articles?q=alpha", "bob")
    assert (status, headers["Total-Records"], [r["title"] for r in body["data"]]) == (200, "1", ["alpha of bob"])
    status, _, body = call(server, "POST", "/v1/search/articles", "bob", {"query": {"wildcard": {}}})
    assert (status, body["errno"]) == (400, 107)
