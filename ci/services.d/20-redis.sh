# Sourced by ci/services (its helpers: log, apt_install, SUDO).
# --- Redis -------------------------------------------------------------------

if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
  apt_install redis-server redis-tools
fi

redis_ready() { [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = "PONG" ]; }

if ! redis_ready; then
  log "starting Redis on 127.0.0.1:$REDIS_PORT"
  mkdir -p "$REDIS_DIR"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" \
    --dir "$REDIS_DIR" --save "" --appendonly no --protected-mode yes \
    --maxclients 4000 --logfile "$REDIS_DIR/redis.log" \
    --pidfile "$REDIS_DIR/redis.pid" >&2
  for _ in $(seq 1 50); do
    redis_ready && break
    sleep 0.1
  done
  if ! redis_ready; then
    log "Redis did not start; its log:"
    tail -n 30 "$REDIS_DIR/redis.log" >&2 || true
    exit 1
  fi
fi

echo "export CLIQUET_TEST_POSTGRESQL_URL=postgresql://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/$PG_DB"
echo "export CLIQUET_TEST_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0"

