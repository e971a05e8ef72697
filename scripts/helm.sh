#!/usr/bin/env bash
# The real `helm` for the chart checks, built once from the Go module through the installed Go
# toolchain (no prebuilt binary is downloaded) and cached under $SLUICE_STATE/tools.
#
# usage: scripts/helm.sh [ARGS...]
#   no arguments   build if missing, print the binary's path
#   ARGS           build if missing, then run `helm ARGS`
#
# Environment: SLUICE_HELM_VERSION (default below)  SLUICE_STATE_DIR  GO (default: go on PATH,
#   else /usr/local/go/bin/go)
set -euo pipefail
SLUICE_SCRIPT=helm
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

readonly VERSION="${SLUICE_HELM_VERSION:-v4.3.2}"
readonly TOOL_DIR="$SLUICE_STATE/tools/helm-$VERSION"
readonly HELM="$TOOL_DIR/helm"

find_go() {
  if [[ -n "${GO:-}" ]]; then echo "$GO"; return 0; fi
  command -v go 2>/dev/null && return 0
  [[ -x /usr/local/go/bin/go ]] && { echo /usr/local/go/bin/go; return 0; }
  die "no Go toolchain found (set GO=/path/to/go); it is needed once to build helm $VERSION"
}

# A few minutes on 2 cores the first time; afterwards the cached binary is reused.
build() {
  local go tmp
  go="$(find_go)"
  ensure_state_dir
  mkdir -p "$TOOL_DIR"
  tmp="$(mktemp -d "$TOOL_DIR/build.XXXXXX")"
  log "building helm $VERSION with $("$go" version) (once; cached in $TOOL_DIR)"
  if ! CGO_ENABLED=0 GOBIN="$tmp" GOFLAGS=-trimpath "$go" install \
    "helm.sh/helm/v4/cmd/helm@$VERSION" >"$TOOL_DIR/build.log" 2>&1; then
    rm -rf "$tmp"
    tail -n 30 "$TOOL_DIR/build.log" >&2
    die "building helm failed (full output: $TOOL_DIR/build.log)"
  fi
  # Swapped in whole: an interrupted build never leaves a half-written binary behind.
  mv "$tmp/helm" "$HELM"
  rm -rf "$tmp"
}

main() {
  [[ -x "$HELM" ]] || build
  if (($# == 0)); then
    echo "$HELM"
  else
    exec "$HELM" "$@"
  fi
}

main "$@"
