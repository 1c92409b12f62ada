#!/usr/bin/env bash
# Issue 7, goal 4 (scale): memory of sonde holding many connections, beside oha and wrk, and
# RSS stability of a long steady-rate run. Loopback only; every process is bounded in time and
# stopped by the PID this script recorded, never by name.
#
#   bench/scale.sh             probe A: 10,000 VUs for 60 s (sonde, then oha and wrk with the
#                              same connections and duration), then probe B: 2000 req/s for
#                              300 s (open model). ~10 min in all; not for CI.
#   bench/scale.sh --smoke     probe A only, 1000 VUs for 5 s (add --steady for a 20 s probe B)
#   bench/scale.sh --no-steady probe A only, full size
#
# Knobs (environment): SONDE_BIN (default target/release/sonde, built if missing), VUS (10000;
# at most ~11,900: nginx-scale.conf has worker_connections 12000), DUR_SCALE (60), DUR_PEERS
# (= DUR_SCALE), PEERS ("oha wrk"; empty = sonde only), OHA (oha binary), OHA_THREADS (1),
# DUR_STEADY (300), STEADY_EARLY (60: the early RSS point), STEADY_WIN (10: seconds before each
# point whose largest RSS is compared), STEADY_RATE (2000), STEADY_MAX_VUS
# (200), SERVER_CPU (0), TOOL_CPU (1), BENCH_STATE (target/bench-state).
# Target: its own nginx on 127.0.0.1:18090 (bench/nginx-scale.conf), 1 worker on SERVER_CPU.
# Output: markdown table on stdout and in $BENCH_STATE/scale.md; raw outputs and per-second
# samples (elapsed_s, VmRSS kB, VmHWM kB, established connections) in $BENCH_STATE/scale/<stamp>/.
set -euo pipefail
[[ -n "${SONDE_BIN:-}" && "$SONDE_BIN" != /* ]] && SONDE_BIN="$PWD/$SONDE_BIN"   # relative to the caller
cd "$(dirname "$0")/.."
ROOT="$PWD"

SMOKE=0 STEADY=""
for a in "$@"; do
  case "$a" in
    --smoke) SMOKE=1 ;;
    --steady) STEADY=1 ;;
    --no-steady) STEADY=0 ;;
    -h | --help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "scale.sh: unknown argument $a (try --help)" >&2; exit 2 ;;
  esac
done
if ((SMOKE)); then
  VUS="${VUS:-1000}" DUR_SCALE="${DUR_SCALE:-5}" DUR_STEADY="${DUR_STEADY:-20}" STEADY_EARLY="${STEADY_EARLY:-8}"
  STEADY_WIN="${STEADY_WIN:-3}"
  STEADY="${STEADY:-0}"
fi
VUS="${VUS:-10000}"
DUR_SCALE="${DUR_SCALE:-60}"
DUR_PEERS="${DUR_PEERS:-$DUR_SCALE}"
PEERS="${PEERS-oha wrk}"
DUR_STEADY="${DUR_STEADY:-300}"
STEADY_EARLY="${STEADY_EARLY:-60}"
STEADY_WIN="${STEADY_WIN:-10}"
STEADY_RATE="${STEADY_RATE:-2000}"
STEADY_MAX_VUS="${STEADY_MAX_VUS:-200}"
STEADY="${STEADY:-1}"
SERVER_CPU="${SERVER_CPU:-0}"
TOOL_CPU="${TOOL_CPU:-1}"
OHA="${OHA:-$(command -v oha || echo "$HOME/.cargo/bin/oha")}"
OHA_THREADS="${OHA_THREADS:-1}"
PORT=18090
URL="http://127.0.0.1:$PORT/"

STATE="${BENCH_STATE:-$ROOT/target/bench-state}"
STAMP="$(date +%Y%m%d-%H%M%S)"
OUT="$STATE/scale/$STAMP"
NGX="$STATE/scale/nginx"
mkdir -p "$OUT" "$NGX/tmp"
REPORT="$STATE/scale.md"
T_START=$SECONDS

for c in nginx ss python3; do
  command -v "$c" >/dev/null || { echo "scale.sh: $c is required (apt-get install nginx iproute2 python3)" >&2; exit 2; }
done
PIN_SRV=() PIN_TOOL=()
if command -v taskset >/dev/null; then PIN_SRV=(taskset -c "$SERVER_CPU") PIN_TOOL=(taskset -c "$TOOL_CPU"); else
  echo "scale.sh: taskset not found, running unpinned" >&2; fi
TIMEBIN=""; [[ -x /usr/bin/time ]] && TIMEBIN=/usr/bin/time

# --- sonde binary (snapshot, see bench/lib.sh) ---
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
sonde_snapshot "$STATE/scale/sonde"

# --- file descriptors: raise the soft limit to the hard one ---
HARD_NOFILE="$(ulimit -Hn)"
if [[ "$HARD_NOFILE" == unlimited ]]; then ulimit -n 1048576 2>/dev/null || true; else ulimit -n "$HARD_NOFILE"; fi
NOFILE="$(ulimit -n)"
NOTES=()
if [[ "$NOFILE" != unlimited ]] && ((NOFILE < VUS + 200)); then
  NOTES+=("RLIMIT_NOFILE is $NOFILE (hard $HARD_NOFILE): too low for $VUS connections (needs ~$((VUS + 200))); expect connect errors. Raise the hard limit (e.g. \`ulimit -Hn\` as root, or LimitNOFILE=) and rerun.")
  echo "scale.sh: WARNING: ${NOTES[-1]}" >&2
fi
echo "scale.sh: RLIMIT_NOFILE soft=$NOFILE hard=$HARD_NOFILE; state in $OUT" >&2

# --- target ---
NGX_PID="" TOOL_PID=""
stop_pid() { # stop_pid PID: TERM, up to 5 s, then KILL
  local pid="$1" i
  [[ -n "$pid" && -d "/proc/$pid" ]] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do [[ -d "/proc/$pid" ]] || return 0; sleep 0.05; done
  kill -KILL "$pid" 2>/dev/null || true
}
cleanup() {
  stop_pid "$TOOL_PID"
  if [[ -n "$NGX_PID" ]]; then stop_pid "$NGX_PID"; wait "$NGX_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }
if port_open; then echo "scale.sh: 127.0.0.1:$PORT is already in use; stop that first" >&2; exit 2; fi
"${PIN_SRV[@]}" nginx -p "$NGX/" -c "$ROOT/bench/nginx-scale.conf" -e stderr >"$OUT/nginx.log" 2>&1 &
NGX_PID=$!
for ((i = 0; i < 100; i++)); do port_open && break; sleep 0.05; done
port_open || { echo "scale.sh: nginx did not come up; log:" >&2; cat "$OUT/nginx.log" >&2; exit 1; }
echo "scale.sh: nginx pid $NGX_PID on $URL (cpu $SERVER_CPU)" >&2

# wait_quiet: let the previous run's sockets drain (bounded, 20 s) before the next probe.
wait_quiet() {
  local i n
  for ((i = 0; i < 40; i++)); do
    n="$(ss -Htn state established "( dport = :$PORT )" | wc -l)"
    ((n == 0)) && return 0
    sleep 0.5
  done
}

# probe NAME LIMIT_S CMD...: runs CMD pinned to TOOL_CPU, samples its memory and the
# established connections to :PORT once a second, kills it (by PID) after LIMIT_S.
# Writes $OUT/NAME.{out,err,samples,time,rc}.
probe() {
  local name="$1" limit="$2"; shift 2
  local wpid pid t0 now next i rc=0 st=0 rss hwm conns
  wait_quiet
  echo "scale.sh: [$name] $*" >&2
  echo "$*" >"$OUT/$name.cmd"
  if [[ -n "$TIMEBIN" ]]; then
    "$TIMEBIN" -f '%M %U %S %e' -o "$OUT/$name.time" "${PIN_TOOL[@]}" "$@" >"$OUT/$name.out" 2>"$OUT/$name.err" &
    wpid=$!
    pid=""
    for ((i = 0; i < 100; i++)); do
      pid="$(pgrep -P "$wpid" | head -1 || true)"
      [[ -n "$pid" ]] && break
      sleep 0.02
    done
    [[ -n "$pid" ]] || pid="$wpid"
  else
    "${PIN_TOOL[@]}" "$@" >"$OUT/$name.out" 2>"$OUT/$name.err" &
    wpid=$!; pid=$wpid
  fi
  TOOL_PID="$pid"
  t0="${EPOCHREALTIME/./}"
  : >"$OUT/$name.samples"
  for ((i = 0; ; i++)); do
    [[ -d "/proc/$pid" ]] || break
    now="${EPOCHREALTIME/./}"
    read -r rss hwm < <(awk '/^VmRSS:/{r=$2} /^VmHWM:/{h=$2} END{print r+0, h+0}' "/proc/$pid/status" 2>/dev/null || echo "0 0")
    conns="$(ss -Htn state established "( dport = :$PORT )" | wc -l)"
    ((rss > 0)) && printf '%d.%03d\t%s\t%s\t%s\n' $(((now - t0) / 1000000)) $((((now - t0) / 1000) % 1000)) \
      "$rss" "$hwm" "$conns" >>"$OUT/$name.samples"
    if (((now - t0) / 1000000 >= limit)); then
      echo "scale.sh: [$name] still running after ${limit}s, stopping pid $pid" >&2
      stop_pid "$pid"; rc=124; break
    fi
    next=$((t0 + (i + 1) * 1000000)); now="${EPOCHREALTIME/./}"
    if ((next > now)); then sleep "$(printf '0.%06d' $((next - now > 999999 ? 999999 : next - now)))"; fi
  done
  wait "$wpid" || st=$?
  ((rc == 124)) || rc=$st
  TOOL_PID=""
  echo "$rc" >"$OUT/$name.rc"
}

# --- summaries from the samples ---
mb() { awk -v k="$1" 'BEGIN{ if (k == "" || k == "-") print "-"; else printf "%.1f", k * 1024 / 1e6 }'; }
# rss_at NAME T: VmRSS (kB) of the sample nearest to T seconds.
rss_at() { awk -v t="$2" 'BEGIN{b=-1} { d = ($1 > t) ? $1 - t : t - $1; if (b < 0 || d < b) { b = d; r = $2 } } END{ print (b < 0 || b > 3) ? "-" : r }' "$OUT/$1.samples"; }
# peak_kb NAME: the larger of /usr/bin/time's max RSS and the largest sampled VmHWM.
peak_kb() {
  local t=0
  [[ -s "$OUT/$1.time" ]] && t="$(awk 'END{print $1+0}' "$OUT/$1.time")"
  awk -v t="$t" 'BEGIN{m=t} $3 > m {m=$3} END{print m}' "$OUT/$1.samples"
}
peak_conns() { awk 'BEGIN{m=0} $4 > m {m=$4} END{print m}' "$OUT/$1.samples"; }
# held_conns NAME DUR: fewest established connections between 20 % and 90 % of the run.
held_conns() { awk -v d="$2" 'BEGIN{m=-1} $1 >= d * 0.2 && $1 <= d * 0.9 { if (m < 0 || $4 < m) m = $4 } END{ print (m < 0) ? "-" : m }' "$OUT/$1.samples"; }
# win_max NAME COLUMN FROM TO: largest value of COLUMN (2 = VmRSS kB, 4 = connections) among the
# samples with FROM <= elapsed <= TO.
win_max() { awk -v c="$2" -v a="$3" -v b="$4" '$1 >= a && $1 <= b { if (n++ == 0 || $c > m) m = $c } END{ print n ? m : "-" }' "$OUT/$1.samples"; }
cpu_s() { [[ -s "$OUT/$1.time" ]] && awk 'END{printf "%.1f", $2 + $3}' "$OUT/$1.time" || echo "-"; }

# reqs_errs NAME KIND -> "requests errors detail" from the tool's own output
reqs_errs() {
  local f="$OUT/$1.out"
  case "$2" in
    sonde)
      python3 - "$f" "$OUT/$1.err" <<'PY' || echo "- - sonde produced no JSON (see stderr)"
import json, sys
try:
    d = json.load(open(sys.argv[1]))
except Exception:
    err = open(sys.argv[2], errors="replace").read().strip().splitlines()
    print("- - " + ("; ".join(err[-2:]) if err else "no output")[:200].replace("|", "/"))
    sys.exit(0)
extra = []
if d.get("dropped_iterations"): extra.append(f"dropped {d['dropped_iterations']}")
if d.get("failed_iterations"): extra.append(f"failed iterations {d['failed_iterations']}")
if d.get("interrupted"): extra.append("interrupted")
for k in ("error_kinds", "errors_by_kind", "error_counts"):
    if isinstance(d.get(k), dict) and d[k]:
        extra.append(", ".join(f"{a}: {b}" for a, b in d[k].items()))
extra.append(f"{d.get('rps', 0):.0f} req/s")
print(d.get("requests", "-"), d.get("errors", "-"), "; ".join(extra))
PY
      ;;
    oha)
      python3 - "$f" <<'PY' || echo "- - oha produced no JSON"
import json, sys
d = json.load(open(sys.argv[1]))
codes = d.get("statusCodeDistribution") or {}
errs = d.get("errorDistribution") or {}
ok = sum(v for k, v in codes.items() if str(k).startswith("2"))
bad = sum(v for k, v in codes.items() if not str(k).startswith("2"))
e = {k: v for k, v in errs.items() if "aborted due to deadline" not in k}
detail = "; ".join(f"{k}: {v}" for k, v in list(e.items())[:3])
rps = (d.get("summary") or {}).get("requestsPerSec") or 0
print(ok + bad, bad + sum(e.values()), (detail + "; " if detail else "") + f"{rps:.0f} req/s")
PY
      ;;
    wrk)
      awk '/ requests in /{r=$1} /Socket errors:/{gsub(/,/,""); e+=$4+$6+$8+$10; s=$0; sub(/^ +/,"",s)}
        /Non-2xx or 3xx responses:/{e+=$NF} /Requests\/sec:/{rps=$2}
        END{ if (r == "") print "- - wrk printed no summary"; else printf "%s %d %s%.0f req/s\n", r, e, (s != "" ? s "; " : ""), rps }' "$f"
      ;;
  esac
}

# --- probe A: many held connections ---
ROWS_A=()
row_a() { # row_a NAME KIND LABEL DUR
  local name="$1" kind="$2" label="$3" dur="$4" re req err detail rc peak half
  rc="$(cat "$OUT/$name.rc")"
  re="$(reqs_errs "$name" "$kind")"; req="${re%% *}"; re="${re#* }"; err="${re%% *}"; detail="${re#* }"
  ((rc == 0)) || detail="exit $rc; $detail"
  peak="$(peak_kb "$name")"
  half=$((dur / 2))
  ROWS_A+=("| $label | $(mb "$peak") | $(mb "$(rss_at "$name" "$half")") | $(mb "$(rss_at "$name" "$dur")") | $(peak_conns "$name") | $(held_conns "$name" "$dur") | $(awk -v p="$peak" -v v="$VUS" 'BEGIN{printf "%.1f", p * 1.024 / v}') | $(cpu_s "$name") | $req | $err | $detail |")
  PEAK_KB["$name"]="$peak"
}
declare -A PEAK_KB

probe sonde "$((DUR_SCALE + 60))" "$SONDE" run --url "$URL" --vus "$VUS" --duration "${DUR_SCALE}s" --format json --quiet
row_a sonde sonde "sonde --vus $VUS" "$DUR_SCALE"
for p in $PEERS; do
  case "$p" in
    oha)
      if [[ ! -x "$OHA" ]]; then NOTES+=("oha not found ($OHA): skipped (cargo install oha --locked)"); continue; fi
      oha_args=(--no-tui --output-format json); [[ "$OHA_THREADS" != 0 ]] && oha_args+=(--worker-threads "$OHA_THREADS")
      probe oha "$((DUR_PEERS + 60))" "$OHA" "${oha_args[@]}" -c "$VUS" -z "${DUR_PEERS}s" "$URL"
      row_a oha oha "oha -c $VUS$([[ "$OHA_THREADS" != 0 ]] && echo " (1 thread)")" "$DUR_PEERS" ;;
    wrk)
      if ! command -v wrk >/dev/null; then NOTES+=("wrk not found: skipped (apt-get install wrk)"); continue; fi
      probe wrk "$((DUR_PEERS + 60))" wrk -c "$VUS" -t 1 -d "${DUR_PEERS}s" "$URL"
      row_a wrk wrk "wrk -c $VUS -t 1" "$DUR_PEERS" ;;
    *) NOTES+=("unknown peer $p: skipped") ;;
  esac
done

# --- probe B: RSS stability at a steady rate ---
ROW_B=""
if ((STEADY)); then
  probe steady "$((DUR_STEADY + 60))" "$SONDE" run --url "$URL" --rate "${STEADY_RATE}/s" --max-vus "$STEADY_MAX_VUS" \
    --duration "${DUR_STEADY}s" --format json --quiet
  # RSS here swings by ~1.5 MB within seconds (buffers allocated and freed), so one sample
  # at each point would compare phases of that swing: compare the largest VmRSS of the
  # STEADY_WIN seconds before each point instead, and show the whole range after the early one.
  early="$(win_max steady 2 "$((STEADY_EARLY - STEADY_WIN))" "$STEADY_EARLY")"
  late="$(win_max steady 2 "$((DUR_STEADY - STEADY_WIN))" "$DUR_STEADY")"
  range="$(awk -v a="$STEADY_EARLY" -v d="$DUR_STEADY" '$1 >= a && $1 <= d { if (n++ == 0 || $2 < lo) lo = $2; if ($2 > hi) hi = $2 }
    END{ if (n) printf "%.1f–%.1f", lo * 1.024 / 1000, hi * 1.024 / 1000; else print "-" }' "$OUT/steady.samples")"
  ratio="$(awk -v a="$early" -v b="$late" 'BEGIN{ if (a + 0 > 0 && b + 0 > 0) printf "%.3f", b / a; else print "-" }')"
  conns="$(win_max steady 4 "$((STEADY_EARLY - STEADY_WIN))" "$STEADY_EARLY") → $(win_max steady 4 "$((DUR_STEADY - STEADY_WIN))" "$DUR_STEADY")"
  re="$(reqs_errs steady sonde)"; req="${re%% *}"; re="${re#* }"; err="${re%% *}"; detail="${re#* }"
  rc="$(cat "$OUT/steady.rc")"; ((rc == 0)) || detail="exit $rc; $detail"
  ROW_B="| sonde --rate ${STEADY_RATE}/s --max-vus $STEADY_MAX_VUS, ${DUR_STEADY} s | $(mb "$early") | $(mb "$late") | $ratio | $range | $conns | $(mb "$(peak_kb steady)") | $(cpu_s steady) | $req | $err | $detail |"
  STEADY_MET="$(awk -v r="$ratio" 'BEGIN{ if (r == "-") print "not measured"; else if (r >= 0.95 && r <= 1.05) print "met"; else if (r < 0.95) print "not met literally, but RSS fell (no growth)"; else print "not met (RSS grew)" }')"
fi

# --- report ---
SONDE_PEAK="${PEAK_KB[sonde]:-0}"
A_MET="$(awk -v p="$SONDE_PEAK" 'BEGIN{ print (p * 1024 < 100e6) ? "met" : "not met" }')"
HELD="$(held_conns sonde "$DUR_SCALE")"
{
  echo "## Scale (issue 7, goal 4) — bench/scale.sh$( ((SMOKE)) && echo " --smoke")"
  echo
  echo "$(machine_line), RLIMIT_NOFILE $NOFILE;"
  echo "$SONDE_VERSION, commit $SONDE_COMMIT (binary built $SONDE_BUILT); nginx $(nginx -v 2>&1 | sed 's|.*/||'), 1 worker on CPU $SERVER_CPU; tools on CPU $TOOL_CPU; target $URL returns \`ok\`."
  echo
  echo "**Probe A — $VUS connections held for ${DUR_SCALE} s** (peers: ${DUR_PEERS} s). RSS in MB (10^6 bytes), from /proc/PID/status once a second; peak = max of VmHWM and /usr/bin/time's max RSS. *Held* = fewest established connections to :$PORT between 20 % and 90 % of the run."
  echo
  echo "| tool | peak RSS | RSS @$((DUR_SCALE / 2)) s | RSS @${DUR_SCALE} s | peak conns | held conns | KB/conn (peak) | CPU s | requests | errors | notes |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
  printf '%s\n' "${ROWS_A[@]}"
  echo
  for p in $PEERS; do
    [[ -n "${PEAK_KB[$p]:-}" ]] && awk -v a="$SONDE_PEAK" -v b="${PEAK_KB[$p]}" -v n="$p" 'BEGIN{ if (b > 0) printf "sonde peak RSS / %s peak RSS = %.2f×  \n", n, a / b }'
  done
  echo "Goal 4a (RSS < 100 MB with $VUS VUs for ${DUR_SCALE} s): **$A_MET** (peak $(mb "$SONDE_PEAK") MB; held $HELD of $VUS connections)."
  if [[ -n "$ROW_B" ]]; then
    echo
    echo "**Probe B — steady rate, open model.** RSS in MB: the largest sample in the ${STEADY_WIN} s before ${STEADY_EARLY} s (*early*) and before ${DUR_STEADY} s (*end*, the end of the load); *range* = smallest–largest sample in between; *conns* = established connections (largest in each window)."
    echo
    echo "| run | RSS early | RSS end | end / early | range | conns | peak RSS | CPU s | requests | errors | notes |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    echo "$ROW_B"
    echo
    echo "Goal 4b (RSS after the run within 5 % of RSS after ${STEADY_EARLY} s): **$STEADY_MET**."
  else
    echo
    echo "Probe B (steady-rate RSS) skipped$( ((SMOKE)) && echo " in --smoke mode; add --steady")."
  fi
  for n in "${NOTES[@]}"; do echo; echo "Note: $n"; done
  echo
  echo "Wall time $((SECONDS - T_START)) s. Raw outputs and samples: \`${OUT#"$ROOT"/}/\`."
} | tee "$REPORT"
