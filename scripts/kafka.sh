#!/usr/bin/env bash
# Local Apache Kafka in KRaft mode, run from Maven Central jars (no Docker, no tarball).
#
# usage: scripts/kafka.sh COMMAND [--brokers N] [--port P]
#   fetch                 copy the jars listed in scripts/kafka/pom.xml to .state/kafka/libs (once)
#   start                 format storage if new, start every node that is down, wait until all
#                         answer and every replica is in sync
#   stop [--all]          SIGTERM every node; SIGKILL for nodes left without a controller quorum or
#                         past the deadline; --all: every cluster in .state
#   status                one line per node; exit 0 when all nodes answer, 3 otherwise
#   reset                 stop, then delete the cluster's data
#   bootstrap             print the bootstrap servers (host:port,...)
#   start-node N | stop-node N | kill-node N   fault injection on node N (1-based); kill = SIGKILL;
#                         start-node returns once node N is back in the ISR of all its partitions
#   class-archive         write (once) and print a class-data archive of a broker's classes
#                         (JDK AppCDS) for SLUICE_KAFKA_JVM_OPTS=-XX:SharedArchiveFile=<it>
#
# A cluster is identified by (brokers, port) and keeps its files in .state/kafka-<brokers>-<port>,
# so a single node on 9092 and a 3-node cluster on another port can run side by side.
# Every node is broker+controller; node i listens on PORT+i-1 (PLAINTEXT) and on
# CONTROLLER_PORT+i-1 (controller), 127.0.0.1 only.
#
# Environment (flags win over these):
#   SLUICE_KAFKA_BROKERS=1  SLUICE_KAFKA_PORT=9092  SLUICE_KAFKA_CONTROLLER_PORT=PORT+BROKERS
#   SLUICE_KAFKA_HEAP="-Xmx512m -Xms256m"  SLUICE_KAFKA_START_TIMEOUT=60  SLUICE_KAFKA_STOP_TIMEOUT=30
#   SLUICE_KAFKA_JVM_OPTS: more JVM flags for every node and the storage formatter. The test
#     suite starts ~20 short-lived nodes and passes the class archive plus C1-only JIT: on two
#     cores a node then starts in ~2.6 s instead of ~5.5, and no C2 compiler threads compete
#     with the tests. Long-running clusters (`make up`, the bench) keep the JVM's defaults.
#   SLUICE_KAFKA_BROKER_SESSION_MS: a broker silent this long is fenced and its partitions get new
#     leaders (Kafka's default 9000; heartbeats every quarter of it). Fault tests that kill
#     brokers shorten it: the wait for a dead leader is then seconds, not the default's ~10.
#   SLUICE_KAFKA_GROUP_MIN_SESSION_MS: the shortest consumer-group session the brokers accept
#     (Kafka's default 6000), for tests whose killed writers should lose their partitions sooner.
#   SLUICE_STATE_DIR (see lib.sh)
#   SLUICE_KAFKA_SASL_SSL_PORT=P  SLUICE_KAFKA_TLS_DIR=DIR: node i also listens on P+i-1 with
#     SASL_SSL (SCRAM-SHA-512), as managed Kafka services do. DIR holds broker.pem (PKCS#8 key
#     and certificate chain, PEM) and scram-users (one "name password" a line; the credentials
#     are written at format time, so only a new cluster gets them). The PLAINTEXT listener
#     stays for inter-broker traffic and the readiness probe.
set -euo pipefail
SLUICE_SCRIPT=kafka
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

readonly HOST=127.0.0.1
readonly KAFKA_CONF_DIR="$SLUICE_ROOT/scripts/kafka"
# The jar cache can be shared by several state dirs (each test session has its own).
readonly LIBS="$(realpath -m "${SLUICE_KAFKA_LIBS:-$SLUICE_STATE/kafka/libs}")"
BROKERS="${SLUICE_KAFKA_BROKERS:-1}"
PORT="${SLUICE_KAFKA_PORT:-9092}"
HEAP="${SLUICE_KAFKA_HEAP:--Xmx512m -Xms256m}"
JVM_OPTS="${SLUICE_KAFKA_JVM_OPTS:-}"
START_TIMEOUT="${SLUICE_KAFKA_START_TIMEOUT:-60}"
# Generous: a node in controlled shutdown waits for the controller to move its leaders away.
STOP_TIMEOUT="${SLUICE_KAFKA_STOP_TIMEOUT:-30}"
SASL_SSL_PORT="${SLUICE_KAFKA_SASL_SSL_PORT:-}"
BROKER_SESSION_MS="${SLUICE_KAFKA_BROKER_SESSION_MS:-}"
GROUP_MIN_SESSION_MS="${SLUICE_KAFKA_GROUP_MIN_SESSION_MS:-}"
TLS_DIR="${SLUICE_KAFKA_TLS_DIR:-}"

