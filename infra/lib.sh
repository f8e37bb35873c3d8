# Shared helpers of the infrastructure scripts (sourced, not run).
set -euo pipefail
INFRA="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$INFRA")"
RUN="${RUN_DIR:-$ROOT/.run}"
mkdir -p "$RUN"
chmod 755 "$RUN"

log() { echo "[infra] $*" >&2; }

# pid_alive FILE: the pid file names a live process
pid_alive() {
  [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

# port_open PORT: something accepts TCP connections on 127.0.0.1:PORT
port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# wait_for SECONDS DESCRIPTION COMMAND...: retry COMMAND until it succeeds or time runs out
# (says every 10 s how long it has waited, so a slow start is not taken for a hang)
wait_for() {
  local seconds=$1 what=$2; shift 2
  local start=$SECONDS deadline=$((SECONDS + seconds)) next=$((SECONDS + 10))
  until "$@"; do
    if [ $SECONDS -ge $deadline ]; then
      log "$what did not come up within ${seconds}s"
      return 1
    fi
    if [ $SECONDS -ge $next ]; then
      log "  still waiting for $what: $((SECONDS - start)) s (at most $seconds s)"
      next=$((SECONDS + 10))
    fi
    sleep 0.3
  done
}

# stop_pid FILE SECONDS: SIGTERM, wait, then SIGKILL
stop_pid() {
  local file=$1 seconds=$2
  if ! pid_alive "$file"; then rm -f "$file"; return 0; fi
  local pid; pid=$(cat "$file")
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + seconds))
  local killed=0
  while kill -0 "$pid" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then
      [ $killed = 1 ] && { log "pid $pid still there 10 s after SIGKILL"; break; }
      kill -KILL "$pid" 2>/dev/null || true
      killed=1
      deadline=$((SECONDS + 10))  # a killed process takes a moment to release its ports
    fi
    sleep 0.2
  done
  rm -f "$file"
}

python_bin() {
  if [ -x "$ROOT/.venv/bin/python" ]; then echo "$ROOT/.venv/bin/python"; else echo python3; fi
}

# port_free PORT: nothing listens on 127.0.0.1:PORT any more
port_free() {
  ! port_open "$1"
}

# need COMMAND HINT: stop with a message saying what to install when COMMAND is missing
need() {
  if ! command -v "$1" >/dev/null 2>&1; then
    log "$1 is not installed: $2"
    exit 1
  fi
}

# maven_progress: Maven's batch output (on stdin) as a few lines a person can follow: each jar
# downloaded with its size and the running total, each warning or error, the totals. The whole
# output stays in $RUN/maven.log.
maven_progress() {
  tee "$RUN/maven.log" | awk '
    function mb(size, unit) { return unit == "MB" ? size : unit == "kB" ? size / 1000 : size / 1e6 }
    { sub(/^\[INFO\] /, "") }
    /^Downloaded from / {
      files++
      size = "?"
      if (match($0, /\([0-9.]+ (B|kB|MB) at/)) {
        split(substr($0, RSTART + 1, RLENGTH), m, " ")
        total += mb(m[1], m[2])
        size = m[1] " " m[2]
      }
      if ($0 ~ /\.jar /) {
        n = split($4, parts, "/")
        printf "[infra]   downloaded %s (%s); %d files, %.1f MB so far\n", parts[n], size, files, total
        fflush()
      }
      next
    }
    /^\[(WARNING|ERROR)\]/ || /BUILD FAILURE/ { print "[infra]   " $0; fflush() }
    END {
      if (files) printf "[infra]   %d files downloaded from Maven Central, %.1f MB\n", files, total
    }' >&2
}
