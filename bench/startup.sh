#!/usr/bin/env bash
# Issue 7, goal 5 (start-up): time from spawning `sonde run --url ...` to its first request
# arriving at a local server, beside oha, wrk, hey and curl, and the bare process-spawn floor.
# Measured from outside by bench/startup_probe.py (Python 3 stdlib; its own server on
# 127.0.0.1, port 0). Loopback only; every run is killed by PID after TIMEOUT seconds.
#
#   bench/startup.sh            REPS=20 rounds, tools interleaved (~40 s: wrk runs 1 s a round)
#   bench/startup.sh --smoke    3 rounds, sonde and curl only
#
# Knobs (environment): SONDE_BIN (default target/release/sonde, built if missing), REPS (20),
# TOOLS ("sonde oha wrk hey curl"), OHA, TOOL_CPU (1: tools pinned with taskset, which adds one
# exec to every tool alike), PROBE_CPU (0: the probe's server), TIMEOUT (10), BENCH_STATE.
# Output: markdown table on stdout and in $BENCH_STATE/startup.md.
set -euo pipefail
[[ -n "${SONDE_BIN:-}" && "$SONDE_BIN" != /* ]] && SONDE_BIN="$PWD/$SONDE_BIN"   # relative to the caller
cd "$(dirname "$0")/.."
ROOT="$PWD"

SMOKE=0
for a in "$@"; do
  case "$a" in
    --smoke) SMOKE=1 ;;
    -h | --help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "startup.sh: unknown argument $a (try --help)" >&2; exit 2 ;;
  esac
done
if ((SMOKE)); then REPS="${REPS:-3}" TOOLS="${TOOLS:-sonde curl}"; fi
REPS="${REPS:-20}"
TOOLS="${TOOLS:-sonde oha wrk hey curl}"
OHA="${OHA:-$(command -v oha || echo "$HOME/.cargo/bin/oha")}"
TOOL_CPU="${TOOL_CPU:-1}"
PROBE_CPU="${PROBE_CPU:-0}"
TIMEOUT="${TIMEOUT:-10}"
STATE="${BENCH_STATE:-$ROOT/target/bench-state}"
REPORT="$STATE/startup.md"
T_START=$SECONDS

command -v python3 >/dev/null || { echo "startup.sh: python3 is required" >&2; exit 2; }
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
sonde_snapshot "$STATE/startup/sonde"

args=(--reps "$REPS" --timeout "$TIMEOUT" --floor)
if command -v taskset >/dev/null; then args+=(--pin "$TOOL_CPU" --probe-cpu "$PROBE_CPU"); fi
NOTES=()
for t in $TOOLS; do
  case "$t" in
    sonde) args+=(--tool "sonde run --url (-n 5 --vus 1)=$SONDE run --url {url} -n 5 --vus 1 --quiet --format json") ;;
    oha)
      if [[ -x "$OHA" ]]; then args+=(--tool "oha (-n 5 -c 1)=$OHA -n 5 -c 1 --no-tui {url}")
      else NOTES+=("oha not found ($OHA): skipped"); fi ;;
    wrk) args+=(--tool "wrk (-c 1 -t 1 -d 1s)=wrk -c 1 -t 1 -d 1s {url}") ;;
    hey) args+=(--tool "hey (-n 5 -c 1)=hey -n 5 -c 1 {url}") ;;
    curl) args+=(--tool "curl -s (one request)=curl -s -o /dev/null {url}") ;;
    *) NOTES+=("unknown tool $t: skipped") ;;
  esac
done

echo "startup.sh: $REPS rounds of: $TOOLS (+ spawn floor)" >&2
TABLE="$(python3 "$ROOT/bench/startup_probe.py" "${args[@]}")"
mkdir -p "$STATE"
{
  echo "## Start-up (issue 7, goal 5) — bench/startup.sh$( ((SMOKE)) && echo " --smoke")"
  echo
  echo "$(machine_line);"
  echo "$SONDE_VERSION, commit $SONDE_COMMIT (binary built $SONDE_BUILT)."
  echo
  echo "Time from \`subprocess.Popen\` of the tool (monotonic clock, taken just before the spawn) to the first bytes of its first request on a local keep-alive server (Python, pinned to CPU $PROBE_CPU; tools pinned to CPU $TOOL_CPU via \`taskset\`, one extra exec for every tool). $REPS rounds, tools interleaved, after 1 unrecorded warm-up round. *spawn* is \`/bin/true\` through the same \`taskset\`, spawn to exit: the floor every tool pays. *exit p50* is spawn to process exit."
  echo
  echo "$TABLE"
  echo
  sonde_p50="$(awk -F'|' '$2 ~ /^ sonde/ {gsub(/ /, "", $4); print $4}' <<<"$TABLE")"
  sonde_max="$(awk -F'|' '$2 ~ /^ sonde/ {gsub(/ /, "", $6); print $6}' <<<"$TABLE")"
  if [[ -n "$sonde_p50" && "$sonde_p50" != - ]]; then
    verdict="$(awk -v p="$sonde_p50" -v m="$sonde_max" 'BEGIN{ if (m < 50) print "met (every run under 50 ms)"; else if (p < 50) print "met at p50, not in every run (max " m " ms)"; else print "not met" }')"
    echo "Goal 5 (first request within 50 ms of process start): **$verdict**."
  fi
  echo "The embedded demo's start-up (binding and seeding the demo service before \`sonde run scenarios/...\`) is excluded here and reported apart; these runs name an explicit target."
  for n in "${NOTES[@]}"; do echo; echo "Note: $n"; done
  echo
  echo "Wall time $((SECONDS - T_START)) s."
} | tee "$REPORT"