# ---------------------------------------------------------------- jars

cmd_fetch() {
  local stamp="$LIBS/.pom.sha256" want
  want="$(file_hash "$KAFKA_CONF_DIR/pom.xml")"
  [[ "$(cat "$stamp" 2>/dev/null)" == "$want" ]] && return 0
  command -v mvn >/dev/null || die "mvn not found: Maven is needed once to fetch the Kafka jars"
  log "fetching Kafka jars with Maven into $LIBS"
  ensure_state_dir
  mkdir -p "$SLUICE_STATE/kafka"
  # Copy into a fresh dir and swap it in, so an interrupted fetch never leaves a
  # half-filled classpath behind a valid stamp.
  local tmp="$LIBS.tmp.$$" mvn_log="$SLUICE_STATE/kafka/fetch.log"
  rm -rf "$tmp"
  if ! mvn -B -f "$KAFKA_CONF_DIR/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$tmp" >"$mvn_log" 2>&1; then
    rm -rf "$tmp"
    tail -n 30 "$mvn_log" >&2
    die "mvn dependency:copy-dependencies failed (full output: $mvn_log)"
  fi
  echo "$want" >"$tmp/.pom.sha256"
  rm -rf "$LIBS"
  mv "$tmp" "$LIBS"
}

# ---------------------------------------------------------------- layout

cluster_dir() { echo "$SLUICE_STATE/kafka-$BROKERS-$PORT"; }
node_dir() { echo "$(cluster_dir)/node-$1"; }
broker_port() { echo $((PORT + $1 - 1)); }
controller_port() { echo $((CONTROLLER_PORT + $1 - 1)); }
node_ids() { seq 1 "$BROKERS"; }
# The config path is unique per node, so it tells our JVMs apart from any other java.
node_marker() { echo "$(node_dir "$1")/server.properties"; }
node_pidfile() { echo "$(node_dir "$1")/kafka.pid"; }
node_log() { echo "$(node_dir "$1")/kafka.log"; }

cmd_bootstrap() {
  local id servers=()
  for id in $(node_ids); do servers+=("$HOST:$(broker_port "$id")"); done
  (IFS=,; echo "${servers[*]}")
}

quorum_voters() {
  local id voters=()
  for id in $(node_ids); do voters+=("$id@$HOST:$(controller_port "$id")"); done
  (IFS=,; echo "${voters[*]}")
}

# ---------------------------------------------------------------- config

# With one node every replication setting must be 1; with several we want the
# settings the fault tests rely on: RF 3 and min ISR 2, no unclean elections.
replication_props() {
  local rf=$((BROKERS < 3 ? BROKERS : 3))
  local min_isr=$((rf > 1 ? rf - 1 : 1))
  cat <<EOF
default.replication.factor=$rf
min.insync.replicas=$min_isr
offsets.topic.replication.factor=$rf
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$min_isr
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$min_isr
unclean.leader.election.enable=false
EOF
}

# Kafka's own failure detection unless the environment shortens it (see the header).
failure_detection_props() {
  if [[ -n "$BROKER_SESSION_MS" ]]; then
    echo "broker.session.timeout.ms=$BROKER_SESSION_MS"
    echo "broker.heartbeat.interval.ms=$((BROKER_SESSION_MS / 4))"
  fi
  if [[ -n "$GROUP_MIN_SESSION_MS" ]]; then
    echo "group.min.session.timeout.ms=$GROUP_MIN_SESSION_MS"
  fi
}

secured() { [[ -n "$SASL_SSL_PORT" ]]; }

# The PLAINTEXT listener, plus the SASL_SSL one when asked for.
client_listeners() {
  local id="$1"
  printf 'PLAINTEXT://%s:%s' "$HOST" "$(broker_port "$id")"
  if secured; then printf ',SASL_SSL://%s:%s' "$HOST" $((SASL_SSL_PORT + id - 1)); fi
}

