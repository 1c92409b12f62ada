#!/usr/bin/env bash
# Reproduces the README's "Performance" tables from a fresh clone, one run for every goal:
# installs nginx and the peers (wrk, hey, h2load from Debian; oha with cargo install; goose
# and Locust are installed by bench/scenario.sh), builds sonde in release mode, then runs
#   peers     ../shared/bench/run-peers.sh with sonde's line added: HTTP/1.1 max throughput
#             (fast), latency at 500/s vs a 10 ms server (delay), coordinated omission (stall)
#   delay5k   the delay scenario again at 5,000/s (100 connections; wrk closed loop, 50)
#   h2        bench/h2.sh: HTTP/2 over TLS vs h2load, 1 and 10 streams per connection
#   newconn   bench/newconn.sh: a fresh connection per request (TLS and plain) vs oha
#   scenario  bench/scenario.sh: the profile-load flow vs sonde's one URL, goose and Locust
#   instr     bench/instr.sh: user-space instructions (callgrind) and system calls (strace) per
#             request, sonde beside wrk; counts, not timings, so it may also run on a busy machine
# Loopback only; every run is bounded; targets on CPU 0, tools on CPU 1.
#   bench/run.sh            all of the above (~30 min)
#   bench/run.sh --smoke    one short rep of sonde alone per part, to keep the wiring working
#   ONLY="peers h2" bench/run.sh    a subset
# Memory and start-up have their own probes: bench/scale.sh (10k connections, RSS over 5 min;
# ~10 min) and bench/startup.sh (spawn to first request); both take --smoke and SONDE_BIN.
# Output: each part's tables on stdout and, together, in target/bench-state/bench-run/<stamp>/.
set -euo pipefail
cd "$(dirname "$0")/.."
PEERS=../shared/bench/run-peers.sh
[[ -f "$PEERS" ]] || { echo "bench: $PEERS not found (run from a clone beside shared/)" >&2; exit 2; }
SMOKE=0
for a in "$@"; do
  case "$a" in
    --smoke) SMOKE=1 ;;
    -h | --help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "bench/run.sh: unknown argument $a (try --help)" >&2; exit 2 ;;
  esac
done
ONLY="${ONLY:-peers delay5k h2 newconn scenario instr}"
wants() { [[ " $ONLY " == *" $1 "* ]]; }

need_apt=()
command -v wrk >/dev/null || need_apt+=(wrk)
command -v hey >/dev/null || need_apt+=(hey)
command -v nginx >/dev/null || need_apt+=(nginx libnginx-mod-http-echo)
command -v h2load >/dev/null || need_apt+=(nghttp2-client)
command -v openssl >/dev/null || need_apt+=(openssl)
command -v valgrind >/dev/null || need_apt+=(valgrind)
command -v strace >/dev/null || need_apt+=(strace)
if ((${#need_apt[@]})); then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi
if ((!SMOKE)) && ! command -v oha >/dev/null && [[ ! -x "$HOME/.cargo/bin/oha" ]]; then
  cargo install oha --locked --version 1.16.0
fi

cargo build --release --quiet
# shellcheck source=bench/sonde.env
source bench/sonde.env
export SONDE_CMD SONDE_RATE_CMD SONDE_PARSE

STATE="${BENCH_STATE:-$PWD/target/bench-state}"
OUT="$STATE/bench-run/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
export BENCH_STATE="$STATE"
smoke_arg=()
((SMOKE)) && smoke_arg=(--smoke)

# part NAME COMMAND...: run one part, keep its markdown, go on if it fails (and say so).
part() {
  local name="$1"; shift
  echo "== $name: $*" >&2
  if "$@" >"$OUT/$name.md"; then :; else echo "bench: part $name failed (exit $?); see $OUT/$name.md" | tee -a "$OUT/$name.md" >&2; fi
  cat "$OUT/$name.md"
}
peers() { # peers OUTFILE-NAME ENV...: run-peers.sh, then keep its results file
  env "$@" bash "$PEERS" >/dev/null
  sed -n '/^### /,$p' "$STATE/results-peers.md" | sed '/^Raw outputs/d'
}

if wants peers; then
  if ((SMOKE)); then part peers peers DUR=1 REPS=1 TOOLS=wrk SCENARIOS="fast delay"
  else part peers peers; fi
fi
if wants delay5k; then
  if ((SMOKE)); then part delay5k peers DUR=1 REPS=1 TOOLS=wrk SCENARIOS=delay RATE_DELAY=5000 RATE_CONN=100 DELAY_WRK_CONN=50
  else part delay5k peers TOOLS="wrk oha" SCENARIOS=delay RATE_DELAY=5000 RATE_CONN=100 DELAY_WRK_CONN=50; fi
fi
for p in h2 newconn scenario instr; do
  if wants "$p"; then
    if [[ -f "bench/$p.sh" ]]; then part "$p" bash "bench/$p.sh" "${smoke_arg[@]}"
    else echo "bench: bench/$p.sh missing, part $p skipped" >&2; fi
  fi
done
{
  echo "# bench/run.sh $(date -u '+%Y-%m-%d %H:%M UTC'), sonde $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo
  for p in peers delay5k h2 newconn scenario instr; do
    [[ -f "$OUT/$p.md" ]] && { echo "## $p"; echo; cat "$OUT/$p.md"; echo; }
  done
} >"$OUT/run.md"
echo "bench: wrote $OUT/run.md" >&2
