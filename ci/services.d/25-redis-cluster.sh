# Sourced by ci/services (its helpers: log, apt_install, SUDO; 20-redis.sh
# installed redis-server and redis-cli).
# --- Redis Cluster: 3 masters + 3 replicas on loopback ---------------------------
#
# Ports CLIQUET_REDIS_CLUSTER_PORT .. +5 (default 7000..7005; each node's
# cluster bus on port + 10000), configuration and logs in
# /tmp/cliquet-redis-cluster-PORT/. Skipped with CLIQUET_SKIP_REDIS_CLUSTER=1.
# Fast when it already runs (one CLUSTER INFO); a node that stopped is
# started again with its nodes.conf and rejoins by itself.

if [ -z "${CLIQUET_SKIP_REDIS_CLUSTER:-}" ]; then
  RC_BASE="${CLIQUET_REDIS_CLUSTER_PORT:-7000}"
  RC_DIR="${CLIQUET_REDIS_CLUSTER_DIR:-/tmp/cliquet-redis-cluster-$RC_BASE}"
  RC_PORTS="$(seq "$RC_BASE" $((RC_BASE + 5)))"

  rc_ok() { redis-cli -p "$RC_BASE" cluster info 2>/dev/null | grep -q '^cluster_state:ok'; }
  rc_node_up() { [ "$(redis-cli -p "$1" ping 2>/dev/null)" = "PONG" ]; }

  if ! rc_ok; then
    log "starting Redis Cluster on 127.0.0.1:$RC_BASE..$((RC_BASE + 5))"
    for port in $RC_PORTS; do
      mkdir -p "$RC_DIR/$port"
      if ! rc_node_up "$port"; then
        redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --dir "$RC_DIR/$port" \
          --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 3000 \
          --save "" --appendonly no --protected-mode yes --maxclients 2000 \
          --logfile "$RC_DIR/$port/redis.log" --pidfile "$RC_DIR/$port/redis.pid" >&2
      fi
    done
    for port in $RC_PORTS; do
      for _ in $(seq 1 50); do rc_node_up "$port" && break; sleep 0.1; done
      if ! rc_node_up "$port"; then
        log "Redis Cluster node $port did not start; its log:"
        tail -n 30 "$RC_DIR/$port/redis.log" >&2 || true
        exit 1
      fi
    done
    # A fresh set of nodes (no slot assigned anywhere) is made a cluster; nodes
    # that restarted with their nodes.conf rejoin the cluster they knew.
    if [ "$(redis-cli -p "$RC_BASE" cluster info | grep '^cluster_slots_assigned:' | tr -d '\r' | cut -d: -f2)" = "0" ]; then
      # shellcheck disable=SC2046
      redis-cli --cluster create $(for port in $RC_PORTS; do printf '127.0.0.1:%s ' "$port"; done) \
        --cluster-replicas 1 --cluster-yes >&2
    fi
    for _ in $(seq 1 100); do rc_ok && break; sleep 0.1; done
    if ! rc_ok; then
      log "Redis Cluster is not ok:"
      redis-cli -p "$RC_BASE" cluster info >&2 || true
      exit 1
    fi
  fi
  echo "export CLIQUET_TEST_REDIS_CLUSTER_URL=redis+cluster://127.0.0.1:$RC_BASE"
fi
