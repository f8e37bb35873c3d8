#!/usr/bin/env bash
# Apache Kafka in KRaft mode, one node as broker and controller, on 127.0.0.1.
#   bash infra/kafka.sh fetch|start|stop|status
# Jars come from Maven Central (infra/pom.xml); data lives in .run/kafka/ and survives a stop.
# KAFKA_NODES=3: a three-node cluster instead (each node broker and controller), for the fault
# tests: node N listens on KAFKA_PORT+100*N (controller KAFKA_CONTROLLER_PORT+100*N), lives in
# .run/kafka-cluster/nodeN/, and internal topics are replicated 3 times with min.insync.replicas=2.
# `start` starts the nodes that are not running (a node killed by a test comes back with its data);
#   bash infra/kafka.sh start-node N|kill-node N|bootstrap   (cluster only)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PORT="${KAFKA_PORT:-19092}"
CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-19093}"
LIBS="$INFRA/kafka-libs"
DIR="$RUN/kafka"
PID="$DIR/pid"

fetch() {
  if [ -f "$LIBS/.complete" ]; then return 0; fi
  log "resolving Kafka's jars from Maven Central into $LIBS"
  rm -rf "$LIBS"
  mvn -B -q -f "$INFRA/pom.xml" \
    org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$LIBS"
  touch "$LIBS/.complete"
}

ready() {
  # A metadata answer, not just an open port.
  port_open "$PORT" && "$(python_bin)" - "$PORT" <<'PY' 2>/dev/null
import asyncio, sys
from aiokafka.admin import AIOKafkaAdminClient
async def main():
    admin = AIOKafkaAdminClient(bootstrap_servers=f"127.0.0.1:{sys.argv[1]}", request_timeout_ms=3000)
    await admin.start()
    try:
        await admin.list_topics()
    finally:
        await admin.close()
asyncio.run(main())
PY
}

