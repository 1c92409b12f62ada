#!/usr/bin/env bash
# Issue 15, goal 4: scenarios as fast as one URL. The shipped profile-load flow
# (scenarios/profile-load.yaml: identities once, then profile with a JSON capture, then total
# and startup) against a fast canned target, in requests per tool CPU-second, beside sonde's
# own one-URL run, goose (crates.io) and Locust (PyPI, FastHttpUser) running the same flow.
# Loopback only; every run bounded in time; processes stopped by the PID this script recorded.
#
#   bench/scenario.sh          REPS x DUR s of each tool (default 3 x 5 s), medians; builds goose
#                              (release, minutes) and installs Locust into a venv if missing
#   bench/scenario.sh --smoke  1 x 3 s, sonde only (goose and Locust too if already built), < 30 s
#
# The target: nginx (bench/nginx-scenario.conf, 1 worker on SERVER_CPU) serving the demo's own
# answers, taken at bench time from a real `sonde demo` (bodies and Server-Timing headers), so
# the JSON shapes stay true. Rows (each tool pinned to TOOL_CPU, 50 users):
#   sonde scenario   sonde run scenarios/profile-load.yaml --target URL --vus 50
#   sonde one URL    sonde run --url URL/users/7/profile --vus 50 (the biggest body of the flow)
#   goose            bench/goose (goose = latest release), same flow; total and startup one
#                    after the other (a goose user is `&mut` for each request)
#   Locust           bench/locust/locustfile.py, FastHttpUser, one process, same flow (sequential)
# Tool CPU = utime + stime of the tool process, read from /proc/<wrapper>/stat (cutime + cstime
# of the shell that ran and reaped it), so it includes start-up (Python imports for Locust).
#
# Knobs (environment): SONDE_BIN (default target/release/sonde, built if missing), REPS (3),
# DUR (5), VUS (50), PEERS ("goose locust"; empty = sonde only), LOCUST_VERSION (2.47.0),
# SERVER_CPU (0), TOOL_CPU (1), BENCH_STATE (target/bench-state), PORT (18130), DEMO_PORT (18131).
# Output: markdown table on stdout and in $BENCH_STATE/scenario.md; raw outputs in
# $BENCH_STATE/scenario/<stamp>/.
set -euo pipefail
[[ -n "${SONDE_BIN:-}" && "$SONDE_BIN" != /* ]] && SONDE_BIN="$PWD/$SONDE_BIN"   # relative to the caller
cd "$(dirname "$0")/.."
ROOT="$PWD"

SMOKE=0
for a in "$@"; do
  case "$a" in
    --smoke) SMOKE=1 ;;
    -h | --help) sed -n '2,27p' "$0"; exit 0 ;;
    *) echo "scenario.sh: unknown argument $a (try --help)" >&2; exit 2 ;;
  esac
done
STATE="${BENCH_STATE:-$ROOT/target/bench-state}"
GOOSE_TARGET="$STATE/goose-target"
GOOSE_BIN="$GOOSE_TARGET/release/sonde-bench-goose"
VENV="$STATE/locust-venv"
LOCUST_VERSION="${LOCUST_VERSION:-2.47.0}"
if ((SMOKE)); then
  REPS="${REPS:-1}" DUR="${DUR:-3}"
  if [[ -z "${PEERS+x}" ]]; then   # peers only when already built: no build in smoke mode
    PEERS=""
    [[ -x "$GOOSE_BIN" ]] && PEERS+="goose "
    [[ -x "$VENV/bin/locust" ]] && PEERS+="locust"
  fi
fi
REPS="${REPS:-3}"
DUR="${DUR:-5}"
VUS="${VUS:-50}"
PEERS="${PEERS-goose locust}"
SERVER_CPU="${SERVER_CPU:-0}"
TOOL_CPU="${TOOL_CPU:-1}"
PORT="${PORT:-18130}"
DEMO_PORT="${DEMO_PORT:-18131}"
BASE="http://127.0.0.1:$PORT"
LIMIT=$((DUR + 60))   # hard stop of any one run
CLK_TCK="$(getconf CLK_TCK)"

STAMP="$(date +%Y%m%d-%H%M%S)"
OUT="$STATE/scenario/$STAMP"
NGX="$STATE/scenario/nginx"
REPORT="$STATE/scenario.md"
mkdir -p "$OUT" "$NGX/tmp" "$NGX/bodies"
T_START=$SECONDS
NOTES=()

for c in nginx curl python3 taskset; do
  command -v "$c" >/dev/null || { echo "scenario.sh: $c is required (apt-get install nginx curl python3 util-linux)" >&2; exit 2; }
done

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
sonde_snapshot "$STATE/scenario/sonde"

NGX_PID="" DEMO_PID="" TOOL_PID=""
stop_pid() { # stop_pid PID: TERM, up to 5 s, then KILL
  local pid="$1" i
  [[ -n "$pid" && -d "/proc/$pid" ]] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do [[ -d "/proc/$pid" ]] || return 0; sleep 0.05; done
  kill -KILL "$pid" 2>/dev/null || true
}
cleanup() {
  stop_pid "$TOOL_PID"
  stop_pid "$DEMO_PID"
  if [[ -n "$NGX_PID" ]]; then stop_pid "$NGX_PID"; wait "$NGX_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# --- peers: build / install what is missing (full mode only) ---
for p in $PEERS; do
  case "$p" in
    goose)
      if [[ ! -x "$GOOSE_BIN" ]]; then
        echo "scenario.sh: building bench/goose (release, into ${GOOSE_TARGET#"$ROOT"/}; takes minutes)" >&2
        cargo build --release --locked --quiet --manifest-path "$ROOT/bench/goose/Cargo.toml" --target-dir "$GOOSE_TARGET"
      fi ;;
    locust)
      if [[ ! -x "$VENV/bin/locust" ]] || ! "$VENV/bin/locust" --version 2>/dev/null | grep -q " $LOCUST_VERSION "; then
        echo "scenario.sh: installing locust==$LOCUST_VERSION into ${VENV#"$ROOT"/}" >&2
        python3 -m venv "$VENV"
        "$VENV/bin/pip" install --quiet "locust==$LOCUST_VERSION"
      fi ;;
    *) echo "scenario.sh: unknown peer $p (goose, locust)" >&2; exit 2 ;;
  esac
done

# --- the demo's real answers for the flow (bodies and Server-Timing), then the demo stops ---
for port in "$PORT" "$DEMO_PORT"; do
  if port_open "$port"; then echo "scenario.sh: 127.0.0.1:$port is already in use; stop that first" >&2; exit 2; fi
done
"$SONDE" demo --listen "127.0.0.1:$DEMO_PORT" >"$OUT/demo.log" 2>&1 &
DEMO_PID=$!
for ((i = 0; i < 300; i++)); do port_open "$DEMO_PORT" && break; [[ -d "/proc/$DEMO_PID" ]] || break; sleep 0.05; done
port_open "$DEMO_PORT" || { echo "scenario.sh: sonde demo did not come up; log:" >&2; cat "$OUT/demo.log" >&2; exit 1; }
DEMO="http://127.0.0.1:$DEMO_PORT"
grab() { # grab NAME PATH [TOKEN]: body to bodies/NAME.json, its Server-Timing to st-NAME.conf
  local name="$1" path="$2" tok="${3:-}" st
  local auth=(); [[ -n "$tok" ]] && auth=(-H "Authorization: Bearer $tok")
  curl -fsS --max-time 10 "${auth[@]}" -D "$OUT/$name.headers" -o "$NGX/bodies/$name.json" "$DEMO$path" ||
    { echo "scenario.sh: GET $path from the demo failed" >&2; exit 1; }
  st="$(awk -F': ' 'tolower($1) == "server-timing" { sub(/\r$/, "", $2); print $2 }' "$OUT/$name.headers")"
  [[ "$st" =~ ^[A-Za-z0-9_.\;=,\ -]*$ ]] || { echo "scenario.sh: unexpected Server-Timing from $path: $st" >&2; exit 1; }
  printf 'add_header Server-Timing "%s";\n' "$st" >"$NGX/st-$name.conf"
}
grab identities /demo/identities
read -r USER_ID TOKEN < <(python3 -c '
import json, sys
w = next(i for i in json.load(open(sys.argv[1])) if i["name"] == "whale")
print(w["user_id"], w["token"])' "$NGX/bodies/identities.json")
grab profile "/users/$USER_ID/profile" "$TOKEN"
STARTUP_ID="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["recent_investments"][0]["startup_id"])' "$NGX/bodies/profile.json")"
grab total "/users/$USER_ID/investments/total" "$TOKEN"
grab startup "/startups/$STARTUP_ID" "$TOKEN"
stop_pid "$DEMO_PID"; wait "$DEMO_PID" 2>/dev/null || true; DEMO_PID=""
echo "scenario.sh: demo answers taken (whale = user $USER_ID, first startup $STARTUP_ID; profile body $(wc -c <"$NGX/bodies/profile.json") bytes)" >&2

# --- target ---
cp "$ROOT/bench/nginx-scenario.conf" "$NGX/nginx.conf"
sed -i "s/127\.0\.0\.1:18130/127.0.0.1:$PORT/" "$NGX/nginx.conf"
taskset -c "$SERVER_CPU" nginx -p "$NGX/" -c "$NGX/nginx.conf" -e stderr >"$OUT/nginx.log" 2>&1 &
NGX_PID=$!
for ((i = 0; i < 100; i++)); do port_open "$PORT" && break; sleep 0.05; done
port_open "$PORT" || { echo "scenario.sh: nginx did not come up; log:" >&2; cat "$OUT/nginx.log" >&2; exit 1; }
code="$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$BASE/users/$USER_ID/profile")"
[[ "$code" == 200 ]] || { echo "scenario.sh: nginx answered $code for the profile" >&2; exit 1; }
echo "scenario.sh: nginx pid $NGX_PID on $BASE (cpu $SERVER_CPU); tools on cpu $TOOL_CPU; ${REPS}x${DUR}s, $VUS users" >&2

# run_tool NAME REP CMD...: runs CMD pinned to TOOL_CPU under a wrapper shell (stopped after
# LIMIT s); writes $OUT/NAME.REP.{out,err} and "cpu_s rc" to $OUT/NAME.REP.cpu, the CPU being
# the wrapper's cutime + cstime from /proc/<wrapper>/stat after it reaped the tool.
run_tool() {
  local name="$1" rep="$2"; shift 2
  local f="$OUT/$name.$rep" wpid st=0
  echo "$*" >"$f.cmd"
  # shellcheck disable=SC2016
  bash -c '
    out="$1" err="$2" cpu="$3" hz="$4"; shift 4
    "$@" >"$out" 2>"$err" & t=$!
    trap "kill -TERM $t 2>/dev/null" TERM
    wait $t; rc=$?
    read -r -a s </proc/$$/stat   # field 16, 17 (cutime, cstime): the reaped tool
    awk -v u="${s[15]}" -v k="${s[16]}" -v hz="$hz" -v rc="$rc" "BEGIN { printf \"%.3f %d\n\", (u + k) / hz, rc }" >"$cpu"
  ' _ "$f.out" "$f.err" "$f.cpu" "$CLK_TCK" taskset -c "$TOOL_CPU" "$@" &
  wpid=$!
  TOOL_PID=$wpid
  local t0=$SECONDS
  while [[ -d "/proc/$wpid" ]] && ((SECONDS - t0 < LIMIT)); do sleep 0.2; done
  if [[ -d "/proc/$wpid" ]]; then
    echo "scenario.sh: [$name #$rep] still running after ${LIMIT}s, stopping it" >&2
    stop_pid "$wpid"
  fi
  wait "$wpid" || st=$?
  TOOL_PID=""
  [[ -s "$f.cpu" ]] || echo "0 ${st:-124}" >"$f.cpu"
}

# counts NAME REP KIND -> "requests errors note" from the tool's own output
counts() {
  python3 - "$OUT/$1.$2.out" "$OUT/$1.$2.err" "$3" <<'PY'
import json, re, sys
out, err, kind = sys.argv[1], sys.argv[2], sys.argv[3]
text = open(out, errors="replace").read()
def tail():
    e = open(err, errors="replace").read().strip().splitlines()
    return ("; ".join(e[-2:]) if e else "no output")[:160].replace("|", "/")
try:
    if kind == "sonde":
        d = json.loads(text)
        notes = []
        th = d.get("thresholds") or []
        bad = [t for t in th if (t.get("outcome") or t.get("result") or t.get("status")) not in ("pass", "fail")]
        if th:
            notes.append(f"{len(th) - len(bad)}/{len(th)} thresholds evaluated" + ("" if not bad else " (NOT ALL)"))
        if not d.get("passed", True):
            notes.append("gate failed: " + "; ".join(d.get("failures") or [])[:120])
        print(d["requests"], d["errors"], ", ".join(notes) or "-")
    elif kind == "goose":
        m = re.search(r'^BENCH (\{.*\})$', text, re.M)
        d = json.loads(m.group(1))
        print(d["requests"], d["failures"], "-")
    elif kind == "locust":
        d = json.loads(text)
        print(sum(x["num_requests"] for x in d), sum(x["num_failures"] for x in d), "-")
except Exception as e:  # the tool failed: say so in the row
    print("-", "-", f"no result ({type(e).__name__}): {tail()}")
PY
}

ROWS=()   # "label|kind|name"
add_rows() { ROWS+=("$1|$2|$3"); }
SCN="$ROOT/scenarios/profile-load.yaml"
for ((rep = 1; rep <= REPS; rep++)); do
  run_tool scenario "$rep" "$SONDE" run "$SCN" --target "$BASE" --vus "$VUS" --duration "${DUR}s" --format json --quiet
  run_tool oneurl "$rep" "$SONDE" run --url "$BASE/users/$USER_ID/profile" -H "Authorization: Bearer $TOKEN" \
    --vus "$VUS" --duration "${DUR}s" --format json --quiet
  for p in $PEERS; do
    case "$p" in
      goose)
        run_tool goose "$rep" "$GOOSE_BIN" --host "$BASE" --users "$VUS" --increase-rate "$VUS" --run-time "${DUR}s" \
          --no-reset-metrics --quiet ;;
      locust)
        run_tool locust "$rep" "$VENV/bin/locust" -f "$ROOT/bench/locust/locustfile.py" --headless --users "$VUS" \
          --spawn-rate "$VUS" -t "${DUR}s" --host "$BASE" --only-summary --json --skip-log ;;
    esac
  done
done
add_rows "sonde scenario (profile-load.yaml)" sonde scenario
add_rows "sonde one URL (GET /users/$USER_ID/profile)" sonde oneurl
for p in $PEERS; do
  case "$p" in
    goose) add_rows "goose $(awk '/^name = "goose"/{getline; gsub(/[^0-9.]/, ""); print; exit}' "$ROOT/bench/goose/Cargo.lock") (total, startup sequential)" goose goose ;;
    locust) add_rows "Locust $LOCUST_VERSION FastHttpUser (sequential)" locust locust ;;
  esac
done

# per rep: requests, errors, cpu_s, rc, req per CPU-s; the row shows the median rep (by req/CPU-s)
declare -A RATE
TABLE=()
for r in "${ROWS[@]}"; do
  IFS='|' read -r label kind name <<<"$r"
  lines=()
  for ((rep = 1; rep <= REPS; rep++)); do
    read -r req err note < <(counts "$name" "$rep" "$kind")
    read -r cpu rc <"$OUT/$name.$rep.cpu"
    rate="$(awk -v r="$req" -v c="$cpu" 'BEGIN{ if (r ~ /^[0-9]+$/ && c > 0) printf "%.0f", r / c; else print 0 }')"
    lines+=("$rate|$req|$err|$cpu|$rc|$note")
  done
  med="$(printf '%s\n' "${lines[@]}" | sort -t'|' -k1,1n | sed -n "$(((REPS + 1) / 2))p")"
  IFS='|' read -r rate req err cpu rc note <<<"$med"
  all="$(printf '%s\n' "${lines[@]}" | cut -d'|' -f1 | paste -sd/ -)"
  [[ "$rc" == 0 ]] || note="exit $rc; $note"
  RATE["$name"]="$rate"
  TABLE+=("$name|$label|$rate|$all|$req|$err|$cpu|$note")
done
ratio() { awk -v a="$1" -v b="${2:-0}" 'BEGIN{ if (a > 0 && b > 0) printf "%.2f×", a / b; else print "-" }'; }
SC="${RATE[scenario]:-0}"
{
  echo "## Scenarios beside goose and Locust (issue 15, goal 4) — bench/scenario.sh$( ((SMOKE)) && echo " --smoke")"
  echo
  echo "$(machine_line);"
  echo "$SONDE_VERSION, commit $SONDE_COMMIT (binary built $SONDE_BUILT); nginx $(nginx -v 2>&1 | sed 's|.*/||'), 1 worker on CPU $SERVER_CPU serving the demo's answers for the flow (taken from \`sonde demo\` at bench time; profile body $(wc -c <"$NGX/bodies/profile.json") bytes); each tool on CPU $TOOL_CPU with $VUS users, ${REPS}x${DUR} s, median rep shown."
  echo
  echo "| tool | req / tool CPU-s | reps | requests | errors | tool CPU s | notes |"
  echo "|---|---:|---|---:|---:|---:|---|"
  for t in "${TABLE[@]}"; do
    IFS='|' read -r name label rate all req err cpu note <<<"$t"
    echo "| $label | $rate | $all | $req | $err | $cpu | $note |"
  done
  echo
  echo "sonde scenario / sonde one URL: **$(ratio "$SC" "${RATE[oneurl]:-0}")** (goal ≥ 0.8×)  "
  [[ -n "${RATE[goose]:-}" ]] && echo "sonde scenario / goose: **$(ratio "$SC" "${RATE[goose]}")** (goal ≥ 3×)  "
  [[ -n "${RATE[locust]:-}" ]] && echo "sonde scenario / Locust: **$(ratio "$SC" "${RATE[locust]}")** (goal ≥ 15×)  "
  echo
  echo "Requests: every HTTP request the tool counted (goose and Locust include each user's one identities request; sonde's setup runs it once, outside the count). Tool CPU s: utime + stime of the whole tool process, start-up included (Python's imports for Locust)."
  for n in "${NOTES[@]}"; do echo; echo "Note: $n"; done
  echo
  echo "Wall time $((SECONDS - T_START)) s. Raw outputs: \`${OUT#"$ROOT"/}/\`."
} | tee "$REPORT"
