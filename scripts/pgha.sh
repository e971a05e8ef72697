#!/usr/bin/env bash
# PostgreSQL primary + synchronous standby with automatic failover (pg_auto_failover, Debian's
# postgresql-15-auto-failover), for `make up-ha` and the HA fault test.
#
# usage: scripts/pgha.sh COMMAND [N]
#   install       apt-get install postgresql-15-auto-failover when pg_autoctl is missing
#   start         create the monitor and nodes 1 and 2 if new, run every keeper that is down, wait
#                 until one node is primary and the other its synchronous secondary
#   stop          SIGTERM the keepers (data nodes first, the monitor last)
#   status        exit 0 when a primary and a secondary are in sync, 3 otherwise
#   reset         stop, then delete everything
#   dsn           the clients' URL: both nodes, target_session_attrs=read-write (libpq/asyncpg
#                 try the hosts in turn and keep the one that accepts writes)
#   state         the monitor's view (pg_autoctl show state)
#   primary       the number of the node that is primary now
#   kill-node N   SIGKILL node N's keeper and its postgres together: a lost machine
#   start-node N  run node N's keeper again; returns once it is back in sync (a former primary
#                 rejoins as secondary: the keeper rewinds it)
#
# Layout: .state/pgha-<port>/{monitor,node1,node2}; the monitor listens on PORT, node i on
# PORT+i, all on 127.0.0.1. Every keeper is one `pg_autoctl run` process group, so killing the
# group takes its postgres with it (as losing the machine would).
#
# Failover timing (measured on a loaded 2-core box: about 9 s from SIGKILL of the primary to the
# first committed write on the standby): the monitor probes every second and gives up on a node
# after 3 s; it then waits primary_demote_timeout (5 s; PostgreSQL's default is 30 s) for the
# old primary to demote itself before promoting. Shortening that wait is safe here because the
# old primary cannot commit alone: synchronous_standby_names names the standby, which stopped
# replicating from it, so a partitioned old primary blocks its writers instead of accepting
# them; and its keeper demotes it after network_partition_timeout (3 s) without monitor and
# standby.
#
# Environment: SLUICE_PGHA_PORT=5440  SLUICE_PG_DB=sluice  SLUICE_PG_BIN=/usr/lib/postgresql/15/bin
#   SLUICE_PG_OS_USER (see lib.sh)  SLUICE_PG_TIMEOUT=90  SLUICE_STATE_DIR
set -euo pipefail
SLUICE_SCRIPT=pgha
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

readonly HOST=127.0.0.1
readonly PG_BIN="${SLUICE_PG_BIN:-/usr/lib/postgresql/15/bin}"
readonly PORT="${SLUICE_PGHA_PORT:-5440}"
readonly DB="${SLUICE_PG_DB:-sluice}"
readonly TIMEOUT="${SLUICE_PG_TIMEOUT:-90}"
readonly PG_DIR="$SLUICE_STATE/pgha-$PORT"
readonly XDG="$PG_DIR/xdg"
readonly NODES=(1 2)
readonly MONITOR_URI="postgres://autoctl_node@$HOST:$PORT/pg_auto_failover?sslmode=disable"

# ---------------------------------------------------------------- layout

pgdata_of() { if [[ "$1" == monitor ]]; then echo "$PG_DIR/monitor"; else echo "$PG_DIR/node$1"; fi; }
port_of() { if [[ "$1" == monitor ]]; then echo "$PORT"; else echo $((PORT + $1)); fi; }
# The keeper's command line names its data folder: it tells our keepers from any other.
marker_of() { echo "pg_autoctl run --pgdata $(pgdata_of "$1")"; }
pidfile_of() { echo "$PG_DIR/$1.pid"; }
log_of() { echo "$PG_DIR/$1.log"; }

# pg_autoctl keeps its configuration and state under the XDG folders, keyed by PGDATA.
autoctl() {
  local cmd=(env "XDG_CONFIG_HOME=$XDG/config" "XDG_DATA_HOME=$XDG/share" "XDG_RUNTIME_DIR=$XDG/run"
    "PATH=$PG_BIN:$PATH" pg_autoctl "$@")
  if (($(id -u) == 0)); then
    (cd "$PG_DIR" && runuser -u "$(os_user)" -- "${cmd[@]}")
  else
    "${cmd[@]}"
  fi
}

psql_at() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$HOST" -p "$1" -U postgres -tA "${@:2}"; }

monitor_sql() { psql_at "$PORT" -d pg_auto_failover -c "$1"; }

# ---------------------------------------------------------------- install and create

cmd_install() {
  command -v pg_autoctl >/dev/null && return 0
  command -v apt-get >/dev/null || die "pg_autoctl is missing and apt-get is not available: install pg_auto_failover for PostgreSQL 15"
  log "installing Debian's postgresql-15-auto-failover package (once)"
  export DEBIAN_FRONTEND=noninteractive
  # Other sessions may hold the dpkg lock for a while: wait for it instead of failing.
  apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends postgresql-15-auto-failover >/dev/null 2>&1 \
    || { apt-get -o DPkg::Lock::Timeout=300 update -q >/dev/null 2>&1 \
      && apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends postgresql-15-auto-failover >/dev/null; } \
    || die "apt-get install postgresql-15-auto-failover failed"
  command -v pg_autoctl >/dev/null || die "pg_autoctl still not found after installing it"
}

