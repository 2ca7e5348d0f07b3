# Sourced by ci/services (its helpers: log, apt_install, SUDO).
# --- Elasticsearch -------------------------------------------------------------
# (cliquet-elasticsearch) The real server, as Maven Central serves it:
# org.elasticsearch.distribution.integ-test-zip:elasticsearch, a zip of the
# server without a bundled JDK. Its maven-metadata.xml lags behind (it stops
# at 8.19.x) but the 9.x files are there; 9.5.3 was the newest served when this
# was written. Override with CLIQUET_ES_VERSION (the Python client must keep
# the same major). Needs a JDK >= 21 (found under /usr/lib/jvm or /opt, or
# CLIQUET_ES_JAVA_HOME). The zip and the unpacked server are cached in
# /var/cache/cliquet/elasticsearch (root) or ~/.cache/cliquet/elasticsearch,
# shared by every clone; the node's config, data and logs live in
# /tmp/cliquet-elasticsearch-$PORT. Elasticsearch refuses to run as root: as
# root the node runs as the system user `elasticsearch` (created if missing).
# A throw-away single node on loopback, security off: never expose it.

ES_VERSION="${CLIQUET_ES_VERSION:-9.5.3}"
ES_PORT="${CLIQUET_ES_PORT:-9200}"

es_java_home() { jdk_home 21 "${CLIQUET_ES_JAVA_HOME:-}"; }

es_ready() {
  curl -fsS -m 5 "http://127.0.0.1:$ES_PORT/_cluster/health?wait_for_status=yellow&timeout=2s" 2>/dev/null \
    | grep -q '"status":"\(green\|yellow\)"'
}

start_elasticsearch() {
  local cache home node java run_as=()
  if [ "$(id -u)" = 0 ]; then cache=/var/cache/cliquet/elasticsearch
  else cache="${XDG_CACHE_HOME:-$HOME/.cache}/cliquet/elasticsearch"; fi
  home="$cache/elasticsearch-$ES_VERSION"
  node="/tmp/cliquet-elasticsearch-$ES_PORT"
  es_ready && return 0
  # Two ci/services at once (two shells, two test runs) must not start two
  # nodes in one directory: the second waits for the first.
  exec 9>"/tmp/cliquet-elasticsearch-$ES_PORT.lock"
  flock 9
  es_ready && return 0

  if [ ! -x "$home/bin/elasticsearch" ]; then
    fetch_zip "Elasticsearch $ES_VERSION" \
      "https://repo1.maven.org/maven2/org/elasticsearch/distribution/integ-test-zip/elasticsearch/$ES_VERSION/elasticsearch-$ES_VERSION.zip" \
      "$cache/elasticsearch-$ES_VERSION.zip" "$home" "elasticsearch-$ES_VERSION"
  fi

  java="$(es_java_home || true)"
  if [ -z "$java" ]; then
    log "no JDK >= 21 under /usr/lib/jvm or /opt; Elasticsearch $ES_VERSION needs one (set CLIQUET_ES_JAVA_HOME)"
    exit 1
  fi

  if [ "$(id -u)" = 0 ]; then
    id elasticsearch >/dev/null 2>&1 || useradd --system --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin elasticsearch >&2
    run_as=(runuser -u elasticsearch --)
  fi
  # A node that died leaves its pid file and lock behind: start afresh.
  if [ -f "$node/es.pid" ] && kill -0 "$(cat "$node/es.pid")" 2>/dev/null; then
    log "Elasticsearch (pid $(cat "$node/es.pid")) runs but is not ready yet"
  else
    rm -rf "$node" && mkdir -p "$node/data" "$node/logs"
    cp -r "$home/config" "$node/config"
    cat > "$node/config/elasticsearch.yml" <<YML
# Written by cliquet's ci/services: a throw-away test node.
cluster.name: cliquet-test-$ES_PORT
node.name: cliquet-test-$ES_PORT
network.host: 127.0.0.1
http.port: $ES_PORT
transport.port: $((ES_PORT + 100))
discovery.type: single-node
xpack.security.enabled: false
cluster.routing.allocation.disk.threshold_enabled: false
path.data: $node/data
path.logs: $node/logs
YML
    [ "$(id -u)" = 0 ] && chown -R elasticsearch: "$node"
    log "starting Elasticsearch $ES_VERSION on 127.0.0.1:$ES_PORT (JDK $java; about a minute)"
    if ! (cd "$node" && ES_JAVA_HOME="$java" ES_PATH_CONF="$node/config" \
          ES_JAVA_OPTS="-Xms512m -Xmx512m" \
          "${run_as[@]}" "$home/bin/elasticsearch" -d -p "$node/es.pid" \
          >"$node/logs/startup.log" 2>&1 9>&-); then
      log "Elasticsearch did not start; its log:"
      tail -n 30 "$node/logs/startup.log" "$node/logs/cliquet-test-$ES_PORT.log" >&2 2>/dev/null || true
      exit 1
    fi
  fi
  for _ in $(seq 1 120); do
    es_ready && return 0
    sleep 1
  done
  log "Elasticsearch is not ready after 2 minutes; its log:"
  tail -n 30 "$node/logs/cliquet-test-$ES_PORT.log" >&2 || true
  exit 1
}

start_elasticsearch
echo "export CLIQUET_TEST_ELASTICSEARCH_URL=http://127.0.0.1:$ES_PORT"
