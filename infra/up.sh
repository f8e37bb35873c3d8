#!/usr/bin/env bash
# Start what is not configured from outside, then write .run/env for the services and tests.
#   BOOTSTRAP_SERVERS set -> no local Kafka; DATABASE_URL set -> no local PostgreSQL;
#   SMTP_HOST set -> no local SMTP sink.
#   KAFKA_NODES=3 -> the three-node Kafka cluster (replication 3, min.insync.replicas=2), and the
#   variables go to .run/env.cluster instead (the single node and the cluster can both run).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

lines=()
ENV_FILE="$RUN/env"
if [ -n "${BOOTSTRAP_SERVERS:-}" ]; then
  lines+=("BOOTSTRAP_SERVERS=$BOOTSTRAP_SERVERS")
elif [ "${KAFKA_NODES:-1}" = 3 ]; then
  KAFKA_NODES=3 bash "$INFRA/kafka.sh" start
  lines+=("BOOTSTRAP_SERVERS=$(KAFKA_NODES=3 bash "$INFRA/kafka.sh" bootstrap)" "LOCAL_KAFKA=1" "KAFKA_NODES=3"
          "KAFKA_REPLICATION_FACTOR=3" "KAFKA_MIN_INSYNC_REPLICAS=2")
  ENV_FILE="$RUN/env.cluster"
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
printf '%s\n' "${lines[@]}" > "$ENV_FILE.tmp"
mv "$ENV_FILE.tmp" "$ENV_FILE"
log "addresses (also in $ENV_FILE):"
sed 's/^/[infra]   /; s/:postgres@/:***@/' "$ENV_FILE" >&2