secure_props() {
  secured || return 0
  [[ -f "$TLS_DIR/broker.pem" ]] || die "SLUICE_KAFKA_TLS_DIR must hold broker.pem (key + certificate chain)"
  cat <<EOF
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
ssl.keystore.type=PEM
ssl.keystore.location=$TLS_DIR/broker.pem
ssl.client.auth=none
EOF
}

# StorageTool arguments that create the SCRAM users at format time (a KRaft cluster stores
# them in its metadata log), one argument a line.
scram_args() {
  secured || return 0
  local name password
  while read -r name password; do
    [[ -n "$name" ]] && printf -- '--add-scram\nSCRAM-SHA-512=[name=%s,password=%s]\n' "$name" "$password"
  done <"$TLS_DIR/scram-users"
}

# Rewritten on every start so the file always matches this script.
write_node_config() {
  local id="$1" dir listeners
  dir="$(node_dir "$id")"
  mkdir -p "$dir/data"
  listeners="$(client_listeners "$id")"
  cat >"$dir/server.properties" <<EOF
# Generated by scripts/kafka.sh on every start; edit the script, not this file.
process.roles=broker,controller
node.id=$id
controller.quorum.voters=$(quorum_voters)
listeners=$listeners,CONTROLLER://$HOST:$(controller_port "$id")
advertised.listeners=$listeners
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL
$(secure_props)
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data
num.partitions=8
auto.create.topics.enable=false
group.initial.rebalance.delay.ms=0
# 50 partitions (the default) per internal topic makes the first consumer group
# and transaction slow to set up on a 2-core box; 8 keeps them spread enough.
offsets.topic.num.partitions=8
transaction.state.log.num.partitions=8
$(replication_props)
$(failure_detection_props)
EOF
}

ensure_cluster_id() {
  local file
  file="$(cluster_dir)/cluster.id"
  [[ -s "$file" ]] && return 0
  mkdir -p "$(cluster_dir)"
  # Same shape as Kafka's Uuid.randomUuid(): 16 random bytes, base64url, unpadded,
  # never starting with '-' (it would read as a command-line flag).
  python3 - >"$file" <<'EOF'
import base64, uuid
while True:
    text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    if not text.startswith("-"):
        print(text)
        break
EOF
}

format_node() {
  local id="$1" dir
  dir="$(node_dir "$id")"
  [[ -f "$dir/data/meta.properties" ]] && return 0
  log "formatting storage of node $id"
  local scram=()
  mapfile -t scram < <(scram_args)
  # shellcheck disable=SC2086  # JVM_OPTS holds several JVM flags
  java -Xmx256m $JVM_OPTS -cp "$LIBS/*" kafka.tools.StorageTool format --ignore-formatted \
    -t "$(<"$(cluster_dir)/cluster.id")" -c "$dir/server.properties" "${scram[@]}" \
    >>"$(node_log "$id")" 2>&1 \
    || die "formatting node $id failed; see $(node_log "$id")"
}

# Formatting costs a JVM start (~2 s) per node, so new nodes are formatted in parallel.
format_nodes() {
  local id pids=()
  for id in "$@"; do
    format_node "$id" &
    pids+=("$!")
  done
  local pid
  for pid in "${pids[@]}"; do wait "$pid" || exit 1; done
}

# ---------------------------------------------------------------- processes

node_pid() { pid_of "$(node_pidfile "$1")" "$(node_marker "$1")"; }

launch_node() {
  local id="$1"
  require_free_port "$HOST" "$(broker_port "$id")"
  require_free_port "$HOST" "$(controller_port "$id")"
  if secured; then require_free_port "$HOST" $((SASL_SSL_PORT + id - 1)); fi
  log "starting node $id on $HOST:$(broker_port "$id") (controller $(controller_port "$id"))"
  LAUNCHED+=("$id")
  # G1HeapRegionSize: a produce request above half a region is a "humongous" object, and each
  # one starts a concurrent marking cycle. With the default 1 MB regions of a small heap, span
  # exports (several 67 kB records in one request) did that ~5 times a second, which cost the
  # broker a third of a core. Kafka's own production notes use 16 MB regions on a 6 GB heap.
  # shellcheck disable=SC2086  # HEAP and JVM_OPTS hold several JVM flags
  start_bg "$(node_pidfile "$id")" "$(node_log "$id")" \
    java $HEAP $JVM_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:G1HeapRegionSize=4m -XX:+ExitOnOutOfMemoryError \
    -Djava.awt.headless=true -Dlog4j2.configurationFile="$KAFKA_CONF_DIR/log4j2.properties" \
    -cp "$LIBS/*" kafka.Kafka "$(node_marker "$id")"
}

