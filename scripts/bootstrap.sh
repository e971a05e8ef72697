#!/usr/bin/env bash
# Create the project venv and install Sluice editable with its dev extras.
#
# usage: scripts/bootstrap.sh [--force]
# Installs only when pyproject.toml changed since the last successful install (its hash
# is stamped inside the venv), so calling this before every test run costs nothing.
# --force reinstalls anyway. Prints the venv path on stdout.
#
# Environment: SLUICE_VENV (default <repo>/.venv)  SLUICE_PYTHON (default python3)
set -euo pipefail
SLUICE_SCRIPT=bootstrap
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

readonly PYPROJECT="$SLUICE_ROOT/pyproject.toml"
readonly STAMP="$SLUICE_VENV/.sluice-pyproject.sha256"
readonly PYTHON="${SLUICE_PYTHON:-python3}"

# A venv whose interpreter is gone (deleted, or built by a Python since removed) is
# rebuilt from scratch rather than patched.
ensure_venv() {
  "$SLUICE_VENV/bin/python" -c '' 2>/dev/null && return 0
  log "creating venv $SLUICE_VENV with $($PYTHON --version 2>&1)"
  rm -rf "$SLUICE_VENV"
  "$PYTHON" -m venv "$SLUICE_VENV" || die "'$PYTHON -m venv' failed (on Debian: apt-get install python3-venv)"
}

install_project() {
  log "installing ${SLUICE_ROOT}[dev] (editable) into $SLUICE_VENV"
  # The stamp goes first: a failed install must not look like a finished one.
  rm -f "$STAMP"
  "$SLUICE_VENV/bin/python" -m pip install --disable-pip-version-check -q -e "${SLUICE_ROOT}[dev]" \
    || die "pip install failed; fix pyproject.toml or the network and run again"
}

main() {
  local force=0
  case "${1:-}" in
    "") ;;
    --force) force=1 ;;
    *) usage_error "usage: scripts/bootstrap.sh [--force]" ;;
  esac
  [[ -f "$PYPROJECT" ]] || die "$PYPROJECT not found"
  ensure_venv
  local want
  want="$(file_hash "$PYPROJECT")"
  if ((force)) || [[ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]]; then
    install_project
    echo "$want" >"$STAMP"
  else
    log "venv up to date with pyproject.toml"
  fi
  echo "$SLUICE_VENV"
}

main "$@"
