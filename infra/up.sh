#!/usr/bin/env bash
# Start what is not configured from outside, then write .run/env for the services and tests.
#   BOOTSTRAP_SERVERS set -> no local Kafka; DATABASE_URL set -> no local PostgreSQL;
#   SMTP_HOST set -> no local SMTP sink.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

lines=()
if [ -n "${BOOTSTRAP_SERVERS:-}" ]; then
  lines+=("BOOTSTRAP_SERVERS=$BOOTSTRAP_SERVERS")
else
  bash "$INFRA/kafka.sh" start
  lines+=("BOOTSTRAP_SERVERS=127.0.0.1:${KAFKA_PORT:-19092}" "LOCAL_KAFKA=1")
fi
if [ -n "${DATABASE_URL:-}" ]; then
  lines+=("DATABASE_URL=$DATABASE_URL")
else
  bash "$INFRA/postgres.sh" start
  lines+=("DATABASE_URL=postgresql://postgres:postgres@127.0.0.1:${PGPORT:-15432}/app" "LOCAL_POSTGRES=1")
fi
if [ -n "${SMTP_HOST:-}" ]; then
  lines+=("SMTP_HOST=$SMTP_HOST" "SMTP_PORT=${SMTP_PORT:-25}")
else
  bash "$INFRA/smtp.sh" start
  lines+=("SMTP_HOST=127.0.0.1" "SMTP_PORT=${SMTP_SINK_PORT:-11025}" "SMTP_SINK_DIR=${SMTP_SINK_DIR:-$RUN/mail}" "LOCAL_SMTP=1")
fi
printf '%s\n' "${lines[@]}" > "$RUN/env.tmp"
mv "$RUN/env.tmp" "$RUN/env"
log "addresses (also in $RUN/env):"
sed 's/^/[infra]   /; s/:postgres@/:***@/' "$RUN/env" >&2
