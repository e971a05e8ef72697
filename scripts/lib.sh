# shellcheck shell=bash
# Shared helpers for the scripts in this folder. Source it; do not run it.
#
# Every service script keeps its files (pid, log, data) under $SLUICE_STATE, so one
# `rm -rf .state` after stopping everything returns the checkout to a clean slate.
# Exit codes used by all scripts: 0 ok, 1 failure, 2 usage error, 3 "not running" (status).

SLUICE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Absolute, because some commands run from another working directory.
SLUICE_STATE="$(realpath -m "${SLUICE_STATE_DIR:-$SLUICE_ROOT/.state}")"
SLUICE_VENV="$(realpath -m "${SLUICE_VENV:-$SLUICE_ROOT/.venv}")"
# shellcheck disable=SC2034  # EXIT_NOT_RUNNING is used by the scripts that source this
readonly EXIT_USAGE=2 EXIT_NOT_RUNNING=3

log() { printf '[%s %s] %s\n' "$(date +%H:%M:%S)" "${SLUICE_SCRIPT:-sluice}" "$*" >&2; }

die() {
  log "ERROR: $*"
  exit 1
}

usage_error() {
  log "usage error: $*"
  exit "$EXIT_USAGE"
}

# The state dir lives inside the checkout; its own .gitignore keeps it out of
# `git status` without anyone having to edit the repository's ignore file.
ensure_state_dir() {
  mkdir -p "$SLUICE_STATE"
  [[ -f "$SLUICE_STATE/.gitignore" ]] || printf '*\n' >"$SLUICE_STATE/.gitignore"
}

# Content only (sha256sum prints the path too): checkouts with the same file share one stamp.
file_hash() { cat -- "$@" | sha256sum | cut -d' ' -f1; }

is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# wait_until SECONDS DESCRIPTION CMD... : poll CMD every 0.2s until it succeeds.
# A check that knows the wait is hopeless (its process died) should `die` itself
# rather than let us sit out the whole deadline.
wait_until() {
  local seconds="$1" what="$2"
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@"; do
    ((SECONDS < deadline)) || die "timed out after ${seconds}s waiting for $what"
    sleep 0.2
  done
}

wait_for_port() { wait_until "$3" "$1:$2 to accept connections" port_open "$1" "$2"; }

# Refuse to start when someone else already holds the port: the readiness probe
# would otherwise happily talk to the stranger and report success.
require_free_port() {
  if port_open "$1" "$2"; then
    die "port $1:$2 is already in use by another process (set a different port)"
  fi
}

# pid_of PIDFILE MARKER: print the pid if that process is alive and its command line
# contains MARKER; a stale pid file whose number was reused by another process is removed.
pid_of() {
  local pidfile="$1" marker="$2" pid
  [[ -f "$pidfile" ]] || return 1
  pid="$(<"$pidfile")"
  # The process may vanish between the test and the read: silence that race.
  if is_uint "$pid" && { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -qF -- "$marker"; then
    echo "$pid"
    return 0
  fi
  rm -f "$pidfile"
  return 1
}

# start_bg PIDFILE LOGFILE CMD...: run CMD detached in its own session (setsid), so
# a Ctrl-C in the caller's terminal or the end of the calling job does not take the
# service down with it. In a script without job control the background child is not
# a process-group leader, so setsid execs in place and $! is the service's own pid.
start_bg() {
  local pidfile="$1" logfile="$2"
  shift 2
  printf '\n===== %s start: %s\n' "$(date -Is)" "$*" >>"$logfile"
  setsid nohup "$@" >>"$logfile" 2>&1 </dev/null &
  local pid="$!" i
  echo "$pid" >"$pidfile"
  # Not a job of ours any more: no "Killed" notices when a fault test SIGKILLs it.
  disown "$pid"
  # Until the fork execs, /proc/<pid>/cmdline still shows this shell, and pid_of would
  # take the fresh pid file for a stale one. Wait (bounded) for the exec.
  for ((i = 0; i < 50; i++)); do
    { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -qF -- "$1" && break
    sleep 0.1
  done
}

# The process group goes too, so helpers a service forked cannot outlive it.
signal_group() { kill "-$1" -- "-$2" 2>/dev/null || kill "-$1" "$2" 2>/dev/null || true; }

proc_gone() { [[ ! -d "/proc/$1" ]] || [[ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" == Z ]]; }

# stop_pid PIDFILE MARKER SECONDS: SIGTERM, wait up to SECONDS, then SIGKILL.
stop_pid() {
  local pidfile="$1" marker="$2" seconds="$3" pid
  pid="$(pid_of "$pidfile" "$marker")" || return 0
  signal_group TERM "$pid"
  local deadline=$((SECONDS + seconds))
  while ! proc_gone "$pid" && ((SECONDS < deadline)); do sleep 0.2; done
  if ! proc_gone "$pid"; then
    log "pid $pid still alive after ${seconds}s of SIGTERM; sending SIGKILL"
    signal_group KILL "$pid"
    wait_until 10 "pid $pid to exit after SIGKILL" proc_gone "$pid"
  fi
  rm -f "$pidfile"
}

# kill_pid PIDFILE MARKER: SIGKILL at once (fault injection), and wait until it is gone.
kill_pid() {
  local pidfile="$1" marker="$2" pid
  pid="$(pid_of "$pidfile" "$marker")" || return 0
  signal_group KILL "$pid"
  wait_until 10 "pid $pid to exit after SIGKILL" proc_gone "$pid"
  rm -f "$pidfile"
}

# on_failure FUNC: if the script exits non-zero from here on, call FUNC first, so a
# start that never became ready does not leave a half-started service behind.
on_failure() {
  # shellcheck disable=SC2064  # the function name is fixed now, on purpose
  trap "_run_on_failure $1" EXIT
}

_run_on_failure() {
  local rc=$?
  ((rc == 0)) && return 0
  log "cleaning up after the failure"
  "$1" || true
  exit "$rc"
}

# Log files are appended to across restarts; start_bg marks each run with "===== ".
last_run_output() { awk '/^===== /{n=0} {line[n++]=$0} END{for(i=0;i<n;i++) print line[i]}' "$1" 2>/dev/null || true; }

# Called by readiness checks: a service that already exited will never become ready.
require_alive() {
  local pidfile="$1" marker="$2" logfile="$3"
  pid_of "$pidfile" "$marker" >/dev/null && return 0
  log "process exited during startup; its output ($logfile):"
  last_run_output "$logfile" | tail -n 40 >&2
  die "startup failed (full log: $logfile)"
}

# ---------------------------------------------------------------- PostgreSQL cluster owner
# (scripts/pg.sh and scripts/pgha.sh; $PG_DIR is the calling script's cluster folder)

# initdb and postgres refuse to run as root, so as root everything that touches the
# data directory runs as an unprivileged account that owns $PG_DIR.
os_user() {
  local user="${SLUICE_PG_OS_USER:-postgres}"
  if ! id -u "$user" >/dev/null 2>&1; then
    log "creating system user '$user' to own the PostgreSQL cluster"
    useradd --system --no-create-home --shell /usr/sbin/nologin "$user" \
      || die "could not create user '$user' (set SLUICE_PG_OS_USER to an existing unprivileged user)"
  fi
  echo "$user"
}

as_owner() {
  if (($(id -u) == 0)); then
    # cd first: the caller's cwd may be unreadable for the owner, and postgres complains
    (cd "$PG_DIR" && runuser -u "$(os_user)" -- "$@")
  else
    "$@"
  fi
}
