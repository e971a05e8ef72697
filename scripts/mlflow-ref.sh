#!/usr/bin/env bash
# Reference `mlflow server` (the real thing, SQLite backend) for the differential tests in
# tests/compat/. The full `mlflow` package lives in its own virtualenv, never in the services' one.
#
# usage: scripts/mlflow-ref.sh COMMAND [DATA_DIR]
#   install          create the reference venv with mlflow==$MLFLOW_VERSION (only when missing)
#   start [DATA_DIR] install if needed, start the server on DATA_DIR (default .state/mlflow-ref/default)
#                    and wait until GET /health answers; a server already running on the same
#                    DATA_DIR is left alone, one on another DATA_DIR is restarted
#   stop             SIGTERM (SIGKILL after a deadline)
#   status           exit 0 when it answers, 3 otherwise
#   reset            stop; delete .state/mlflow-ref and the data dir the server last used
#   url              print the base URL
#
# DATA_DIR holds mlflow.db and artifacts/; the test session passes a fresh folder per session, so
# each session starts from an empty database (only experiment 0 "Default").
#
# SLUICE_MLFLOW_REF_BACKEND_URI serves another backend store instead of DATA_DIR/mlflow.db, e.g.
# postgresql://user@host:port/db (tests/transfer: MLflow filling a PostgreSQL database).
#
# Environment: SLUICE_MLFLOW_REF_PORT=5010  SLUICE_MLFLOW_REF_START_TIMEOUT=120
#   SLUICE_MLFLOW_REF_BACKEND_URI (default sqlite:///DATA_DIR/mlflow.db; a postgresql:// URI makes
#   the PostgreSQL-backed reference of tests/compat, SLUICE_COMPAT_REFERENCE=postgresql)
#   SLUICE_MLFLOW_REF_VENV (default $SLUICE_STATE_DIR/mlflow-ref-venv)  SLUICE_PYTHON (default python3)
#   SLUICE_STATE_DIR (see lib.sh)
set -euo pipefail
SLUICE_SCRIPT=mlflow-ref
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

readonly MLFLOW_VERSION=3.17.2
# MLflow's PostgreSQL backend needs a driver the mlflow package does not pull in.
readonly PG_DRIVER=psycopg2-binary==2.9.13
readonly HOST=127.0.0.1
readonly PORT="${SLUICE_MLFLOW_REF_PORT:-5010}"
readonly START_TIMEOUT="${SLUICE_MLFLOW_REF_START_TIMEOUT:-120}"
readonly PYTHON="${SLUICE_PYTHON:-python3}"
REF_VENV="$(realpath -m "${SLUICE_MLFLOW_REF_VENV:-$SLUICE_STATE/mlflow-ref-venv}")"
readonly REF_VENV
readonly STAMP="$REF_VENV/.sluice-mlflow-version"
# Two starts at once (two test sessions, or two ports) must not build the venv twice.
readonly INSTALL_LOCK="$SLUICE_STATE/mlflow-ref-venv.lock"
readonly DATA_ROOT="$SLUICE_STATE/mlflow-ref"
readonly RUN_DIR="$SLUICE_STATE/mlflow-ref-$PORT"
readonly PIDFILE="$RUN_DIR/mlflow.pid"
readonly REF_LOG="$RUN_DIR/mlflow.log"
# Which DATA_DIR the running server uses, so `start` can tell "same session" from "another one".
readonly DATA_FILE="$RUN_DIR/data-dir"
# Part of the server's command line: an mlflow serving another port is not mistaken for ours.
readonly MARKER="--host $HOST --port $PORT"

cmd_url() { echo "http://$HOST:$PORT"; }

# ---------------------------------------------------------------- venv

# Not `mlflow --version`: it takes seconds to import. A venv whose interpreter is gone is rebuilt.
venv_ready() { [[ "$(cat "$STAMP" 2>/dev/null)" == "$MLFLOW_VERSION" ]] && "$REF_VENV/bin/python" -c '' 2>/dev/null; }

# Added to venvs built before the PostgreSQL driver was part of the install.
pg_driver_ready() { "$REF_VENV/bin/python" -c 'import psycopg2' 2>/dev/null; }

ensure_pg_driver() {
  pg_driver_ready && return 0
  ensure_state_dir
  exec 9>"$INSTALL_LOCK"
  flock -w 900 9 || die "timed out waiting for another install into $REF_VENV"
  if ! pg_driver_ready; then
    log "installing $PG_DRIVER into $REF_VENV"
    "$REF_VENV/bin/python" -m pip install --disable-pip-version-check -q "$PG_DRIVER" \
      || die "pip install $PG_DRIVER failed"
  fi
  exec 9>&-
}

