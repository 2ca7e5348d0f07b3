# Sourced by ci/services (its helpers: log, apt_install, SUDO).
# --- PostgreSQL --------------------------------------------------------------

pg_bindir() {
  local dir
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  [ -n "$dir" ] && [ -x "$dir/postgres" ] && echo "$dir"
}

if ! pg_bindir >/dev/null || ! command -v pg_lsclusters >/dev/null; then
  apt_install postgresql postgresql-client
fi
PG_BIN="$(pg_bindir)"
PG_VERSION="$(basename "$(dirname "$PG_BIN")")"
CLUSTER="main"

as_postgres() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    sudo -n -u postgres "$@"
  fi
}

pg_ready() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 2 >/dev/null 2>&1; }

# The test tuning goes in the cluster's conf.d once; a cluster that runs
# without it (started by the package's own scripts) is restarted once.
CONF_DIR="/etc/postgresql/$PG_VERSION/$CLUSTER/conf.d"
PG_RESTART=""
if [ -d "/etc/postgresql/$PG_VERSION/$CLUSTER" ] && [ ! -f "$CONF_DIR/cliquet-tests.conf" ] && pg_ready; then
  PG_RESTART=1
fi

if ! pg_ready || [ -n "$PG_RESTART" ]; then
  if ! pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2}' | grep -qx "$PG_VERSION $CLUSTER"; then
    log "creating PostgreSQL $PG_VERSION cluster $CLUSTER on port $PG_PORT"
    $SUDO pg_createcluster "$PG_VERSION" "$CLUSTER" --port "$PG_PORT" >&2
  fi
  if [ ! -f "$CONF_DIR/cliquet-tests.conf" ]; then
    log "tuning PostgreSQL for tests ($CONF_DIR/cliquet-tests.conf)"
    $SUDO mkdir -p "$CONF_DIR"
    $SUDO tee "$CONF_DIR/cliquet-tests.conf" >/dev/null <<EOF
# Written by cliquet's ci/services: a throw-away server for tests.
listen_addresses = '127.0.0.1'
port = $PG_PORT
max_connections = 400
fsync = off
synchronous_commit = off
full_page_writes = off
wal_level = minimal
max_wal_senders = 0
shared_buffers = 256MB
checkpoint_timeout = 30min
max_wal_size = 2GB
EOF
  fi
  if [ -n "$PG_RESTART" ]; then
    log "restarting PostgreSQL $PG_VERSION/$CLUSTER with the test settings"
    $SUDO pg_ctlcluster "$PG_VERSION" "$CLUSTER" restart >&2 || true
  fi
  if ! pg_ready; then
    log "starting PostgreSQL $PG_VERSION/$CLUSTER"
    $SUDO pg_ctlcluster "$PG_VERSION" "$CLUSTER" start >&2 || true
  fi
  for _ in $(seq 1 60); do
    pg_ready && break
    sleep 0.5
  done
  if ! pg_ready; then
    log "PostgreSQL did not start; its log:"
    tail -n 30 "/var/log/postgresql/postgresql-$PG_VERSION-$CLUSTER.log" >&2 || true
    exit 1
  fi
fi

# The test role and database (cheap when they exist: one query).
if ! PGPASSWORD="$PG_PASSWORD" "$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d "$PG_DB" \
      -c "SELECT 1" >/dev/null 2>&1; then
  log "creating role $PG_USER and database $PG_DB"
  (cd / && as_postgres "$PG_BIN/psql" -X -q -p "$PG_PORT" -v ON_ERROR_STOP=1 >&2) <<EOF
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_USER') THEN
    CREATE ROLE $PG_USER LOGIN PASSWORD '$PG_PASSWORD' CREATEDB;
  ELSE
    ALTER ROLE $PG_USER LOGIN PASSWORD '$PG_PASSWORD' CREATEDB;
  END IF;
END \$\$;
SELECT 'CREATE DATABASE $PG_DB OWNER $PG_USER ENCODING ''UTF8'' TEMPLATE template0'
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$PG_DB')\gexec
EOF
fi

