"""The example app as ./ci/serve runs it: Granian on a real socket."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parent.parent
INI = EXAMPLE / "myproject.ini"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server():
    port = free_port()
    env = {**os.environ, "PORT": str(port)}
    cliquet_cmd = Path(sys.executable).parent / "cliquet"
    proc = subprocess.Popen([str(cliquet_cmd), "serve", "--ini", str(INI)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url + "/__lbheartbeat__", timeout=1)
            break
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(proc.stdout.read().decode())
            time.sleep(0.2)
    else:
        proc.kill()
        raise RuntimeError("server did not start:\n" + proc.stdout.read().decode())
    yield url
    proc.terminate()
    proc.wait(10)


def test_served_app_answers_the_protocol(server):
    hello = json.load(urllib.request.urlopen(server + "/v1/"))
    assert hello["project_name"] == "myproject"
    request = urllib.request.Request(
        server + "/v1/articles", method="POST", data=b'{"data": {"title": "Hello"}}',
        headers={"Content-Type": "application/json", "Authorization": "Basic dG9rZW46c2VjcmV0"})
    with urllib.request.urlopen(request) as resp:
        assert resp.status == 201
        created = json.load(resp)["data"]
    request = urllib.request.Request(server + "/v1/articles",
                                     headers={"Authorization": "Basic dG9rZW46c2VjcmV0"})
    with urllib.request.urlopen(request) as resp:
        assert json.load(resp)["data"] == [created]
        assert resp.headers["Total-Records"] == "1"