# After a failed start only the nodes this run launched go; SIGKILL because a node
# that never became ready has nothing to shut down cleanly and may not honour SIGTERM.
LAUNCHED=()
kill_launched() {
  local id
  for id in "${LAUNCHED[@]}"; do cmd_kill_node "$id"; done
}

# node_answers ID EXPECTED_IDS...: node ID serves requests, lists EXPECTED_IDS as live
# brokers, and sees each of them in the ISR of every partition it replicates: a node
# restarted by a fault test counts as back only once it has caught up, so the test
# can take the next node down without dropping below min.insync.replicas.
node_answers() {
  local id="$1"
  shift
  require_alive "$(node_pidfile "$id")" "$(node_marker "$id")" "$(node_log "$id")"
  python3 "$SLUICE_ROOT/scripts/kafka_probe.py" "$HOST" "$(broker_port "$id")" --in-sync "$@" >/dev/null 2>&1
}

all_nodes_answer() {
  local id ids
  mapfile -t ids < <(node_ids)
  for id in "${ids[@]}"; do node_answers "$id" "${ids[@]}" || return 1; done
}

prepare_nodes() {
  cmd_fetch
  ensure_cluster_id
  local id fresh=()
  for id in "$@"; do
    node_pid "$id" >/dev/null && continue
    write_node_config "$id"
    [[ -f "$(node_dir "$id")/data/meta.properties" ]] || fresh+=("$id")
  done
  ((${#fresh[@]} == 0)) || format_nodes "${fresh[@]}"
}

cmd_start() {
  local id ids
  mapfile -t ids < <(node_ids)
  prepare_nodes "${ids[@]}"
  on_failure kill_launched
  for id in "${ids[@]}"; do node_pid "$id" >/dev/null || launch_node "$id"; done
  wait_until "$START_TIMEOUT" "all $BROKERS Kafka node(s) to answer" all_nodes_answer
  log "ready: $(cmd_bootstrap)"
}

cmd_start_node() {
  local id="$1"
  prepare_nodes "$id"
  on_failure kill_launched
  node_pid "$id" >/dev/null || launch_node "$id"
  wait_until "$START_TIMEOUT" "node $id to answer" node_answers "$id" "$id"
  log "node $id ready on $HOST:$(broker_port "$id")"
}

cmd_stop_node() { stop_pid "$(node_pidfile "$1")" "$(node_marker "$1")" "$STOP_TIMEOUT"; }

cmd_kill_node() { kill_pid "$(node_pidfile "$1")" "$(node_marker "$1")"; }

# A KRaft node that is asked to stop first asks the controller quorum for a controlled
# shutdown and waits up to 5 minutes (hard-coded in Kafka 4.1) for the answer. So all
# nodes get SIGTERM together, while the quorum still stands, and once fewer than a
# majority of the processes are left no quorum can answer any more: the stragglers
# get SIGKILL at once instead of sitting out the deadline. Their data is in the page
# cache and the next start recovers their logs.
cmd_stop() {
  local id pid
  for id in $(node_ids); do
    pid="$(node_pid "$id")" && signal_group TERM "$pid"
  done
  local deadline=$((SECONDS + STOP_TIMEOUT))
  until stop_settled; do
    if ((SECONDS >= deadline)); then
      log "nodes still running after ${STOP_TIMEOUT}s of SIGTERM; sending SIGKILL"
      kill_remaining
      break
    fi
    sleep 0.2
  done
}

running_nodes() {
  local id pid
  for id in $(node_ids); do
    if pid="$(node_pid "$id")" && ! proc_gone "$pid"; then echo "$id"; fi
  done
}

stop_settled() {
  local alive
  mapfile -t alive < <(running_nodes)
  ((${#alive[@]} == 0)) && { kill_remaining; return 0; }
  ((${#alive[@]} < BROKERS / 2 + 1)) || return 1
  log "quorum gone; SIGKILL to node(s) ${alive[*]} still waiting for it"
  kill_remaining
}

# Also clears the pid files of nodes that already exited.
kill_remaining() {
  local id
  for id in $(node_ids); do cmd_kill_node "$id"; done
}

# Every cluster this state dir knows about, whatever its size and port.
cmd_stop_all() {
  local dir name
  for dir in "$SLUICE_STATE"/kafka-*-*/; do
    [[ -d "$dir" ]] || continue
    name="$(basename "$dir")"
    BROKERS="$(cut -d- -f2 <<<"$name")" PORT="$(cut -d- -f3 <<<"$name")" cmd_stop
  done
}

cmd_status() {
  local id pid seen up=0
  for id in $(node_ids); do
    if pid="$(node_pid "$id")"; then
      seen="$(python3 "$SLUICE_ROOT/scripts/kafka_probe.py" "$HOST" "$(broker_port "$id")" 2>/dev/null)" \
        && up=$((up + 1)) || seen="not answering"
      echo "node $id: running pid $pid, $HOST:$(broker_port "$id"), live brokers: $seen"
    else
      echo "node $id: stopped"
    fi
  done
  ((up == BROKERS)) || return "$EXIT_NOT_RUNNING"
}

# The archive is tied to the jars (pom hash) and the JDK: a JVM refuses an archive of other
# classes with a warning and loads them itself, so a stale one costs time, never correctness.
class_archive() {
  local jdk
  jdk="$(java -version 2>&1 | file_hash /dev/stdin | cut -c1-12)"
  echo "$(dirname "$LIBS")/classes-$(cut -c1-12 "$LIBS/.pom.sha256")-$jdk.jsa"
}

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# A throwaway single node in its own state dir; the JVM writes the archive as it exits.
cmd_class_archive() {
  cmd_fetch
  local archive
  archive="$(class_archive)"
  if [[ ! -f "$archive" ]]; then
    log "writing the brokers' class archive $archive"
    local build="$SLUICE_STATE/kafka/class-archive.$$"
    rm -rf "$build"
    (
      SLUICE_STATE="$build" BROKERS=1 PORT="$(free_port)" CONTROLLER_PORT="$(free_port)"
      JVM_OPTS="$JVM_OPTS -XX:ArchiveClassesAtExit=$archive.tmp"
      cmd_start >/dev/null
      cmd_stop >/dev/null
    ) || { rm -rf "$build"; die "the class archive run failed"; }
    rm -rf "$build"
    [[ -s "$archive.tmp" ]] || die "the JVM wrote no class archive ($archive.tmp)"
    mv "$archive.tmp" "$archive"
  fi
  echo "$archive"
}

cmd_reset() {
  cmd_stop
  rm -rf "$(cluster_dir)"
  log "deleted $(cluster_dir)"
}

# ---------------------------------------------------------------- CLI

valid_node() {
  if ! is_uint "${1:-}" || (($1 < 1 || $1 > BROKERS)); then
    usage_error "node must be 1..$BROKERS (pass --brokers N for a multi-node cluster)"
  fi
}

main() {
  local command="${1:-}" node="" all=0
  (($# > 0)) && shift
  while (($# > 0)); do
    case "$1" in
      --brokers) BROKERS="${2:-}"; shift 2 || usage_error "--brokers needs a value" ;;
      --port) PORT="${2:-}"; shift 2 || usage_error "--port needs a value" ;;
      --all) all=1; shift ;;
      [0-9]*) node="$1"; shift ;;
      *) usage_error "unknown argument: $1" ;;
    esac
  done
  if ! is_uint "$BROKERS" || ((BROKERS < 1)); then usage_error "--brokers must be a positive integer"; fi
  is_uint "$PORT" || usage_error "--port must be a number"
  local ms
  for ms in "$BROKER_SESSION_MS" "$GROUP_MIN_SESSION_MS"; do
    [[ -z "$ms" ]] || is_uint "$ms" || usage_error "SLUICE_KAFKA_*_SESSION_MS must be a number of milliseconds"
  done
  CONTROLLER_PORT="${SLUICE_KAFKA_CONTROLLER_PORT:-$((PORT + BROKERS))}"
  case "$command" in
    fetch) cmd_fetch ;;
    start) cmd_start ;;
    stop) if ((all)); then cmd_stop_all; else cmd_stop; fi ;;
    status) cmd_status ;;
    reset) cmd_reset ;;
    bootstrap) cmd_bootstrap ;;
    start-node) valid_node "$node"; cmd_start_node "$node" ;;
    stop-node) valid_node "$node"; cmd_stop_node "$node" ;;
    kill-node) valid_node "$node"; cmd_kill_node "$node" ;;
    class-archive) cmd_class_archive ;;
    *) usage_error "command must be one of: fetch start stop status reset bootstrap start-node stop-node kill-node class-archive" ;;
  esac
}

main "$@"
