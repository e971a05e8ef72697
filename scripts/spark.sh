#!/usr/bin/env bash
# Spark's Kafka connector for the Spark tests (tests/spark/): pyspark comes from PyPI (the dev
# extras), but `df.write.format("kafka")` needs jars the wheel does not ship.
#
# usage: scripts/spark.sh COMMAND
#   fetch    copy the jars listed in scripts/spark/pom.xml to .state/spark/jars (once; again
#            only when the pom changes) and print their paths, comma-separated (spark.jars)
#   jars     print the paths without fetching (exit 3 when not fetched)
#
# Environment: SLUICE_STATE_DIR (see lib.sh)
set -euo pipefail
SLUICE_SCRIPT=spark
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

readonly CONF_DIR="$SLUICE_ROOT/scripts/spark"
readonly JARS="$SLUICE_STATE/spark/jars"

# Hash of the pom's content only (not its path), so every checkout with the same pom agrees.
pom_hash() { sha256sum <"$CONF_DIR/pom.xml" | cut -d' ' -f1; }

print_jars() {
  local jars=("$JARS"/*.jar)
  [[ -e "${jars[0]}" ]] || return "$EXIT_NOT_RUNNING"
  (IFS=,; echo "${jars[*]}")
}

cmd_fetch() {
  local stamp="$JARS/.pom.sha256" want
  want="$(pom_hash)"
  if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
    command -v mvn >/dev/null || die "mvn not found: Maven is needed once to fetch the Spark Kafka jars"
    ensure_state_dir
    mkdir -p "$SLUICE_STATE/spark"
    log "fetching the Spark Kafka connector with Maven into $JARS"
    # A fresh dir swapped in: an interrupted fetch never leaves a partial set behind a stamp.
    local tmp="$JARS.tmp.$$" mvn_log="$SLUICE_STATE/spark/fetch.log"
    rm -rf "$tmp"
    if ! mvn -B -s "$CONF_DIR/settings.xml" -f "$CONF_DIR/pom.xml" \
      dependency:copy-dependencies -DexcludeTransitive=true -DoutputDirectory="$tmp" \
      >"$mvn_log" 2>&1; then
      rm -rf "$tmp"
      tail -n 30 "$mvn_log" >&2
      die "mvn dependency:copy-dependencies failed (full output: $mvn_log)"
    fi
    echo "$want" >"$tmp/.pom.sha256"
    rm -rf "$JARS"
    mv "$tmp" "$JARS"
  fi
  print_jars
}

main() {
  (($# == 1)) || usage_error "expected a command: fetch jars"
  case "$1" in
    fetch) cmd_fetch ;;
    jars) print_jars ;;
    *) usage_error "expected a command: fetch jars" ;;
  esac
}

main "$@"
