# Sourced by ci/services (its helpers: log, apt_install, SUDO), after
# 30-elasticsearch.sh (which installs the server and defines es_java_home).
# --- Elasticsearch, three nodes ------------------------------------------------
# (cliquet-elasticsearch) A three-node cluster on loopback from the same
# installation as the single node: HTTP on 9201..9203, transport on
# 9301..9303 (CLIQUET_ES_CLUSTER_PORT moves the first HTTP port; transport is
# HTTP + 100), small heaps (CLIQUET_ES_CLUSTER_HEAP, 320m), every node master-
# and data-eligible. Each node lives in /tmp/cliquet-es-cluster-$PORT (config,
# data, logs, es.pid) with a `start` script there that starts it again with
# its data, detached: the failover tests kill -9 a node and run it.
# Idempotent: nothing is done when the three nodes answer; nodes that died are
# started again with their data; when none runs, the cluster is made afresh.
# CLIQUET_SKIP_ELASTICSEARCH_CLUSTER=1 skips it (no URL printed: the cluster
# tests then skip, or fail under CI=true). Security off: never expose it.

ES_CLUSTER_PORT="${CLIQUET_ES_CLUSTER_PORT:-9201}"
ES_CLUSTER_HEAP="${CLIQUET_ES_CLUSTER_HEAP:-320m}"
ES_CLUSTER_PORTS=("$ES_CLUSTER_PORT" "$((ES_CLUSTER_PORT + 1))" "$((ES_CLUSTER_PORT + 2))")

es_cluster_node_up() {  # <port>: the node answers HTTP (it need not have joined)
  curl -fsS -m 3 "http://127.0.0.1:$1/_nodes/_local/http" >/dev/null 2>&1
}

