# Sourced by ci/services (its helpers: log, apt_install, SUDO).
# --- Keycloak ------------------------------------------------------------------
# (cliquet-oidc) The identity provider the OIDC tests get real tokens from:
# Keycloak's server distribution as Maven Central serves it,
# org.keycloak:keycloak-quarkus-dist (a ~159 MB zip). Override the version
# with CLIQUET_KEYCLOAK_VERSION. It runs on a JDK >= 21 (Keycloak 26 deprecated
# Java 17): the newest JDK under /usr/lib/jvm or /opt is used (the Temurin 25
# JDK on these machines), or CLIQUET_KEYCLOAK_JAVA_HOME. The zip and the
# unpacked server are cached in /var/cache/cliquet/keycloak (root) or
# ~/.cache/cliquet/keycloak, beside Elasticsearch's.
#
# Development mode (`kc.sh start-dev`) on loopback, plain HTTP, an in-memory
# database: each start imports the realm of the repository
# (packages/cliquet-oidc/tests/realm.json: realm `cliquet`, its clients, users
# and groups) and nothing outlives the process. The master realm's admin is
# admin/admin (the key-rotation test uses it). Never expose it.
# CLIQUET_SKIP_KEYCLOAK=1 skips it (the OIDC tests then skip locally, fail in CI).

KC_VERSION="${CLIQUET_KEYCLOAK_VERSION:-26.4.7}"
KC_PORT="${CLIQUET_KEYCLOAK_PORT:-8180}"
KC_REALM_FILE="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/packages/cliquet-oidc/tests/realm.json"

kc_java_home() { jdk_home 21 "${CLIQUET_KEYCLOAK_JAVA_HOME:-}"; }

kc_ready() {
  curl -fsS -m 5 "http://127.0.0.1:$KC_PORT/realms/cliquet/.well-known/openid-configuration" 2>/dev/null \
    | grep -q '"jwks_uri"'
}

start_keycloak() {
  local cache home node java pid
  if [ "$(id -u)" = 0 ]; then cache=/var/cache/cliquet/keycloak
  else cache="${XDG_CACHE_HOME:-$HOME/.cache}/cliquet/keycloak"; fi
  home="$cache/keycloak-$KC_VERSION"
  node="/tmp/cliquet-keycloak-$KC_PORT"
  kc_ready && return 0
  # Two ci/services at once must not start two servers on one port.
  exec 8>"/tmp/cliquet-keycloak-$KC_PORT.lock"
  flock 8
  kc_ready && return 0

  if [ ! -x "$home/bin/kc.sh" ]; then
    fetch_zip "Keycloak $KC_VERSION (~159 MB, once)" \
      "https://repo1.maven.org/maven2/org/keycloak/keycloak-quarkus-dist/$KC_VERSION/keycloak-quarkus-dist-$KC_VERSION.zip" \
      "$cache/keycloak-$KC_VERSION.zip" "$home" "keycloak-$KC_VERSION"
  fi

  java="$(kc_java_home || true)"
  if [ -z "$java" ]; then
    log "no JDK >= 21 under /usr/lib/jvm or /opt; Keycloak $KC_VERSION needs one (set CLIQUET_KEYCLOAK_JAVA_HOME)"
    exit 1
  fi

  if [ -f "$node/kc.pid" ] && kill -0 "$(cat "$node/kc.pid")" 2>/dev/null; then
    log "Keycloak (pid $(cat "$node/kc.pid")) runs but is not ready yet"
  else
    rm -rf "$node" && mkdir -p "$node"
    # --import-realm reads $home/data/import: the repository's realm is copied
    # there at each start (the server itself also writes under $home/data).
    mkdir -p "$home/data/import" && cp "$KC_REALM_FILE" "$home/data/import/cliquet-realm.json"
    log "starting Keycloak $KC_VERSION on 127.0.0.1:$KC_PORT (JDK $java; about 30 s)"
    # The subshell gives up every inherited descriptor first: ci/services'
    # stdout is the pipe of the caller's `eval "$(ci/services)"`, which would
    # otherwise stay open as long as Keycloak runs.
    (cd "$node" || exit 1
     exec </dev/null >"$node/keycloak.log" 2>&1 8>&- 9>&-
     JAVA_HOME="$java" JAVA_OPTS_APPEND="-Xms64m -Xmx512m" \
       KC_BOOTSTRAP_ADMIN_USERNAME=admin KC_BOOTSTRAP_ADMIN_PASSWORD=admin \
       setsid "$home/bin/kc.sh" start-dev --http-host=127.0.0.1 --http-port="$KC_PORT" \
         --db=dev-mem --import-realm --cache=local --health-enabled=false --metrics-enabled=false \
         --log=console &
     echo $! > "$node/kc.pid")
  fi
  for _ in $(seq 1 180); do
    kc_ready && return 0
    pid="$(cat "$node/kc.pid" 2>/dev/null || true)"
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      log "Keycloak exited; its log:"
      tail -n 40 "$node/keycloak.log" >&2 || true
      exit 1
    fi
    sleep 1
  done
  log "Keycloak is not ready after 3 minutes; its log:"
  tail -n 40 "$node/keycloak.log" >&2 || true
  exit 1
}

if [ -n "${CLIQUET_SKIP_KEYCLOAK:-}" ]; then
  log "CLIQUET_SKIP_KEYCLOAK is set: Keycloak not started"
else
  start_keycloak
  echo "export CLIQUET_TEST_KEYCLOAK_URL=http://127.0.0.1:$KC_PORT"
fi
