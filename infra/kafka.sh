#!/usr/bin/env bash
# Apache Kafka in KRaft mode, one node as broker and controller, on 127.0.0.1.
#   bash infra/kafka.sh fetch|start|stop|status
# Jars come from Maven Central (infra/pom.xml); data lives in .run/kafka/ and survives a stop.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PORT="${KAFKA_PORT:-19092}"
CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-19093}"
LIBS="$INFRA/kafka-libs"
DIR="$RUN/kafka"
PID="$DIR/pid"

fetch() {
  if [ -f "$LIBS/.complete" ]; then return 0; fi
  need mvn "Kafka's jars come from Maven Central through Maven: apt-get install maven (or set BOOTSTRAP_SERVERS to a Kafka you have)"
  log "resolving Kafka's jars from Maven Central into $LIBS (about 60 MB with Maven's plugins, the first time; Maven's log: $RUN/maven.log)"
  rm -rf "$LIBS"
  if ! mvn -B -Dstyle.color=never -f "$INFRA/pom.xml" \
    org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$LIBS" 2>&1 | maven_progress; then
    log "Maven could not fetch Kafka's jars (is Maven Central reachable? a proxy goes in ~/.m2/settings.xml); see $RUN/maven.log"
    return 1
  fi
  touch "$LIBS/.complete"
  log "$(ls "$LIBS" | grep -c '\.jar$') jars in $LIBS ($(du -sh "$LIBS" | cut -f1))"
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
  need java "Kafka needs Java 17 or later: apt-get install openjdk-17-jre-headless"
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
  log "starting kafka on 127.0.0.1:$PORT (up to ${KAFKA_START_SECONDS:-180} s; log: $DIR/logs/server.log)"
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

case "${1:-}" in
  fetch) fetch ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 fetch|start|stop|status" >&2; exit 2 ;;
esac
