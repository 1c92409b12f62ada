#!/usr/bin/env bash
# Reproduces the README's "Performance" table from a fresh clone: installs nginx and the peers
# (wrk, hey from Debian; oha with cargo install), builds sonde in release mode, and runs
# ../shared/bench/run-peers.sh with sonde's line added. Loopback only; every run is bounded.
#   bench/run.sh            full run (3 reps x 5 s per tool and scenario, ~4 min)
#   bench/run.sh --smoke    one short rep of sonde alone, to keep the wiring working
# Goals 4 and 5 have their own probes: bench/scale.sh (10k VUs memory, RSS stability; ~10 min)
# and bench/startup.sh (spawn to first request); both take --smoke and SONDE_BIN.
set -euo pipefail
cd "$(dirname "$0")/.."
PEERS=../shared/bench/run-peers.sh
[[ -x "$PEERS" || -f "$PEERS" ]] || { echo "bench: $PEERS not found (run from a clone beside shared/)" >&2; exit 2; }

need_apt=()
command -v wrk >/dev/null || need_apt+=(wrk)
command -v hey >/dev/null || need_apt+=(hey)
command -v nginx >/dev/null || need_apt+=(nginx libnginx-mod-http-echo)
if ((${#need_apt[@]})); then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi
if [[ "${1:-}" != "--smoke" ]] && ! command -v oha >/dev/null && [[ ! -x "$HOME/.cargo/bin/oha" ]]; then
  cargo install oha --locked --version 1.16.0
fi

cargo build --release --quiet
# shellcheck source=bench/sonde.env
source bench/sonde.env
export SONDE_CMD SONDE_RATE_CMD SONDE_PARSE

if [[ "${1:-}" == "--smoke" ]]; then
  DUR=1 REPS=1 TOOLS=wrk SCENARIOS="fast delay" bash "$PEERS"
else
  bash "$PEERS"
fi
