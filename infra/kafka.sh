#!/usr/bin/env bash
# Apache Kafka in KRaft mode, one node as broker and controller, on 127.0.0.1.
#   bash infra/kafka.sh fetch|start|stop|status
# Jars come from Maven Central (infra/pom.xml); data lives in .run/kafka/ and survives a stop.
#
# KAFKA_SECURITY=sasl_ssl: a broker as production runs it instead (in .run/kafka-secured/, made
# afresh at each start): TLS with a throwaway CA, SASL PLAIN and SCRAM-SHA-256/512, one principal
# per service plus `admin`, and StandardAuthorizer ACLs from infra/kafka_acls.py. It writes
# client.env (the variables a client sets) and credentials (one `user:password` a line).
#
# KAFKA_NODES=3: a three-node cluster instead (each node broker and controller), for the fault
# tests: node N listens on KAFKA_PORT+100*N (controller KAFKA_CONTROLLER_PORT+100*N), lives in
# .run/kafka-cluster/nodeN/, and internal topics are replicated 3 times with min.insync.replicas=2.
# `start` starts the nodes that are not running (a node killed by a test comes back with its data);
#   bash infra/kafka.sh start-node N|kill-node N|bootstrap   (cluster only)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PORT="${KAFKA_PORT:-19092}"
CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-19093}"
LIBS="$INFRA/kafka-libs"
SECURITY="${KAFKA_SECURITY:-plaintext}"
case "$SECURITY" in
  plaintext) DIR="$RUN/kafka" ;;
  sasl_ssl) DIR="$RUN/kafka-secured" ;;
  *) echo "KAFKA_SECURITY must be plaintext or sasl_ssl, got '$SECURITY'" >&2; exit 2 ;;
esac
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
  if [ "$SECURITY" = sasl_ssl ]; then secured_start; return; fi
  if pid_alive "$PID" && port_open "$PORT"; then
    log "kafka already running (pid $(cat "$PID")) on 127.0.0.1:$PORT"
    return 0
  fi
  if ! wait_for 30 "port $PORT to be free (a broker we did not start, or one still stopping?)" port_free "$PORT"; then
    return 1
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
  log4j_config
  if [ ! -f "$DIR/data/meta.properties" ]; then
    local id; id=$(java -cp "$LIBS/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)
    java -cp "$LIBS/*" kafka.tools.StorageTool format -g -t "$id" -c "$DIR/server.properties" >/dev/null
  fi
  launch ready
}

# log4j_config: the broker logs to $DIR/logs/server.log
log4j_config() {
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
}

# launch READY_CHECK: run the broker of $DIR/server.properties in the background until READY_CHECK passes
launch() {
  log "starting kafka on 127.0.0.1:$PORT (up to ${KAFKA_START_SECONDS:-180} s; log: $DIR/logs/server.log)"
  setsid nohup java -Xms256m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
    -Djava.net.preferIPv4Stack=true \
    -Dlog4j2.configurationFile="$DIR/log4j2.properties" -Dkafka.logs.dir="$DIR/logs" \
    -cp "$LIBS/*" kafka.Kafka "$DIR/server.properties" >"$DIR/logs/stdout.log" 2>&1 </dev/null &
  echo $! > "$PID"
  if ! wait_for "${KAFKA_START_SECONDS:-180}" "kafka" "$1"; then
    tail -20 "$DIR/logs/server.log" "$DIR/logs/stdout.log" >&2 || true
    return 1
  fi
  log "kafka running (pid $(cat "$PID")) on 127.0.0.1:$PORT ($SECURITY)"
}

# ---- KAFKA_SECURITY=sasl_ssl: TLS, SASL and ACLs (the principals and their rights: infra/kafka_acls.py)

# The principals: admin (super user, also the broker's own), then one per service process.
SECURED_USERS=(admin security customers orders notifications notifications-worker)

