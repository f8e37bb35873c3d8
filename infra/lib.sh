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
wait_for() {
  local seconds=$1 what=$2; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@"; do
    if [ $SECONDS -ge $deadline ]; then
      log "$what did not come up within ${seconds}s"
      return 1
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
