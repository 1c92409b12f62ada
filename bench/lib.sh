# Shared by bench/scale.sh and bench/startup.sh (sourced, not run): which sonde binary, what it
# was built from, and a one-line description of the machine. Starts nothing, writes only $1.
# shellcheck shell=bash

# sonde_snapshot DEST: resolve $SONDE_BIN (default target/release/sonde of the repo root, the
# caller's cwd; built with cargo only if that default is missing), copy it to DEST (so a rebuild
# during a long run cannot mix versions), and set SONDE, SONDE_VERSION, SONDE_COMMIT, SONDE_BUILT.
sonde_snapshot() {
  local dest="$1" bin="${SONDE_BIN:-target/release/sonde}" src
  if [[ ! -x "$bin" ]]; then
    if [[ -z "${SONDE_BIN:-}" ]]; then
      echo "bench: $bin missing: cargo build --release (set SONDE_BIN to use another binary)" >&2
      cargo build --release --quiet
    else
      echo "bench: SONDE_BIN=$bin is not executable" >&2; return 2
    fi
  fi
  src="$(cd "$(dirname "$bin")" && pwd)"
  SONDE_VERSION="$("$bin" --version 2>/dev/null || echo 'sonde ?')"
  SONDE_COMMIT="$(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo '?')"
  if [[ -n "$(git -C "$src" status --porcelain --untracked-files=no 2>/dev/null)" ]]; then
    SONDE_COMMIT+=" + uncommitted changes"
  fi
  SONDE_BUILT="$(date -r "$bin" '+%Y-%m-%d %H:%M' 2>/dev/null || echo '?')"
  mkdir -p "$(dirname "$dest")"
  cp "$bin" "$dest.tmp" && mv "$dest.tmp" "$dest"
  SONDE="$dest"
}

# machine_line: date, cores, CPU model, kernel.
machine_line() {
  echo "$(date '+%Y-%m-%d %H:%M %Z'); $(nproc) cores ($(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)), Linux $(uname -r)"
}