es_cluster_node_alive() {  # <port>: its process runs (it may not answer yet)
  local pid_file="/tmp/cliquet-es-cluster-$1/es.pid"
  es_cluster_node_up "$1" || { [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null; }
}

es_cluster_ready() {
  curl -fsS -m 5 "http://127.0.0.1:$ES_CLUSTER_PORT/_cluster/health?wait_for_nodes=3&wait_for_status=yellow&timeout=2s" \
    2>/dev/null | grep -q '"number_of_nodes":3,'
}

es_cluster_configure() {  # <port> <home> <java>: write the node's directory
  local port="$1" home="$2" java="$3" node="/tmp/cliquet-es-cluster-$1" seeds="" names="" p
  for p in "${ES_CLUSTER_PORTS[@]}"; do
    seeds="$seeds\"127.0.0.1:$((p + 100))\", "
    names="$names\"cliquet-cluster-$p\", "
  done
  rm -rf "$node" && mkdir -p "$node/data" "$node/logs"
  cp -r "$home/config" "$node/config"
  cat > "$node/config/elasticsearch.yml" <<YML
# Written by cliquet's ci/services: a throw-away node of a three-node test cluster.
cluster.name: cliquet-test-cluster-$ES_CLUSTER_PORT
node.name: cliquet-cluster-$port
network.host: 127.0.0.1
http.port: $port
transport.port: $((port + 100))
discovery.seed_hosts: [${seeds%, }]
cluster.initial_master_nodes: [${names%, }]
xpack.security.enabled: false
cluster.routing.allocation.disk.threshold_enabled: false
path.data: $node/data
path.logs: $node/logs
YML
  # The node's own start script: detached (-d), every descriptor redirected,
  # so that neither ci/services' caller nor a test waits on its pipes.
  # Under the cluster's lock (ci/services holds it already and says so), so
  # that a test starting a node and a ci/services run never start it twice.
  cat > "$node/start" <<SH
#!/bin/sh
# Start Elasticsearch node $port of the test cluster again, with its data.
cd "$node" || exit 1
if [ -z "\$CLIQUET_ES_CLUSTER_LOCKED" ]; then
  exec 8>"/tmp/cliquet-es-cluster-$ES_CLUSTER_PORT.lock"
  flock 8
fi
# Already back (started by someone else meanwhile): nothing to do.
curl -fsS -m 3 "http://127.0.0.1:$port/_nodes/_local/http" >/dev/null 2>&1 && exit 0
$([ "$(id -u)" = 0 ] && echo 'runuser -u elasticsearch -- env \' || echo 'env \')
  ES_JAVA_HOME="$java" ES_PATH_CONF="$node/config" ES_JAVA_OPTS="-Xms$ES_CLUSTER_HEAP -Xmx$ES_CLUSTER_HEAP" \\
  "$home/bin/elasticsearch" -d -p "$node/es.pid" </dev/null >>"$node/logs/startup.log" 2>&1 8>&- 9>&-
SH
  chmod 755 "$node/start"
  [ "$(id -u)" = 0 ] && chown -R elasticsearch: "$node"
  return 0
}

start_elasticsearch_cluster() {
  local cache home java port node fresh=1 started=() pids=() i
  if [ "$(id -u)" = 0 ]; then cache=/var/cache/cliquet/elasticsearch
  else cache="${XDG_CACHE_HOME:-$HOME/.cache}/cliquet/elasticsearch"; fi
  home="$cache/elasticsearch-$ES_VERSION"
  es_cluster_ready && return 0
  exec 8>"/tmp/cliquet-es-cluster-$ES_CLUSTER_PORT.lock"
  flock 8
  es_cluster_ready && return 0
  if [ ! -x "$home/bin/elasticsearch" ]; then
    log "Elasticsearch $ES_VERSION is not installed in $home (30-elasticsearch.sh installs it)"
    exit 1
  fi
  java="$(es_java_home || true)"
  [ -n "$java" ] || { log "no JDK >= 21 for the Elasticsearch cluster (set CLIQUET_ES_JAVA_HOME)"; exit 1; }

  for port in "${ES_CLUSTER_PORTS[@]}"; do
    es_cluster_node_alive "$port" && fresh=""
  done
  local began=$SECONDS
  for port in "${ES_CLUSTER_PORTS[@]}"; do
    node="/tmp/cliquet-es-cluster-$port"
    if es_cluster_node_alive "$port"; then continue; fi
    # No node runs: a cluster made afresh (a directory is only ever wiped
    # when none of the three processes runs). Some run: this one rejoins,
    # with its data when it has some.
    if [ -n "$fresh" ] || [ ! -x "$node/start" ]; then
      es_cluster_configure "$port" "$home" "$java"
    fi
    started+=("$port")
  done
  if [ "${#started[@]}" -gt 0 ]; then
    log "starting Elasticsearch cluster nodes ${started[*]} ($ES_CLUSTER_HEAP heaps; about a minute)"
    for port in "${started[@]}"; do
      CLIQUET_ES_CLUSTER_LOCKED=1 "/tmp/cliquet-es-cluster-$port/start" 9>&- &
      pids+=($!)
    done
    for i in "${!pids[@]}"; do
      if ! wait "${pids[$i]}"; then
        log "Elasticsearch cluster node ${started[$i]} did not start; its log:"
        tail -n 30 "/tmp/cliquet-es-cluster-${started[$i]}/logs/startup.log" >&2 2>/dev/null || true
        exit 1
      fi
    done
  fi
  for _ in $(seq 1 180); do
    if es_cluster_ready; then
      log "Elasticsearch cluster ready on ${ES_CLUSTER_PORTS[*]} in $((SECONDS - began)) s"
      return 0
    fi
    sleep 1
  done
  log "the Elasticsearch cluster has not formed after 3 minutes; the first node's log:"
  tail -n 30 "/tmp/cliquet-es-cluster-$ES_CLUSTER_PORT/logs/cliquet-test-cluster-$ES_CLUSTER_PORT.log" >&2 || true
  exit 1
}

if [ -n "${CLIQUET_SKIP_ELASTICSEARCH_CLUSTER:-}" ]; then
  log "CLIQUET_SKIP_ELASTICSEARCH_CLUSTER is set: no Elasticsearch cluster"
else
  start_elasticsearch_cluster
  echo "export CLIQUET_TEST_ELASTICSEARCH_CLUSTER_URL=http://127.0.0.1:${ES_CLUSTER_PORTS[0]},http://127.0.0.1:${ES_CLUSTER_PORTS[1]},http://127.0.0.1:${ES_CLUSTER_PORTS[2]}"
fi
