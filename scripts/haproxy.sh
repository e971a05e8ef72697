#!/usr/bin/env bash
# HAProxy, the shipped balancer (deploy/haproxy/haproxy.cfg), from Debian's package.
#
# usage: scripts/haproxy.sh [ensure]
#   ensure (default)   install the `haproxy` package with apt-get if the binary is missing,
#                      then print its path (tests run it in the foreground themselves)
#
# Installing needs root (as on CI and the dev machines); nothing is started here, and the
# package's own service is not used.
set -euo pipefail
SLUICE_SCRIPT=haproxy
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

find_haproxy() { command -v haproxy 2>/dev/null || { [[ -x /usr/sbin/haproxy ]] && echo /usr/sbin/haproxy; }; }

install() {
  command -v apt-get >/dev/null || die "haproxy is missing and apt-get is not available: install HAProxy >= 2.6"
  log "installing Debian's haproxy package (once)"
  export DEBIAN_FRONTEND=noninteractive
  # Other sessions may hold the dpkg lock for a while: wait for it instead of failing.
  apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends haproxy >/dev/null 2>&1 \
    || { apt-get -o DPkg::Lock::Timeout=300 update -q >/dev/null 2>&1 \
      && apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends haproxy >/dev/null; } \
    || die "apt-get install haproxy failed"
}

main() {
  case "${1:-ensure}" in
    ensure) ;;
    *) usage_error "usage: scripts/haproxy.sh [ensure]" ;;
  esac
  find_haproxy >/dev/null || install
  find_haproxy || die "haproxy still not found after installing it"
}

main "$@"
