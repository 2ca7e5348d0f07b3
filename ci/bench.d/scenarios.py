"""The workload of ``ci/bench``: preloading, the scenarios and their checks.

Each scenario is run by ``bench.lua`` under wrk; before it is measured on a
server, :func:`check` sends the same request once from Python and verifies
the answer (status, number of records, sub-responses of a batch, that a
stale ``If-Match`` really gets 412), so a figure is never the speed of an
error page.
"""

import concurrent.futures
import dataclasses
import json
import os
import tempfile

from servers import http

LIST_QUERY = "published=true&_sort=-last_modified&_limit=100"
SINCE_NEWER = 10
BATCH_SIZE = 25


@dataclasses.dataclass(frozen=True)
class Scenario:
    """One wrk workload: ``mode`` selects the branch of ``bench.lua``."""

    key: str
    title: str
    mode: str
    writes: bool = False


SCENARIOS = {
    s.key: s
    for s in (
        Scenario("get", "get one", "get"),
        Scenario("list", "list 100, filter + sort", "list"),
        Scenario("since", f"_since ({SINCE_NEWER} newer)", "since"),
        Scenario("patch", "PATCH + If-Match", "patch"),
        Scenario("create", "create one", "create", writes=True),
        Scenario("batch", f"batch of {BATCH_SIZE} creates", "batch", writes=True),
        Scenario("search", "search, portable mix", "search"),
    )
}

#: The search scenario's queries, sent in turn (the portable clauses of
#: docs/indexing.rst: full text, phrase, prefix, term, terms, range, bool,
#: sort, on the preloaded articles).
SEARCH_QUERIES = (
    {"query": {"match": {"title": "article 4242"}}, "size": 20},
    {"query": {"match_phrase": {"title": "article 777"}}},
    {"query": {"prefix": {"title": "artic"}}, "sort": [{"score": "desc"}], "size": 20},
    {"query": {"bool": {"filter": [{"term": {"published": True}},
                                   {"range": {"score": {"gte": 10, "lt": 12}}}]}},
     "sort": [{"score": "desc"}, "title"], "size": 20},
    {"query": {"bool": {"must": {"match": {"title": "article"}},
                        "filter": {"terms": {"tags": ["t3", "t5"]}},
                        "must_not": {"term": {"published": False}}}}, "size": 20},
)


def article(n):
    """The record number ``n`` of the preloaded collection."""
    return {
        "title": f"article {n}",
        "url": f"http://example.com/articles/{n}",
        "tags": ["bench", f"t{n % 7}"],
        "score": n % 100 + 0.5,
        "published": n % 2 == 0,
    }


class CheckFailed(Exception):
    """A server did not answer a scenario's request as expected (``status``:
    the HTTP status it answered, when that was the problem)."""

    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status


def _batch(base_url, target, first, count):
    requests = [
        {"method": "POST", "path": target.batch_path, "body": {"data": article(first + i)}}
        for i in range(count)
    ]
    status, _, body = http(base_url, "POST", "/v1/batch", target.auth, {"requests": requests})
    if status != 200:
        raise CheckFailed(f"POST /v1/batch answered {status}: {str(body)[:300]}")
    responses = body.get("responses", []) if isinstance(body, dict) else []
    failed = [r for r in responses if r.get("status", 500) >= 400]
    if len(responses) != count or failed:
        sample = failed[0] if failed else body
        raise CheckFailed(
            f"POST /v1/batch: {len(failed)} of {count} sub-requests failed: {str(sample)[:300]}"
        )
    return [r["body"]["data"]["id"] for r in responses]


def preload(base_url, target, start, stop, parallel=4):
    """Create records ``start``..``stop``-1 with batches; return their ids."""
    chunks = [(i, min(BATCH_SIZE, stop - i)) for i in range(start, stop, BATCH_SIZE)]
    with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
        futures = [pool.submit(_batch, base_url, target, first, n) for first, n in chunks]
        return [rid for f in futures for rid in f.result()]


def search_file():
    """A file with the search queries, one JSON body a line (for bench.lua)."""
    path = os.path.join(tempfile.gettempdir(), f"cliquet-bench-search-{os.getpid()}.jsonl")
    if not os.path.exists(path):
        with open(path, "w") as f:
            f.write("".join(json.dumps(q) + "\n" for q in SEARCH_QUERIES))
    return path


