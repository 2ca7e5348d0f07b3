"""A GET with a bearer token against the same GET with Basic, in process
(WebTest through the whole WSGI stack), on the memory backends.

    hatch run test:python packages/cliquet-oidc/bench.py [--requests 3000] [--rounds 5]

The token comes from Keycloak when ``CLIQUET_TEST_KEYCLOAK_URL`` is set
(``eval "$(ci/services)"``), else from a local provider of the script's own.
A checked token is remembered by the process until it expires, so the
steady-state cost of a bearer request is a SHA-256 of the token and a
dictionary look-up, against an HMAC for Basic. Rounds alternate between the
two and the median of each is printed, with their ratio (target: <= 1.10).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings


def main(argv=None):
    """Run the benchmark and print the figures."""
    warnings.simplefilter("ignore")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-token-cache", action="store_true",
                        help="check the signature at every request (oidc_token_cache_size = 0)")
    args = parser.parse_args(argv)

    import logging

    logging.disable(logging.INFO)
    from cliquet.testing.app import basic_auth
    from cliquet_oidc.testing import LocalProvider, claims_for, get_tokens, make_app

    keycloak = os.environ.get("CLIQUET_TEST_KEYCLOAK_URL")
    local = None
    if keycloak:
        issuer = keycloak.rstrip("/") + "/realms/cliquet"
        token = get_tokens(issuer, "cliquet", "cliquet-test-secret", "alice", "alice-password")["access_token"]
        source = "Keycloak"
    else:
        local = LocalProvider()
        issuer = local.issuer
        token = local.sign(claims_for(issuer, lifetime=3600))
        source = "a local provider"
    app = make_app({"issuer": issuer, "audience": "cliquet", "principals_claims": "groups"},
                   oidc_token_cache_size="0" if args.no_token_cache else "10000")
    headers = {"basic": basic_auth("alice", "alice-password"), "bearer": {"Authorization": f"Bearer {token}"}}
    for kind in headers:  # warm up: the keys fetched, the token checked once
        for _ in range(200):
            app.get("/v1/articles", headers=headers[kind])

    results = {kind: [] for kind in headers}
    for _ in range(args.rounds):
        for kind, header in headers.items():
            start = time.perf_counter()
            for _ in range(args.requests):
                app.get("/v1/articles", headers=header)
            results[kind].append((time.perf_counter() - start) / args.requests * 1e6)
    basic, bearer = (statistics.median(results[k]) for k in ("basic", "bearer"))
    cached = "signature checked every time" if args.no_token_cache else "checked tokens remembered"
    print(f"GET /v1/articles in process, {args.rounds} rounds x {args.requests} requests, token from {source}, "
          f"{cached}")
    print(f"  Basic : {basic:8.1f} us/request (rounds: {', '.join(f'{v:.1f}' for v in results['basic'])})")
    print(f"  Bearer: {bearer:8.1f} us/request (rounds: {', '.join(f'{v:.1f}' for v in results['bearer'])})")
    print(f"  ratio bearer/basic: {bearer / basic:.3f} (target <= 1.10)")
    if local is not None:
        local.close()
    return bearer / basic


if __name__ == "__main__":
    main()
