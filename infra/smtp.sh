#!/usr/bin/env bash
# The SMTP sink (aiosmtpd) on 127.0.0.1; each mail becomes a .eml file in .run/mail/.
#   bash infra/smtp.sh start|stop|status
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PORT="${SMTP_SINK_PORT:-11025}"
MAIL="${SMTP_SINK_DIR:-$RUN/mail}"
DIR="$RUN/smtp"
PID="$DIR/pid"

start() {
  if pid_alive "$PID" && port_open "$PORT"; then
    log "smtp sink already running (pid $(cat "$PID")) on 127.0.0.1:$PORT"
    return 0
  fi
  mkdir -p "$DIR" "$MAIL"
  setsid nohup "$(python_bin)" "$INFRA/smtp_sink.py" --port "$PORT" --dir "$MAIL" \
    >"$DIR/sink.log" 2>&1 </dev/null &
  echo $! > "$PID"
  wait_for 30 "smtp sink" port_open "$PORT"
  log "smtp sink running (pid $(cat "$PID")) on 127.0.0.1:$PORT, mail in $MAIL"
}

stop() {
  stop_pid "$PID" 10
  log "smtp sink stopped"
}

status() {
  pid_alive "$PID" && port_open "$PORT"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