prepare_dir() {
  ensure_state_dir
  mkdir -p "$XDG/config" "$XDG/share" "$XDG/run"
  (($(id -u) == 0)) || return 0
  local user
  user="$(os_user)"
  chown -R "$user" "$PG_DIR"
  runuser -u "$user" -- test -w "$PG_DIR" \
    || die "user '$user' cannot reach $PG_DIR (a parent folder is private); set SLUICE_STATE_DIR to a path it can traverse"
}

created() { [[ -f "$(pgdata_of "$1")/PG_VERSION" ]] && [[ -d "$XDG/config/pg_autoctl$(pgdata_of "$1")" ]]; }

create_monitor() {
  created monitor && return 0
  log "creating the monitor on $HOST:$PORT"
  rm -rf "$(pgdata_of monitor)"
  autoctl create monitor --pgdata "$(pgdata_of monitor)" --pgport "$PORT" --hostname "$HOST" \
    --auth trust --no-ssl --pgctl "$PG_BIN/pg_ctl" >>"$(log_of monitor)" 2>&1 \
    || die "creating the monitor failed (log: $(log_of monitor))"
  autoctl config set --pgdata "$(pgdata_of monitor)" postgresql.listen_addresses "$HOST" >/dev/null
}

# Trust is safe only because every server listens on 127.0.0.1 (as in scripts/pg.sh).
create_node() {
  local id="$1"
  created "$id" && return 0
  log "creating node $id on $HOST:$(port_of "$id")"
  rm -rf "$(pgdata_of "$id")"
  autoctl create postgres --pgdata "$(pgdata_of "$id")" --pgport "$(port_of "$id")" \
    --listen "$HOST" --hostname "$HOST" --name "node$id" --dbname "$DB" --auth trust --no-ssl \
    --pgctl "$PG_BIN/pg_ctl" --monitor "$MONITOR_URI" >>"$(log_of "$id")" 2>&1 \
    || die "creating node $id failed (log: $(log_of "$id"))"
  autoctl config set --pgdata "$(pgdata_of "$id")" timeout.network_partition_timeout 3 >/dev/null
}

# The monitor's failure detection (see the header); ALTER SYSTEM survives restarts.
tune_monitor() {
  local setting
  for setting in health_check_period=1000 health_check_timeout=1000 health_check_retry_delay=500 \
    health_check_max_retries=1 node_considered_unhealthy_timeout=3000 primary_demote_timeout=5000; do
    monitor_sql "ALTER SYSTEM SET pgautofailover.${setting%%=*} = ${setting#*=}" >/dev/null
  done
  monitor_sql "SELECT pg_reload_conf()" >/dev/null
}

# ---------------------------------------------------------------- keepers

keeper_pid() { pid_of "$(pidfile_of "$1")" "$(marker_of "$1")"; }

launch() {
  local what="$1" cmd
  keeper_pid "$what" >/dev/null && return 0
  log "running the keeper of $what"
  cmd=(env "XDG_CONFIG_HOME=$XDG/config" "XDG_DATA_HOME=$XDG/share" "XDG_RUNTIME_DIR=$XDG/run"
    "PATH=$PG_BIN:$PATH" pg_autoctl run --pgdata "$(pgdata_of "$what")")
  (($(id -u) == 0)) && cmd=(runuser -u "$(os_user)" -- "${cmd[@]}")
  touch "$(log_of "$what")"
  (cd "$PG_DIR" && start_bg "$(pidfile_of "$what")" "$(log_of "$what")" "${cmd[@]}")
}

monitor_answers() {
  require_alive "$(pidfile_of monitor)" "$(marker_of monitor)" "$(log_of monitor)"
  monitor_sql "SELECT 1" >/dev/null 2>&1
}

# "id:reported:assigned" per node, e.g. "1:primary:primary 2:secondary:secondary".
node_states() {
  monitor_sql "SELECT string_agg(nodeid || ':' || reportedstate || ':' || goalstate, ' ' ORDER BY nodeid)
    FROM pgautofailover.node" 2>/dev/null
}

# Both nodes reported their state since SINCE (the monitor keeps the last report of a stopped
# keeper, so a fresh start must not trust what it remembers).
SINCE=-infinity
in_sync() {
  local states
  states="$(monitor_sql "SELECT string_agg(reportedstate::text, ' ' ORDER BY reportedstate)
    FROM pgautofailover.node WHERE reportedstate = goalstate AND reporttime > '$SINCE'")" 2>/dev/null || return 1
  [[ "$states" == "primary secondary" ]]
}

