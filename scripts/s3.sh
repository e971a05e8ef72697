#!/usr/bin/env bash
# Local S3-compatible endpoint for tests: moto in server mode, from the project venv.
#
# usage: scripts/s3.sh COMMAND
#   start      start moto_server in the background and wait until it answers HTTP
#   stop       SIGTERM (SIGKILL after a deadline)
#   status     exit 0 when it answers, 3 otherwise
#   endpoint   print the endpoint URL
#
# Environment: SLUICE_S3_PORT=9000  SLUICE_S3_START_TIMEOUT=30
#   SLUICE_VENV (default <repo>/.venv; moto[server] comes with the dev extras)  SLUICE_STATE_DIR
set -euo pipefail
SLUICE_SCRIPT=s3
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

readonly HOST=127.0.0.1
readonly PORT="${SLUICE_S3_PORT:-9000}"
readonly START_TIMEOUT="${SLUICE_S3_START_TIMEOUT:-30}"
readonly S3_DIR="$SLUICE_STATE/s3-$PORT"
readonly PIDFILE="$S3_DIR/moto.pid"
readonly S3_LOG="$S3_DIR/moto.log"
readonly MOTO="$SLUICE_VENV/bin/moto_server"
# Part of its command line (python .../moto_server -H ... -p ...): a moto serving
# another port is not mistaken for ours.
readonly MARKER="moto_server -H $HOST -p $PORT"

cmd_endpoint() { echo "http://$HOST:$PORT"; }

# Any HTTP answer counts: moto replies to GET / with a bucket listing once it serves.
answers_http() {
  python3 - "$(cmd_endpoint)/" <<'EOF' 2>/dev/null
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(sys.argv[1], timeout=1)
except urllib.error.HTTPError:
    pass
EOF
}

ready() {
  require_alive "$PIDFILE" "$MARKER" "$S3_LOG"
  answers_http
}

cmd_start() {
  if ! pid_of "$PIDFILE" "$MARKER" >/dev/null; then
    [[ -x "$MOTO" ]] || die "$MOTO not found: run scripts/bootstrap.sh (moto[server] is a dev dependency) or set SLUICE_VENV"
    ensure_state_dir
    mkdir -p "$S3_DIR"
    require_free_port "$HOST" "$PORT"
    log "starting moto on $HOST:$PORT"
    on_failure cmd_stop
    start_bg "$PIDFILE" "$S3_LOG" "$MOTO" -H "$HOST" -p "$PORT"
  fi
  wait_until "$START_TIMEOUT" "moto to answer on $(cmd_endpoint)" ready
  log "ready: $(cmd_endpoint)"
}

cmd_status() {
  local pid
  if pid="$(pid_of "$PIDFILE" "$MARKER")" && answers_http; then
    echo "running pid $pid, $(cmd_endpoint)"
  else
    echo "stopped"
    return "$EXIT_NOT_RUNNING"
  fi
}

cmd_stop() { stop_pid "$PIDFILE" "$MARKER" 10; }

main() {
  (($# == 1)) || usage_error "expected one command: start stop status endpoint"
  is_uint "$PORT" || usage_error "SLUICE_S3_PORT must be a number"
  case "$1" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    endpoint) cmd_endpoint ;;
    *) usage_error "expected one command: start stop status endpoint" ;;
  esac
}

main "$@"