start() {
  if pid_alive "$PID" && port_open "$PORT"; then
    log "kafka already running (pid $(cat "$PID")) on 127.0.0.1:$PORT"
    return 0
  fi
  fetch
  mkdir -p "$DIR/data" "$DIR/logs"
  cat > "$DIR/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DIR/data
num.partitions=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.cleaner.enable=true
PROPS
  cat > "$DIR/log4j2.properties" <<PROPS
status = error
appender.file.type = File
appender.file.name = file
appender.file.fileName = $DIR/logs/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
PROPS
  if [ ! -f "$DIR/data/meta.properties" ]; then
    local id; id=$(java -cp "$LIBS/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)
    java -cp "$LIBS/*" kafka.tools.StorageTool format -g -t "$id" -c "$DIR/server.properties" >/dev/null
  fi
  setsid nohup java -Xms256m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
    -Djava.net.preferIPv4Stack=true \
    -Dlog4j2.configurationFile="$DIR/log4j2.properties" -Dkafka.logs.dir="$DIR/logs" \
    -cp "$LIBS/*" kafka.Kafka "$DIR/server.properties" >"$DIR/logs/stdout.log" 2>&1 </dev/null &
  echo $! > "$PID"
  if ! wait_for "${KAFKA_START_SECONDS:-180}" "kafka" ready; then
    tail -20 "$DIR/logs/server.log" "$DIR/logs/stdout.log" >&2 || true
    return 1
  fi
  log "kafka running (pid $(cat "$PID")) on 127.0.0.1:$PORT"
}

stop() {
  stop_pid "$PID" 30
  log "kafka stopped"
}

status() {
  pid_alive "$PID" && port_open "$PORT"
}

# --- the three-node cluster (KAFKA_NODES=3) --------------------------------------------------
NODES="${KAFKA_NODES:-1}"
CLUSTER="$RUN/kafka-cluster"

node_port() { echo $((PORT + 100 * $1)); }
node_controller_port() { echo $((CONTROLLER_PORT + 100 * $1)); }

cluster_bootstrap() {
  local n out=()
  for n in 1 2 3; do out+=("127.0.0.1:$(node_port "$n")"); done
  (IFS=,; echo "${out[*]}")
}

cluster_ready() {
  # every node answers, and the cluster's metadata lists all three brokers
  local n
  for n in 1 2 3; do port_open "$(node_port "$n")" || return 1; done
  "$(python_bin)" - "$(cluster_bootstrap)" <<'PY' 2>/dev/null
import asyncio, sys
from aiokafka.admin import AIOKafkaAdminClient
async def main():
    admin = AIOKafkaAdminClient(bootstrap_servers=sys.argv[1], request_timeout_ms=3000)
    await admin.start()
    try:
        cluster = await admin.describe_cluster()
        assert len(cluster["brokers"]) == 3, cluster
    finally:
        await admin.close()
asyncio.run(main())
PY
}

write_node_config() {
  local n=$1 dir="$CLUSTER/node$1" voters="" m
  for m in 1 2 3; do voters+="${voters:+,}$m@127.0.0.1:$(node_controller_port "$m")"; done
  mkdir -p "$dir/data" "$dir/logs"
  cat > "$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=$n
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$(node_port "$n"),CONTROLLER://127.0.0.1:$(node_controller_port "$n")
advertised.listeners=PLAINTEXT://127.0.0.1:$(node_port "$n")
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data
num.partitions=1
default.replication.factor=3
min.insync.replicas=2
auto.create.topics.enable=true
offsets.topic.replication.factor=3
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
group.initial.rebalance.delay.ms=0
unclean.leader.election.enable=false
log.cleaner.enable=true
PROPS
  cat > "$dir/log4j2.properties" <<PROPS
status = error
appender.file.type = File
appender.file.name = file
appender.file.fileName = $dir/logs/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
PROPS
}

start_node() {
  local n=$1 dir="$CLUSTER/node$1"
  if pid_alive "$dir/pid"; then return 0; fi
  write_node_config "$n"
  if [ ! -f "$dir/data/meta.properties" ]; then
    java -cp "$LIBS/*" kafka.tools.StorageTool format -t "$(cat "$CLUSTER/cluster-id")" \
      -c "$dir/server.properties" >/dev/null
  fi
  setsid nohup java -Xms128m -Xmx384m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    -Djava.net.preferIPv4Stack=true \
    -Dlog4j2.configurationFile="$dir/log4j2.properties" -Dkafka.logs.dir="$dir/logs" \
    -cp "$LIBS/*" kafka.Kafka "$dir/server.properties" >"$dir/logs/stdout.log" 2>&1 </dev/null &
  echo $! > "$dir/pid"
  log "kafka node $n starting (pid $(cat "$dir/pid")) on 127.0.0.1:$(node_port "$n")"
}

start_cluster() {
  fetch
  mkdir -p "$CLUSTER"
  if [ ! -f "$CLUSTER/cluster-id" ]; then
    java -cp "$LIBS/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1 > "$CLUSTER/cluster-id"
  fi
  local n
  for n in 1 2 3; do start_node "$n"; done
  if ! wait_for "${KAFKA_START_SECONDS:-180}" "kafka cluster" cluster_ready; then
    for n in 1 2 3; do tail -5 "$CLUSTER/node$n/logs/server.log" >&2 || true; done
    return 1
  fi
  log "kafka cluster running on $(cluster_bootstrap)"
}

kill_node() {
  # SIGKILL, as a crash: no controlled shutdown, no leadership handed over
  local file="$CLUSTER/node$1/pid"
  if pid_alive "$file"; then
    local pid; pid=$(cat "$file")
    kill -KILL "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
  rm -f "$file"
}

stop_cluster() {
  local n
  for n in 1 2 3; do
    if [ -f "$CLUSTER/node$n/pid" ]; then stop_pid "$CLUSTER/node$n/pid" 30; fi
  done
}

if [ "$NODES" = 3 ]; then
  case "${1:-}" in
    fetch) fetch ;;
    start) start_cluster ;;
    stop) stop_cluster; log "kafka cluster stopped" ;;
    status) cluster_ready ;;
    bootstrap) cluster_bootstrap ;;
    start-node) start_node "$2" ;;
    kill-node) kill_node "$2" ;;
    *) echo "usage: KAFKA_NODES=3 $0 fetch|start|stop|status|bootstrap|start-node N|kill-node N" >&2; exit 2 ;;
  esac
  exit
elif [ "$NODES" != 1 ]; then
  echo "KAFKA_NODES must be 1 or 3, got $NODES" >&2; exit 2
fi

case "${1:-}" in
  fetch) fetch ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 fetch|start|stop|status" >&2; exit 2 ;;
esac
