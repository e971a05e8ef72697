#!/usr/bin/env bash
# The browser of the UI tests (tests/ui/) and the benchmark's UI phase: Debian's `chromium`,
# driven by Playwright from PyPI (Playwright's own browser download is not used).
#
# usage: scripts/browser.sh install   install chromium with apt-get when missing (needs root)
#        scripts/browser.sh path      print the executable's path
#
# Environment: SLUICE_CHROMIUM (default /usr/bin/chromium)
set -euo pipefail
SLUICE_SCRIPT=browser
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

readonly CHROMIUM="${SLUICE_CHROMIUM:-/usr/bin/chromium}"
# Two installs at once (two test sessions) must not fight over dpkg's lock.
readonly LOCK=/tmp/sluice-browser-install.lock

installed() { "$CHROMIUM" --version >/dev/null 2>&1; }

cmd_install() {
  installed && return 0
  [[ "$(id -u)" == 0 ]] || die "$CHROMIUM is missing; install it as root: apt-get install chromium"
  exec 9>"$LOCK"
  flock -w 900 9 || die "timed out waiting for another chromium install"
  if ! installed; then
    log "installing chromium with apt-get (takes a minute)"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      chromium fonts-liberation >/dev/null || die "apt-get install chromium failed"
  fi
  exec 9>&-
  installed || die "$CHROMIUM does not run after the install"
  log "$("$CHROMIUM" --version)"
}

main() {
  (($# == 1)) || usage_error "expected a command: install path"
  case "$1" in
    install) cmd_install ;;
    path) echo "$CHROMIUM" ;;
    *) usage_error "expected a command: install path" ;;
  esac
}

main "$@"
