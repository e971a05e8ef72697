#!/usr/bin/env bash
# The MLflow web UI the api serves: the built bundle (mlflow/server/js/build/) of the pinned
# `mlflow` wheel, downloaded without dependencies, checked by hash, and only that folder
# unpacked. The services' virtualenv never carries MLflow's server dependencies.
#
# usage: scripts/ui-bundle.sh install   download and unpack when missing; prints the folder
#        scripts/ui-bundle.sh path      print the folder (SLUICE_API_UI_DIR's default)
#
# Environment: SLUICE_STATE_DIR (see lib.sh)  SLUICE_PYTHON (default python3)
set -euo pipefail
SLUICE_SCRIPT=ui-bundle
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

readonly MLFLOW_VERSION=3.17.2
# sha256 of mlflow-3.17.2-py3-none-any.whl on PyPI: a different file is refused.
readonly WHEEL_SHA256=4e44c03791beb518d8b0a40b0982d958c2634d902f46d67d7907c82107f21fac
readonly WHEEL="mlflow-$MLFLOW_VERSION-py3-none-any.whl"
readonly PYTHON="${SLUICE_PYTHON:-python3}"
readonly DEST="$SLUICE_STATE/ui/mlflow-$MLFLOW_VERSION"
readonly STAMP="$DEST/.sluice-wheel-sha256"
# Bumped when what install writes changes (e.g. the .gz files), so old folders are redone.
readonly LAYOUT=2

cmd_path() { echo "$DEST"; }

cmd_install() {
  if [[ "$(cat "$STAMP" 2>/dev/null)" == "$WHEEL_SHA256 $LAYOUT" && -f "$DEST/index.html" ]]; then
    cmd_path
    return 0
  fi
  ensure_state_dir
  local work
  work="$(mktemp -d "$SLUICE_STATE/ui-bundle.XXXXXX")"
  # shellcheck disable=SC2064  # expand now: the trap must remove this very folder
  trap "rm -rf '$work'" EXIT
  log "downloading $WHEEL (no dependencies)"
  "$PYTHON" -m pip download --disable-pip-version-check -q --no-deps --only-binary=:all: \
    -d "$work" "mlflow==$MLFLOW_VERSION" || die "pip download mlflow==$MLFLOW_VERSION failed"
  [[ -f "$work/$WHEEL" ]] || die "pip did not produce $WHEEL"
  local got
  got="$(sha256sum "$work/$WHEEL" | cut -d' ' -f1)"
  [[ "$got" == "$WHEEL_SHA256" ]] || die "$WHEEL has sha256 $got, expected $WHEEL_SHA256"
  # Only the bundle's folder, and only plain relative names inside it (a wheel is a zip).
  "$PYTHON" - "$work/$WHEEL" "$work/build" <<'PY' || die "unpacking the bundle failed"
import pathlib, sys, zipfile
prefix = "mlflow/server/js/build/"
out = pathlib.Path(sys.argv[2])
with zipfile.ZipFile(sys.argv[1]) as wheel:
    members = [m for m in wheel.infolist() if m.filename.startswith(prefix) and not m.is_dir()]
    for m in members:
        rel = pathlib.PurePosixPath(m.filename[len(prefix):])
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            sys.exit(f"refusing member {m.filename!r}")
        target = out.joinpath(*rel.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(wheel.read(m))
if not (out / "index.html").is_file():
    sys.exit("the wheel has no mlflow/server/js/build/index.html")
# A .gz beside each compressible file: the api sends it to browsers that accept gzip
# (compressed once here instead of on every request).
import gzip
for path in out.rglob("*"):
    if path.suffix in {".js", ".css", ".html", ".json", ".svg", ".map", ".txt", ".ico"}:
        data = path.read_bytes()
        if len(data) > 1024:
            path.with_name(path.name + ".gz").write_bytes(gzip.compress(data, 9, mtime=0))
PY
  echo "$WHEEL_SHA256 $LAYOUT" >"$work/build/.sluice-wheel-sha256"
  mkdir -p "$(dirname "$DEST")"
  rm -rf "$DEST"
  mv "$work/build" "$DEST"
  log "unpacked the MLflow $MLFLOW_VERSION UI into $DEST"
  cmd_path
}

main() {
  (($# == 1)) || usage_error "expected a command: install path"
  case "$1" in
    install) cmd_install ;;
    path) cmd_path ;;
    *) usage_error "expected a command: install path" ;;
  esac
}

main "$@"