secured_start() {
  if pid_alive "$PID" && port_open "$PORT"; then
    log "kafka (sasl_ssl) already running (pid $(cat "$PID")) on 127.0.0.1:$PORT"
    # the ACLs of this checkout, not of the one that started it (creating an existing ACL is a no-op)
    "$(python_bin)" "$INFRA/kafka_acls.py" apply "$DIR"
    return 0
  fi
  fetch
  stop_pid "$PID" 30
  rm -rf "$DIR"  # a throwaway cluster: new CA, passwords and data at each start
  mkdir -p "$DIR/data" "$DIR/logs" "$DIR/tls"
  chmod 700 "$DIR"
  secured_certificates
  secured_credentials
  secured_properties
  log4j_config
  local id scram=()
  id=$(java -cp "$LIBS/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)
  while IFS=: read -r user password; do
    scram+=(--add-scram "SCRAM-SHA-256=[name=$user,password=$password]")
    scram+=(--add-scram "SCRAM-SHA-512=[name=$user,password=$password]")
  done < "$DIR/credentials"
  java -cp "$LIBS/*" kafka.tools.StorageTool format -t "$id" -c "$DIR/server.properties" "${scram[@]}" >/dev/null
  launch secured_ready
  "$(python_bin)" "$INFRA/kafka_acls.py" apply "$DIR"
  log "client settings in $DIR/client.env, passwords in $DIR/credentials"
}

# A CA and a broker certificate for 127.0.0.1/localhost, signed by it; PKCS12 keystore for Java.
secured_certificates() {
  local tls="$DIR/tls" pass; pass=$(openssl rand -hex 16)
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=kafka-and-python local CA" \
    -keyout "$tls/ca.key" -out "$tls/ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
    -keyout "$tls/broker.key" -out "$tls/broker.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' > "$tls/ext"
  openssl x509 -req -in "$tls/broker.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial \
    -days 30 -extfile "$tls/ext" -out "$tls/broker.pem" 2>/dev/null
  openssl pkcs12 -export -name broker -in "$tls/broker.pem" -inkey "$tls/broker.key" \
    -certfile "$tls/ca.pem" -out "$tls/broker.p12" -passout "pass:$pass"
  echo "$pass" > "$tls/keystore.password"
  rm -f "$tls/ca.key" "$tls/broker.csr" "$tls/ext"  # nobody signs anything else with this CA
}

# One random password per principal, in $DIR/credentials (user:password); the client variables.
secured_credentials() {
  : > "$DIR/credentials"
  chmod 600 "$DIR/credentials"
  for user in "${SECURED_USERS[@]}"; do echo "$user:$(openssl rand -hex 16)" >> "$DIR/credentials"; done
  cat > "$DIR/client.env" <<ENV
BOOTSTRAP_SERVERS=127.0.0.1:$PORT
SECURITY_PROTOCOL=SASL_SSL
SASL_MECHANISM=SCRAM-SHA-512
SSL_CAFILE=$DIR/tls/ca.pem
KAFKA_TOPIC_PREFIX=${KAFKA_TOPIC_PREFIX:-}
ENV
}

secured_password() { grep "^$1:" "$DIR/credentials" | cut -d: -f2; }

secured_properties() {
  local admin plain_users="" user keystore_pass
  admin=$(secured_password admin)
  keystore_pass=$(cat "$DIR/tls/keystore.password")
  while IFS=: read -r user password; do plain_users+=" user_$user=\"$password\""; done < "$DIR/credentials"
  cat > "$DIR/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
listeners=SASL_SSL://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=SASL_SSL://127.0.0.1:$PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=SASL_SSL
listener.security.protocol.map=CONTROLLER:SASL_PLAINTEXT,SASL_SSL:SASL_SSL
sasl.mechanism.inter.broker.protocol=PLAIN
sasl.mechanism.controller.protocol=PLAIN
listener.name.sasl_ssl.sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="$admin"$plain_users;
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="$admin" user_admin="$admin";
ssl.keystore.type=PKCS12
ssl.keystore.location=$DIR/tls/broker.p12
ssl.keystore.password=$keystore_pass
ssl.key.password=$keystore_pass
ssl.truststore.type=PEM
ssl.truststore.location=$DIR/tls/ca.pem
ssl.endpoint.identification.algorithm=https
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:admin
allow.everyone.if.no.acl.found=false
log.dirs=$DIR/data
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.cleaner.enable=true
PROPS
  chmod 600 "$DIR/server.properties"
}

secured_ready() {
  port_open "$PORT" && "$(python_bin)" "$INFRA/kafka_acls.py" ready "$DIR" 2>/dev/null
}

stop() {
  stop_pid "$PID" 30
  # the next start binds the same ports: make sure nothing holds them any more
  wait_for 30 "kafka's port $PORT to be released" port_free "$PORT" || true
  wait_for 30 "kafka's controller port $CONTROLLER_PORT to be released" port_free "$CONTROLLER_PORT" || true
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