# Node 2 is created by copying node 1 (pg_basebackup), so node 1 must serve first.
node_serves() {
  require_alive "$(pidfile_of "$1")" "$(marker_of "$1")" "$(log_of "$1")"
  [[ " $(node_states) " =~ \ $1:(single|primary|wait_primary|secondary):(single|primary|wait_primary|secondary)\  ]]
}

cmd_start() {
  SINCE="$(date -u "+%F %T.%6N+00")"
  cmd_install
  [[ -x "$PG_BIN/pg_ctl" ]] || die "PostgreSQL binaries not found in $PG_BIN (set SLUICE_PG_BIN)"
  prepare_dir
  on_failure cmd_kill_all
  create_monitor
  launch monitor
  wait_until "$TIMEOUT" "the pg_auto_failover monitor on $HOST:$PORT" monitor_answers
  tune_monitor
  local id
  # Existing nodes start together (either may be the primary now); a new node is created only
  # once the ones before it serve.
  for id in "${NODES[@]}"; do created "$id" && launch "$id"; done
  for id in "${NODES[@]}"; do
    created "$id" && continue
    create_node "$id"
    launch "$id"
    wait_until "$TIMEOUT" "node $id to serve" node_serves "$id"
  done
  wait_until "$TIMEOUT" "a primary with its synchronous secondary" in_sync
  trap - EXIT
  log "ready: $(cmd_dsn) ($(node_states))"
}

cmd_start_node() {
  SINCE="$(date -u "+%F %T.%6N+00")"
  launch "$1"
  wait_until "$TIMEOUT" "node $1 back in sync" in_sync
  log "node $1 back: $(node_states)"
}

# PostgreSQL puts its postmaster and every backend in a session of its own (setsid), so killing
# the keeper's process group leaves them; they go by pid, from the data folder's postmaster.pid.
# (Backends exit by themselves once the postmaster is gone, except the monitor's health-check
# worker, which would keep the shared memory and block the next start.)
cmd_kill_node() {
  local pgdata postmaster pids=()
  pgdata="$(pgdata_of "$1")"
  postmaster="$(head -n1 "$pgdata/postmaster.pid" 2>/dev/null)" || postmaster=""
  if is_uint "$postmaster" && { tr '\0' ' ' <"/proc/$postmaster/cmdline"; } 2>/dev/null | grep -qF -- "-D $pgdata"; then
    mapfile -t pids < <(ps -o pid= --ppid "$postmaster")
    pids+=("$postmaster")
  fi
  kill_pid "$(pidfile_of "$1")" "$(marker_of "$1")"
  ((${#pids[@]} == 0)) && return 0
  kill -KILL "${pids[@]}" 2>/dev/null || true
  local pid
  for pid in "${pids[@]}"; do wait_until 10 "pid $pid to exit after SIGKILL" proc_gone "$pid"; done
}

cmd_kill_all() {
  local what
  for what in "${NODES[@]}" monitor; do cmd_kill_node "$what"; done
}

cmd_stop() {
  local what
  for what in "${NODES[@]}" monitor; do stop_pid "$(pidfile_of "$what")" "$(marker_of "$what")" "$TIMEOUT"; done
}

cmd_status() {
  if in_sync; then
    echo "in sync: $(node_states)"
  else
    echo "not in sync: $(node_states || echo 'monitor not answering')"
    return "$EXIT_NOT_RUNNING"
  fi
}

cmd_primary() {
  local primary
  primary="$(monitor_sql "SELECT nodeid FROM pgautofailover.node
    WHERE reportedstate IN ('primary', 'wait_primary', 'single') AND goalstate = reportedstate")"
  [[ -n "$primary" ]] || { echo "no primary now" >&2; return "$EXIT_NOT_RUNNING"; }
  echo "$primary"
}

cmd_dsn() {
  echo "postgresql://postgres@$HOST:$(port_of 1),$HOST:$(port_of 2)/$DB?target_session_attrs=read-write"
}

cmd_reset() {
  cmd_stop
  rm -rf "$PG_DIR"
  log "deleted $PG_DIR"
}

# ---------------------------------------------------------------- CLI

valid_node() {
  [[ "${1:-}" == 1 || "${1:-}" == 2 ]] || usage_error "node must be 1 or 2"
}

main() {
  local command="${1:-}"
  [[ "$DB" =~ ^[a-z_][a-z0-9_]*$ ]] || usage_error "SLUICE_PG_DB must be a plain lower-case name, got '$DB'"
  is_uint "$PORT" || usage_error "SLUICE_PGHA_PORT must be a number"
  case "$command" in
    install) cmd_install ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    reset) cmd_reset ;;
    dsn) cmd_dsn ;;
    state) autoctl show state --pgdata "$(pgdata_of monitor)" ;;
    primary) cmd_primary ;;
    kill-node) valid_node "${2:-}"; cmd_kill_node "$2" ;;
    start-node) valid_node "${2:-}"; cmd_start_node "$2" ;;
    *) usage_error "command must be one of: install start stop status reset dsn state primary kill-node start-node" ;;
  esac
}

main "$@"