cmd_install() {
  venv_ready && { ensure_pg_driver; return 0; }
  ensure_state_dir
  exec 9>"$INSTALL_LOCK"
  flock -w 900 9 || die "timed out waiting for another install of $REF_VENV"
  if venv_ready; then
    exec 9>&-
    return 0
  fi
  log "creating $REF_VENV with mlflow==$MLFLOW_VERSION (takes a few minutes)"
  rm -rf "$REF_VENV"
  "$PYTHON" -m venv "$REF_VENV" || die "'$PYTHON -m venv' failed (on Debian: apt-get install python3-venv)"
  # The stamp is written last: an interrupted install must not look like a finished one.
  "$REF_VENV/bin/python" -m pip install --disable-pip-version-check -q "mlflow==$MLFLOW_VERSION" \
    "$PG_DRIVER" || die "pip install mlflow==$MLFLOW_VERSION failed"
  echo "$MLFLOW_VERSION" >"$STAMP"
  exec 9>&-
  log "installed mlflow==$MLFLOW_VERSION"
}

# ---------------------------------------------------------------- server

answers_health() {
  "$PYTHON" - "$(cmd_url)/health" <<'EOF' 2>/dev/null
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=1) as r:
    sys.exit(0 if r.status == 200 and r.read().strip() == b"OK" else 1)
EOF
}

ready() {
  require_alive "$PIDFILE" "$MARKER" "$REF_LOG"
  answers_health
}

# Right after the fork, and until setsid/nohup/env exec the server, /proc/<pid>/cmdline still
# shows this script, and lib.sh's pid_of would take the pid for a stale one and delete the pid
# file. So wait for the exec before the first readiness check.
exec_done() {
  local pid
  pid="$(cat "$PIDFILE")"
  [[ -d "/proc/$pid" ]] || return 0 # exited: require_alive reports it with the log
  { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -qF -- "$MARKER"
}

# Flags checked against `mlflow server --help` of 3.17.2. Artifacts are proxied (the default,
# `--serve-artifacts`), so experiments get `mlflow-artifacts:/<id>` like the reference deployment
# of docs/mlflow-api.md. The security middleware stays on: its default (localhost + private IPs)
# admits our 127.0.0.1 Host header. Job execution (a runner plus seven huey consumers, ~2 GB of
# RSS) serves only the 3.x jobs API, which no case uses; telemetry would phone home. The AI
# gateway is off as in Sluice, which answers its routes NOT_IMPLEMENTED (api/not_supported.py):
# server-info and the gateway routes then compare like for like.
launch() {
  local data="$1"
  mkdir -p "$data/artifacts"
  start_bg "$PIDFILE" "$REF_LOG" env MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false \
    MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=true MLFLOW_ENABLE_AI_GATEWAY=false \
    "$REF_VENV/bin/mlflow" server \
    --backend-store-uri "${SLUICE_MLFLOW_REF_BACKEND_URI:-sqlite:///$data/mlflow.db}" \
    --default-artifact-root mlflow-artifacts:/ \
    --serve-artifacts \
    --artifacts-destination "$data/artifacts" \
    --host "$HOST" --port "$PORT" --workers 1
  echo "$data" >"$DATA_FILE"
}

cmd_start() {
  local data
  data="$(realpath -m "${1:-$DATA_ROOT/default}")"
  if pid_of "$PIDFILE" "$MARKER" >/dev/null; then
    if [[ "$(cat "$DATA_FILE" 2>/dev/null)" == "$data" ]]; then
      wait_until "$START_TIMEOUT" "mlflow to answer on $(cmd_url)/health" ready
      log "already running: $(cmd_url) on $data"
      return 0
    fi
    log "running on another data dir; restarting on $data"
    cmd_stop
  fi
  cmd_install
  mkdir -p "$RUN_DIR"
  require_free_port "$HOST" "$PORT"
  log "starting mlflow $MLFLOW_VERSION on $HOST:$PORT, data $data"
  on_failure cmd_stop
  launch "$data"
  wait_until 10 "the server process to exec" exec_done
  wait_until "$START_TIMEOUT" "mlflow to answer on $(cmd_url)/health" ready
  log "ready: $(cmd_url)"
}

cmd_status() {
  local pid
  if pid="$(pid_of "$PIDFILE" "$MARKER")" && answers_health; then
    echo "running pid $pid, $(cmd_url), data $(cat "$DATA_FILE" 2>/dev/null)"
  else
    echo "stopped"
    return "$EXIT_NOT_RUNNING"
  fi
}

cmd_stop() { stop_pid "$PIDFILE" "$MARKER" 15; }

# The test sessions keep their folders elsewhere (tmpfs); the last one used is in DATA_FILE.
cmd_reset() {
  cmd_stop
  local last
  last="$(cat "$DATA_FILE" 2>/dev/null || true)"
  # Only a folder that really is a reference data dir: never whatever the file says.
  [[ -n "$last" && -f "$last/mlflow.db" ]] || last=""
  rm -rf "$DATA_ROOT" "$DATA_FILE" ${last:+"$last"}
  log "deleted $DATA_ROOT${last:+ and $last}"
}

main() {
  (($# >= 1 && $# <= 2)) || usage_error "expected a command: install start stop status reset url"
  is_uint "$PORT" || usage_error "SLUICE_MLFLOW_REF_PORT must be a number"
  [[ "$1" == start ]] || (($# == 1)) || usage_error "only 'start' takes a DATA_DIR"
  case "$1" in
    install) cmd_install ;;
    start) cmd_start "${2:-}" ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    reset) cmd_reset ;;
    url) cmd_url ;;
    *) usage_error "expected a command: install start stop status reset url" ;;
  esac
}

main "$@"
