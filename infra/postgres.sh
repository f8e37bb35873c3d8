#!/usr/bin/env bash
# A throwaway PostgreSQL cluster made with Debian's binaries, under .run/postgres, on 127.0.0.1.
#   bash infra/postgres.sh start|stop|status
# initdb refuses root, so the cluster belongs to the unprivileged `postgres` user.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PORT="${PGPORT:-15432}"
DIR="$RUN/postgres"
DATA="$DIR/data"

# As root, the cluster belongs to the `postgres` user, who must be able to reach its folder. A
# checkout inside a folder only its owner may enter (`mktemp -d` makes them 0700) cannot hold it,
# so the cluster then lives in /var/tmp, under a name made from the run folder's path, and
# .run/postgres is a link to it (its logs stay where the README says).
AWAY="/var/tmp/kafka-and-python-$(printf %s "$RUN" | sha256sum | cut -c1-12)/postgres"

reachable() {
  runuser -u postgres -- test -x "$1" 2>/dev/null
}

# place: point DIR and DATA at the folder the cluster lives in (start makes it when needed)
place() {
  if [ -L "$DIR" ]; then
    DIR=$(readlink -f "$DIR")
  elif [ "$(id -u)" = 0 ] && [ "${1:-}" = make ] && ! reachable "$RUN"; then
    if [ -f "$DIR/data/PG_VERSION" ]; then
      log "the postgres user can no longer enter $RUN (a parent folder became private), where the cluster is:" \
          "give it back with chmod o+x on each parent folder, or delete $DIR to start a new cluster"
      exit 1
    fi
    log "the postgres user cannot enter $RUN (a parent folder is private to its owner), so the" \
        "cluster lives in $AWAY, linked from $DIR"
    rm -rf "$DIR"  # what a start that failed here left (an initdb log), never a cluster
    mkdir -p "$AWAY"
    chown postgres: "$AWAY"
    ln -s "$AWAY" "$DIR"
    DIR=$AWAY
  fi
  DATA="$DIR/data"
}

bindir() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  if [ -z "$dir" ]; then
    local by_hand="install PostgreSQL's server (Debian/Ubuntu: sudo apt-get install postgresql), or set DATABASE_URL to a PostgreSQL you have"
    if [ "$(id -u)" != 0 ]; then
      log "PostgreSQL's binaries (initdb, pg_ctl) are not in /usr/lib/postgresql and only root may apt-get them: $by_hand"
      exit 1
    fi
    need apt-get "$by_hand"
    log "installing PostgreSQL from Debian's packages (apt-get update, then about 50 MB)"
    # -q: one line per step (no progress bars); on stderr, since stdout is the answer
    { apt-get -q update && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql; } 2>&1 \
      | sed -u 's/^/[infra]   apt-get: /' >&2
    dir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  fi
  echo "$dir"
}

as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

ready() {
  "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"
}

start() {
  BIN=$(bindir)
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
  fi
  place make
  if [ -f "$DATA/postmaster.pid" ] && ready; then
    log "postgres already running on 127.0.0.1:$PORT"
    return 0
  fi
  mkdir -p "$DIR"
  [ "$(id -u)" = 0 ] && chown postgres: "$DIR"
  if [ ! -f "$DATA/PG_VERSION" ]; then
    local pwfile="$DIR/.pw"
    echo postgres > "$pwfile"
    [ "$(id -u)" = 0 ] && chown postgres: "$pwfile"
    as_owner "$BIN/initdb" -D "$DATA" -U postgres --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 \
      -E UTF8 --locale=C.UTF-8 >"$DIR/initdb.log"
    rm -f "$pwfile"
    cat >> "$DATA/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$DIR'
max_connections = 300
shared_buffers = 256MB
logging_collector = off
CONF
  fi
  log "starting postgres on 127.0.0.1:$PORT (log: $DIR/server.log)"
  # -p: the port is PGPORT's now, not the one written in postgresql.conf when the cluster was made
  # (a folder made with another PGPORT listened there, and this start waited for nothing)
  as_owner "$BIN/pg_ctl" -D "$DATA" -l "$DIR/server.log" -o "-p $PORT" -w -t 60 start >/dev/null
  wait_for 60 "postgres" ready
  if ! PGPASSWORD=postgres psql -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -tAc \
      "SELECT 1 FROM pg_database WHERE datname = 'app'" | grep -q 1; then
    PGPASSWORD=postgres psql -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -qc "CREATE DATABASE app"
  fi
  log "postgres running on 127.0.0.1:$PORT (database app, user postgres)"
}

stop() {
  BIN=$(bindir)
  place
  if [ -f "$DATA/postmaster.pid" ]; then
    as_owner "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null 2>&1 || true
  fi
  log "postgres stopped"
}

status() {
  BIN=$(bindir)
  place
  [ -f "$DATA/postmaster.pid" ] && ready
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
