#!/usr/bin/env bash
# Stop whatever the project's scripts started (pid files under .run/); data stays for next time.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bash "$INFRA/smtp.sh" stop
bash "$INFRA/postgres.sh" stop
bash "$INFRA/kafka.sh" stop
KAFKA_SECURITY=sasl_ssl bash "$INFRA/kafka.sh" stop  # the secured one of make test-secured
KAFKA_NODES=3 bash "$INFRA/kafka.sh" stop  # the fault suite's cluster, if it ran
