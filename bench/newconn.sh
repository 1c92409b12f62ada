#!/usr/bin/env bash
# Issue 15, goal 3 (new connections): a fresh connection per request, sonde beside oha.
#   oha --disable-keepalive -c C -z Ds    vs    sonde run --url URL --connection new --vus C --duration Ds -k
# over HTTPS (TLS handshakes per tool CPU-second: the goal) and plain HTTP (TCP connects).
# Both send `Connection: close` on HTTP/1.1 and both resume TLS sessions from an in-memory
# cache (rustls' default in oha; sonde's default, --no-tls-resumption turns it off): the
# handshakes are "returning client" ones on both sides. Loopback only; every run is bounded in
# time and stopped by the PID this script recorded, never by name.
#
#   bench/newconn.sh           REPS=3 runs of DUR=5 s per tool and scheme (~1 min)
#   bench/newconn.sh --smoke   one 2 s run per tool and scheme (< 30 s)
#
# Knobs (environment): SONDE_BIN (default target/release/sonde, built if missing), OHA (oha
# binary; installed with `cargo install oha --locked --version 1.16.0` when missing, not in
# --smoke), OHA_THREADS (1), CONNS (50), DUR (5), REPS (3), SCHEMES ("https http"),
# RESUME (1; 0 runs sonde with --no-tls-resumption, oha cannot turn it off), KEY (ec: P-256
# certificate; rsa: RSA-2048), PORT_HTTP (18120), PORT_HTTPS (18121), SERVER_CPU (0),
# TOOL_CPU (1), BENCH_STATE (target/bench-state).
# Target: its own nginx (1 worker on SERVER_CPU) returning `ok`, self-signed certificate made
# with openssl in $BENCH_STATE/newconn/. Tool CPU = utime+stime of the tool from
# /proc/<pid>/stat (the waiting shell's cutime+cstime once the tool is reaped: exact, no
# sampling). Output: markdown table on stdout and in $BENCH_STATE/newconn.md; raw outputs in
# $BENCH_STATE/newconn/<stamp>/.
set -euo pipefail
[[ -n "${SONDE_BIN:-}" && "$SONDE_BIN" != /* ]] && SONDE_BIN="$PWD/$SONDE_BIN"   # relative to the caller
cd "$(dirname "$0")/.."
ROOT="$PWD"

SMOKE=0
for a in "$@"; do
  case "$a" in
    --smoke) SMOKE=1 ;;
    -h | --help) sed -n '2,23p' "$0"; exit 0 ;;
    *) echo "newconn.sh: unknown argument $a (try --help)" >&2; exit 2 ;;
  esac
done
if ((SMOKE)); then DUR="${DUR:-2}" REPS="${REPS:-1}"; fi
CONNS="${CONNS:-50}"
DUR="${DUR:-5}"
REPS="${REPS:-3}"
SCHEMES="${SCHEMES:-https http}"
RESUME="${RESUME:-1}"
KEY="${KEY:-ec}"
PORT_HTTP="${PORT_HTTP:-18120}"
PORT_HTTPS="${PORT_HTTPS:-18121}"
SERVER_CPU="${SERVER_CPU:-0}"
TOOL_CPU="${TOOL_CPU:-1}"
OHA_THREADS="${OHA_THREADS:-1}"
OHA="${OHA:-$(command -v oha || echo "$HOME/.cargo/bin/oha")}"
TICK="$(getconf CLK_TCK)"

STATE="${BENCH_STATE:-$ROOT/target/bench-state}"
STAMP="$(date +%Y%m%d-%H%M%S)"
OUT="$STATE/newconn/$STAMP"
NGX="$STATE/newconn/nginx"
mkdir -p "$OUT" "$NGX/tmp" "$NGX/logs"
REPORT="$STATE/newconn.md"
T_START=$SECONDS
NOTES=()

for c in nginx openssl python3; do
  command -v "$c" >/dev/null || { echo "newconn.sh: $c is required (apt-get install nginx openssl python3)" >&2; exit 2; }
done
PIN_SRV=() PIN_TOOL=()
if command -v taskset >/dev/null; then PIN_SRV=(taskset -c "$SERVER_CPU") PIN_TOOL=(taskset -c "$TOOL_CPU"); else
  echo "newconn.sh: taskset not found, running unpinned" >&2; NOTES+=("taskset not found: nothing was pinned"); fi
if [[ ! -x "$OHA" ]] && ((!SMOKE)); then
  echo "newconn.sh: oha not found; cargo install oha --locked --version 1.16.0" >&2
  cargo install oha --locked --version 1.16.0 && OHA="$HOME/.cargo/bin/oha"
fi
[[ -x "$OHA" ]] || NOTES+=("oha not found ($OHA): sonde alone, no ratio (cargo install oha --locked --version 1.16.0)")

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
sonde_snapshot "$STATE/newconn/sonde"

HARD_NOFILE="$(ulimit -Hn)"
if [[ "$HARD_NOFILE" == unlimited ]]; then ulimit -n 1048576 2>/dev/null || true; else ulimit -n "$HARD_NOFILE"; fi

# --- certificate (self-signed, for 127.0.0.1 and localhost) ---
CERT="$NGX/cert.pem" PKEY="$NGX/key.pem"
if [[ ! -s "$CERT" || ! -s "$PKEY" || "$(cat "$NGX/key.kind" 2>/dev/null)" != "$KEY" ]]; then
  case "$KEY" in
    ec) kopt=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1) ;;
    rsa) kopt=(-newkey rsa:2048) ;;
    *) echo "newconn.sh: KEY is ec or rsa" >&2; exit 2 ;;
  esac
  openssl req -x509 "${kopt[@]}" -nodes -days 30 -subj /CN=localhost \
    -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" -keyout "$PKEY" -out "$CERT" 2>"$OUT/openssl.log"
  echo "$KEY" >"$NGX/key.kind"
fi

# --- target ---
cat >"$NGX/nginx.conf" <<EOF
# Written by bench/newconn.sh. Loopback only; one worker, pinned by the script.
worker_processes 1;
daemon off;
master_process on;
pid nginx.pid;
error_log stderr warn;
worker_rlimit_nofile 16384;
events { worker_connections 8192; use epoll; multi_accept on; }
http {
    access_log off;
    log_format reuse '\$ssl_session_reused';
    server_tokens off;
    default_type text/plain;
    tcp_nodelay on;
    client_body_temp_path tmp/client_body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;
    ssl_certificate $CERT;
    ssl_certificate_key $PKEY;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:SSL:10m;
    ssl_session_tickets on;
    server {
        listen 127.0.0.1:$PORT_HTTP backlog=4096;
        location / { return 200 "ok\n"; }
    }
    server {
        # One short line per request ("r" when the TLS session was resumed, "." when not): how
        # many handshakes each tool resumed, as the server saw them.
        listen 127.0.0.1:$PORT_HTTPS ssl backlog=4096;
        access_log $NGX/logs/tls.log reuse;
        location / { return 200 "ok\n"; }
    }
}
EOF

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

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$PORT_HTTP" "$PORT_HTTPS"; do
  if port_open "$p"; then echo "newconn.sh: 127.0.0.1:$p is already in use; stop that first" >&2; exit 2; fi
done
"${PIN_SRV[@]}" nginx -p "$NGX/" -c "$NGX/nginx.conf" -e stderr >"$OUT/nginx.log" 2>&1 &
NGX_PID=$!
for ((i = 0; i < 100; i++)); do port_open "$PORT_HTTPS" && break; sleep 0.05; done
port_open "$PORT_HTTPS" || { echo "newconn.sh: nginx did not come up; log:" >&2; cat "$OUT/nginx.log" >&2; exit 1; }
echo "newconn.sh: nginx pid $NGX_PID on :$PORT_HTTP (http) and :$PORT_HTTPS (https), cpu $SERVER_CPU; state in $OUT" >&2

# wait_quiet: let the previous run's TIME_WAIT sockets thin out a little (bounded, 10 s), so a
# run does not start with the port range still full of the last one's.
wait_quiet() {
  local i n
  command -v ss >/dev/null || return 0
  for ((i = 0; i < 20; i++)); do
    n="$(ss -Htan state time-wait | wc -l)"
    ((n < 5000)) && return 0
    sleep 0.5
  done
}

# probe NAME CMD...: CMD pinned to TOOL_CPU, killed (by PID) after DUR + 30 s. Writes
# $OUT/NAME.{out,err,cmd,rc,ticks}; ticks = the tool's utime+stime in clock ticks, read from
# /proc/<pid>/stat of the shell that reaped it (cutime+cstime, fields 16 and 17).
probe() {
  local name="$1" wpid rc=0 i limit=$((DUR + 30))
  shift
  wait_quiet
  echo "newconn.sh: [$name] $*" >&2
  echo "$*" >"$OUT/$name.cmd"
  bash -c '"$@" >"$OUT_F.out" 2>"$OUT_F.err"; rc=$?; read -r -a s </proc/$$/stat; echo $((s[15] + s[16])) >"$OUT_F.ticks"; exit $rc' \
    probe "${PIN_TOOL[@]}" "$@" &
  wpid=$!
  TOOL_PID="$wpid"
  for ((i = 0; i < limit * 10; i++)); do [[ -d "/proc/$wpid" ]] || break; sleep 0.1; done
  if [[ -d "/proc/$wpid" ]]; then
    echo "newconn.sh: [$name] still running after ${limit}s, stopping it" >&2
    pkill -TERM -P "$wpid" 2>/dev/null || true
    stop_pid "$wpid"
  fi
  wait "$wpid" || rc=$?
  TOOL_PID=""
  echo "$rc" >"$OUT/$name.rc"
}
export OUT_F=""

# count NAME KIND -> "connections errors resumed detail" (sonde: its --out result file; oha:
# its JSON on stdout)
count() {
  local f="$OUT/$1.out"
  [[ "$2" == sonde ]] && f="$OUT/$1.json"
  python3 - "$f" "$OUT/$1.err" "$2" <<'PY'
import json, sys
out, err, kind = sys.argv[1:4]
try:
    d = json.load(open(out))
except Exception:
    e = open(err, errors="replace").read().strip().splitlines()
    print("- - - " + ("; ".join(e[-2:]) if e else "no output")[:160].replace("|", "/"))
    sys.exit(0)
if kind == "sonde":
    steps = d.get("steps") or []
    req = sum(s.get("requests", 0) for s in steps)
    errs = sum(s.get("errors", 0) for s in steps)
    resumed = sum(s.get("tls_resumed", 0) for s in steps)
    reused = sum(s.get("reused", 0) for s in steps)
    classes = {}
    for s in steps:
        for k, v in (s.get("error_classes") or {}).items():
            classes[k] = classes.get(k, 0) + v
    detail = "; ".join(f"{k}: {v}" for k, v in classes.items())
    if reused:
        detail = (detail + "; " if detail else "") + f"{reused} reused (should be 0)"
    print(req, errs, resumed, detail or "-")
else:
    codes = d.get("statusCodeDistribution") or {}
    errs = {k: v for k, v in (d.get("errorDistribution") or {}).items() if "aborted due to deadline" not in k}
    req = sum(codes.values())
    bad = sum(v for k, v in codes.items() if not str(k).startswith("2")) + sum(errs.values())
    detail = "; ".join(f"{k}: {v}" for k, v in list(errs.items())[:2])
    print(req, bad, "?", (detail or "-").replace("|", "/"))
PY
}

declare -A RATE CPU CONNS_OF ERRS RESUMED DETAIL
tools=(sonde)
[[ -x "$OHA" ]] && tools=(oha sonde)
for scheme in $SCHEMES; do
  case "$scheme" in
    https) url="https://127.0.0.1:$PORT_HTTPS/" ;;
    http) url="http://127.0.0.1:$PORT_HTTP/" ;;
    *) echo "newconn.sh: SCHEMES holds https and/or http" >&2; exit 2 ;;
  esac
  for ((rep = 1; rep <= REPS; rep++)); do
    for tool in "${tools[@]}"; do
      name="$scheme-$tool-$rep"
      OUT_F="$OUT/$name"
      case "$tool" in
        oha)
          oha_args=(--no-tui --output-format json --disable-keepalive --insecure)
          [[ "$OHA_THREADS" != 0 ]] && oha_args+=(--worker-threads "$OHA_THREADS")
          : >"$NGX/logs/tls.log"   # nginx appends (O_APPEND): emptying it starts this run's count
          probe "$name" "$OHA" "${oha_args[@]}" -c "$CONNS" -z "${DUR}s" "$url" ;;
        sonde)
          s_args=(run --url "$url" --connection new --vus "$CONNS" --duration "${DUR}s" -k --quiet --out "$OUT/$name.json")
          ((RESUME)) || s_args+=(--no-tls-resumption)
          : >"$NGX/logs/tls.log"
          probe "$name" "$SONDE" "${s_args[@]}" ;;
      esac
      read -r n e r detail < <(count "$name" "$tool")
      if [[ "$scheme" == https ]]; then
        r="$(grep -c '^r$' "$NGX/logs/tls.log" || true)"
      else
        r="-"
      fi
      ticks="$(cat "$OUT/$name.ticks" 2>/dev/null || echo 0)"
      rc="$(cat "$OUT/$name.rc")"
      ((rc == 0)) || detail="exit $rc; $detail"
      cpu="$(awk -v t="$ticks" -v hz="$TICK" 'BEGIN{printf "%.3f", t / hz}')"
      # Answered requests only, for both tools: a failed connect is cheap and must not count.
      RATE[$name]="$(awk -v n="$n" -v e="$e" -v c="$cpu" 'BEGIN{ if (c > 0 && n ~ /^[0-9]+$/) printf "%.0f", (n - (e ~ /^[0-9]+$/ ? e : 0)) / c; else print 0 }')"
      CPU[$name]="$cpu" CONNS_OF[$name]="$n" ERRS[$name]="$e" RESUMED[$name]="$r" DETAIL[$name]="$detail"
      echo "newconn.sh: [$name] $n connections, $e errors, resumed $r, ${cpu} CPU s -> ${RATE[$name]} per CPU-s" >&2
    done
  done
done

# median NAME-PREFIX FIELD: the median over reps of RATE/CPU/... for scheme-tool
median() {
  local -n arr="$2"
  local i vals=()
  for ((i = 1; i <= REPS; i++)); do vals+=("${arr[$1-$i]:-0}"); done
  printf '%s\n' "${vals[@]}" | sort -g | awk '{v[NR]=$1} END{ if (NR % 2) print v[(NR+1)/2]; else printf "%.3f\n", (v[NR/2]+v[NR/2+1])/2 }'
}
mid_rep() { # the rep whose rate is the median (for its counts and notes)
  local i best=1 m; m="$(median "$1" RATE)"
  for ((i = 1; i <= REPS; i++)); do [[ "${RATE[$1-$i]:-0}" == "$m" ]] && best=$i; done
  echo "$best"
}

{
  echo "## New connections (issue 15, goal 3) — bench/newconn.sh$( ((SMOKE)) && echo " --smoke")"
  echo
  echo "$(machine_line);"
  echo "$SONDE_VERSION, commit $SONDE_COMMIT (binary built $SONDE_BUILT); $([[ -x "$OHA" ]] && "$OHA" --version 2>/dev/null | head -1 || echo "no oha"); nginx $(nginx -v 2>&1 | sed 's|.*/||'), 1 worker on CPU $SERVER_CPU, $KEY certificate; tools on CPU $TOOL_CPU."
  echo "$CONNS concurrent connections, a new one per request (\`Connection: close\` from both tools), ${DUR} s, median of $REPS; TLS session resumption $( ((RESUME)) && echo "on in both (in-memory tickets)" || echo "off in sonde (--no-tls-resumption), on in oha")."
  echo "*conns/CPU-s* = connections (= requests) per second of the tool's own CPU (utime+stime from /proc/<pid>/stat); *TLS resumed* = handshakes nginx resumed (\$ssl_session_reused); each row is the median rep's counts."
  echo
  echo "| scheme | tool | connections | errors | TLS resumed (nginx) | tool CPU s | conns/s (wall) | conns/CPU-s | vs oha | notes |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"
  for scheme in $SCHEMES; do
    oha_rate=""
    [[ -x "$OHA" ]] && oha_rate="$(median "$scheme-oha" RATE)"
    for tool in "${tools[@]}"; do
      k="$scheme-$tool"; m="$(mid_rep "$k")"; r="$(median "$k" RATE)"
      vs="$(awk -v a="$r" -v b="$oha_rate" 'BEGIN{ if (b + 0 > 0) printf "%.2f×", a / b; else print "-" }')"
      wall="$(awk -v n="${CONNS_OF[$k-$m]}" -v d="$DUR" 'BEGIN{ if (n ~ /^[0-9]+$/) printf "%.0f", n / d; else print "-" }')"
      echo "| $scheme | $tool | ${CONNS_OF[$k-$m]} | ${ERRS[$k-$m]} | ${RESUMED[$k-$m]} | ${CPU[$k-$m]} | $wall | $r | $vs | ${DETAIL[$k-$m]} |"
    done
  done
  for n in "${NOTES[@]}"; do echo; echo "Note: $n"; done
  echo
  echo "Wall time $((SECONDS - T_START)) s. Raw outputs: \`${OUT#"$ROOT"/}/\`."
} | tee "$REPORT"