def count_records(base_url, target):
    """The ``Total-Records`` of a collection (from a HEAD: Kinto sends it only there)."""
    status, headers, body = http(base_url, "HEAD", target.path, target.auth)
    if status != 200 or "total-records" not in headers:
        raise CheckFailed(f"HEAD {target.path} answered {status} "
                          f"without Total-Records: {str(body)[:300]}")
    return int(headers["total-records"])


def since_marker(base_url, target):
    """The ``last_modified`` such that exactly 10 records are newer."""
    query = f"?_sort=-last_modified&_limit={SINCE_NEWER + 1}"
    status, _, body = http(base_url, "GET", target.path + query, target.auth)
    if status != 200 or len(body.get("data", [])) != SINCE_NEWER + 1:
        raise CheckFailed(f"GET {target.path}{query} answered {status}: {str(body)[:300]}")
    return body["data"][SINCE_NEWER]["last_modified"]


def query_for(scenario, marker):
    """The querystring ``bench.lua`` sends for list and since."""
    if scenario.key == "list":
        return LIST_QUERY
    if scenario.key == "since":
        return f"_since={marker}"
    return ""


def _expect(status, wanted, what, body):
    if status != wanted:
        raise CheckFailed(f"{what} answered {status} (expected {wanted}): {str(body)[:300]}", status)


def check(scenario, base_url, target, ids, marker):
    """Send the scenario's request once; raise :class:`CheckFailed` if wrong."""
    path, auth = target.path, target.auth
    if scenario.key == "get":
        status, _, body = http(base_url, "GET", f"{path}/{ids[0]}", auth)
        _expect(status, 200, f"GET {path}/{{id}}", body)
    elif scenario.key in ("list", "since"):
        query = query_for(scenario, marker)
        status, _, body = http(base_url, "GET", f"{path}?{query}", auth)
        _expect(status, 200, f"GET {path}?{query}", body)
        got = len(body.get("data", []))
        wanted = 100 if scenario.key == "list" else SINCE_NEWER
        if got != wanted:
            raise CheckFailed(f"GET {path}?{query} returned {got} records, not {wanted}")
        if scenario.key == "list" and not all(r.get("published") for r in body["data"]):
            raise CheckFailed(f"GET {path}?{query} returned unpublished records")
    elif scenario.key == "patch":
        rid = ids[-1]
        status, headers, body = http(base_url, "GET", f"{path}/{rid}", auth)
        _expect(status, 200, f"GET {path}/{{id}}", body)
        etag = headers.get("etag")
        if not etag:
            raise CheckFailed(f"GET {path}/{{id}} sent no ETag header")
        patch = {"data": {"score": 1.5}}
        status, _, body = http(base_url, "PATCH", f"{path}/{rid}", auth, patch, {"If-Match": etag})
        _expect(status, 200, f"PATCH {path}/{{id}} with If-Match", body)
        status, _, body = http(base_url, "PATCH", f"{path}/{rid}", auth, patch, {"If-Match": etag})
        _expect(status, 412, f"PATCH {path}/{{id}} with a stale If-Match", body)
    elif scenario.key == "create":
        status, _, body = http(base_url, "POST", path, auth, {"data": article(1)})
        _expect(status, 201, f"POST {path}", body)
    elif scenario.key == "batch":
        _batch(base_url, target, 0, BATCH_SIZE)
    elif scenario.key == "search":
        for query in SEARCH_QUERIES:
            status, headers, body = http(base_url, "POST", target.search_path, auth, query)
            _expect(status, 200, f"POST {target.search_path} {json.dumps(query)}", body)
            if "total-records" not in headers:
                raise CheckFailed(f"POST {target.search_path} sent no Total-Records")
        # the phrase is in exactly one record of the preload
        status, headers, body = http(base_url, "POST", target.search_path, auth,
                                     SEARCH_QUERIES[1])
        if len(ids) > 777 and len(body.get("data", [])) != 1:
            raise CheckFailed(f"POST {target.search_path} {json.dumps(SEARCH_QUERIES[1])} "
                              f"found {len(body.get('data', []))} records, not 1")
    else:
        raise CheckFailed(f"no check for scenario {scenario.key}")
