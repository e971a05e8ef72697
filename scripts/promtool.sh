#!/usr/bin/env bash
# Prometheus' promtool, for checking and unit-testing the shipped alert rules.
#
# usage: scripts/promtool.sh ensure     install Debian's `prometheus` package if promtool is missing
#        scripts/promtool.sh check      promtool check rules + promtool test rules on deploy/monitoring
#
# Installing needs root (apt-get); the package's service is not started (no init runs here, and
# policy-rc.d is honoured where one does). Prints nothing on success except promtool's own output.
set -euo pipefail
SLUICE_SCRIPT=promtool
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

readonly RULES="$SLUICE_ROOT/deploy/monitoring/prometheus/alerts.yml"
readonly TESTS="$SLUICE_ROOT/deploy/monitoring/prometheus/alerts_test.yml"

cmd_ensure() {
  command -v promtool >/dev/null && return 0
  (($(id -u) == 0)) || die "promtool is missing; as root run: apt-get install prometheus"
  log "installing Debian's prometheus package (for promtool)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends prometheus >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends prometheus >/dev/null; } \
    || die "apt-get install prometheus failed"
  command -v promtool >/dev/null || die "the prometheus package did not provide promtool"
}

cmd_check() {
  cmd_ensure
  promtool check rules "$RULES"
  promtool test rules "$TESTS"
}

case "${1:-}" in
  ensure) cmd_ensure ;;
  check) cmd_check ;;
  *) usage_error "expected one command: ensure check" ;;
esac
