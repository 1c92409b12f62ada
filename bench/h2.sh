#!/usr/bin/env bash
# Issue 15, goal 2 (HTTP/2): requests per tool CPU-second over TLS + HTTP/2 against nginx,
# sonde beside h2load (Debian nghttp2-client) and, when installed, oha --http2, at 1 stream per
# connection (50 connections) and 10 concurrent streams per connection (50 connections x 10).
# Loopback only; every run is bounded in time and stopped by the PID this script recorded.
#
#   bench/h2.sh           REPS=3 runs of D=5 s per tool and setting (~2 min)
#   bench/h2.sh --smoke   1 run of 2 s each (< 30 s)
#
# Knobs (environment): SONDE_BIN (default target/release/sonde, built if missing), D (5),
# REPS (3), CONNS (50), STREAMS (10), PEERS ("h2load oha"; h2load is the reference), OHA (oha
# binary), SERVER_CPU (0), TOOL_CPU (1), PORT (18110), BENCH_STATE (target/bench-state).
# Target: its own nginx (1 worker on SERVER_CPU) on 127.0.0.1:$PORT, TLS with a self-signed
# certificate made here by openssl, `http2`, a static 200 "ok\n" (like the fast target of the
# shared nginx.conf). Every tool runs on TOOL_CPU with one thread.
# CPU seconds: utime + stime of the tool, read from /proc/<pid>/stat of the shell that waited
# for it (cutime + cstime: the waited-for child's CPU time, threads included).
# Output: markdown table on stdout and in $BENCH_STATE/h2.md; raw outputs in
# $BENCH_STATE/h2/<stamp>/.
set -euo pipefail
[[ -n "${SONDE_BIN:-}" && "$SONDE_BIN" != /* ]] && SONDE_BIN="$PWD/$SONDE_BIN"   # relative to the caller
cd "$(dirname "$0")/.."
ROOT="$PWD"

SMOKE=0
for a in "$@"; do
  case "$a" in
    --smoke) SMOKE=1 ;;
    -h | --help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "h2.sh: unknown argument $a (try --help)" >&2; exit 2 ;;
  esac
done
if ((SMOKE)); then D="${D:-2}" REPS="${REPS:-1}"; fi
D="${D:-5}"
REPS="${REPS:-3}"
CONNS="${CONNS:-50}"
STREAMS="${STREAMS:-10}"
PEERS="${PEERS-h2load oha}"
SERVER_CPU="${SERVER_CPU:-0}"
TOOL_CPU="${TOOL_CPU:-1}"
PORT="${PORT:-18110}"
URL="https://127.0.0.1:$PORT/"
OHA="${OHA:-$(command -v oha || echo "$HOME/.cargo/bin/oha")}"

STATE="${BENCH_STATE:-$ROOT/target/bench-state}"
STAMP="$(date +%Y%m%d-%H%M%S)"
OUT="$STATE/h2/$STAMP"
NGX="$STATE/h2/nginx"
mkdir -p "$OUT" "$NGX/tmp"
REPORT="$STATE/h2.md"

for c in nginx openssl h2load python3; do
  command -v "$c" >/dev/null || { echo "h2.sh: $c is required (apt-get install nginx openssl nghttp2-client python3)" >&2; exit 2; }
done
PIN_SRV=() PIN_TOOL=()
if command -v taskset >/dev/null; then PIN_SRV=(taskset -c "$SERVER_CPU") PIN_TOOL=(taskset -c "$TOOL_CPU"); else
  echo "h2.sh: taskset not found, running unpinned" >&2; fi
HAVE_OHA=0
if [[ " $PEERS " == *" oha "* && -x "$OHA" ]]; then HAVE_OHA=1; fi

# --- sonde binary (snapshot, see bench/lib.sh) ---
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
sonde_snapshot "$STATE/h2/sonde"

# --- nginx: TLS + http2, self-signed certificate ---
if [[ ! -s "$NGX/cert.pem" ]]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 \
    -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$NGX/key.pem" -out "$NGX/cert.pem" 2>/dev/null
fi
# nginx >= 1.25.1 spells it `http2 on;`, older ones `listen ... http2`.
NGX_VER="$(nginx -v 2>&1 | sed -n 's|.*nginx/\([0-9.]*\).*|\1|p')"
if [[ "$(printf '%s\n1.25.1\n' "$NGX_VER" | sort -V | head -1)" == "1.25.1" ]]; then
  LISTEN="listen 127.0.0.1:$PORT ssl backlog=4096; http2 on;"
else
  LISTEN="listen 127.0.0.1:$PORT ssl http2 backlog=4096;"
fi
cat >"$NGX/nginx.conf" <<EOF
# Written by bench/h2.sh.
worker_processes 1;
daemon off;
master_process on;
pid nginx.pid;
error_log stderr warn;
worker_rlimit_nofile 4096;
events { worker_connections 2048; use epoll; multi_accept on; }
http {
    access_log off;
    server_tokens off;
    default_type text/plain;
    keepalive_requests 1000000000;
    keepalive_timeout 300s;
    http2_max_requests 1000000000;
    http2_max_concurrent_streams 128;
    tcp_nodelay on;
    client_body_temp_path tmp/client_body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;
    ssl_certificate cert.pem;
    ssl_certificate_key key.pem;
    ssl_protocols TLSv1.3;
    server {
        $LISTEN
        location / { return 200 "ok\n"; }
    }
}
EOF
NGX_PID=""
stop_nginx() { [[ -n "$NGX_PID" ]] && kill "$NGX_PID" 2>/dev/null && wait "$NGX_PID" 2>/dev/null; NGX_PID=""; }
trap stop_nginx EXIT
setsid "${PIN_SRV[@]}" nginx -p "$NGX/" -c "$NGX/nginx.conf" -e stderr 2>"$OUT/nginx.err" &
NGX_PID=$!
for _ in $(seq 50); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  kill -0 "$NGX_PID" 2>/dev/null || { echo "h2.sh: nginx did not start:" >&2; cat "$OUT/nginx.err" >&2; exit 3; }
  sleep 0.1
done

# timed NAME CMD...: run CMD pinned to TOOL_CPU, bounded to D + 20 s; writes NAME.out and
# NAME.cpu (utime + stime in seconds, from the waiting shell's cutime + cstime).
CLK_TCK="$(getconf CLK_TCK)"
timed() {
  local name="$1"; shift
  "${PIN_TOOL[@]}" bash -c '"$@" >"$0.out" 2>&1; st=$?; read -ra f </proc/$$/stat; echo "${f[15]} ${f[16]}" >"$0.ticks"; exit $st' \
    "$OUT/$name" timeout -k 5 "$((D + 20))" "$@" || true
  awk -v t="$CLK_TCK" '{printf "%.3f\n", ($1 + $2) / t}' "$OUT/$name.ticks" >"$OUT/$name.cpu"
}

# Requests completed (status 200) per run, from each tool's own output.
req_h2load() { awk '/^requests:/{for(i=1;i<=NF;i++) if($(i)=="succeeded,") {print $(i-1); exit}}' "$OUT/$1.out"; }
req_sonde() {
  python3 -c 'import json,sys; h=json.load(open(sys.argv[1]))["http"]; print(h["requests"]-h["errors"])' "$OUT/$1.json" 2>/dev/null || echo 0
}
req_oha() {
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(sum(d.get("statusCodeDistribution",{}).values()))' "$OUT/$1.out" 2>/dev/null || echo 0
}

# The settings: (label, streams per connection).
SETTINGS=("1:$CONNS x 1 stream" "$STREAMS:$CONNS x $STREAMS streams")
declare -A RATE
run_one() {   # TOOL M REP
  local tool="$1" m="$2" rep="$3" name="$1-m$2-$3" req
  case "$tool" in
    h2load)
      timed "$name" h2load -c "$CONNS" -m "$m" -t 1 -D "$D" "$URL"
      req="$(req_h2load "$name")" ;;
    sonde)
      local extra=()
      if ((m > 1)); then extra=(--streams-per-connection "$m"); fi
      timed "$name" "$SONDE" run --url "$URL" -k --vus "$((CONNS * m))" "${extra[@]}" --threads 1 \
        --duration "${D}s" -q --out "$OUT/$name.json"
      req="$(req_sonde "$name")" ;;
    oha)
      timed "$name" "$OHA" --http2 --insecure --no-tui --output-format json -c "$CONNS" -p "$m" -z "${D}s" "$URL"
      req="$(req_oha "$name")" ;;
  esac
  local cpu; cpu="$(cat "$OUT/$name.cpu")"
  echo "$req $cpu" >"$OUT/$name.res"
  awk -v r="$req" -v c="$cpu" 'BEGIN{ if (c > 0) printf "%.0f\n", r / c; else print 0 }'
}

TOOLS=(h2load sonde)
((HAVE_OHA)) && TOOLS+=(oha)
for s in "${SETTINGS[@]}"; do
  m="${s%%:*}"
  for tool in "${TOOLS[@]}"; do
    vals=()
    for rep in $(seq "$REPS"); do
      vals+=("$(run_one "$tool" "$m" "$rep")")
      echo "h2.sh: $tool m=$m run $rep: ${vals[-1]} req/CPU-s" >&2
    done
    RATE["$tool:$m"]="$(printf '%s\n' "${vals[@]}" | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}')"
  done
done
stop_nginx

{
  echo "### HTTP/2 over TLS: requests per tool CPU-second (bench/h2.sh)"
  echo
  echo "$(machine_line). nginx $NGX_VER (1 worker, CPU $SERVER_CPU, TLS 1.3, http2, static 200 \"ok\\n\"); each tool on CPU $TOOL_CPU, one thread; medians of $REPS x ${D} s. $SONDE_VERSION ($SONDE_COMMIT, built $SONDE_BUILT)."
  echo
  echo "| setting | tool | command | req per tool CPU-s | vs h2load |"
  echo "|---|---|---|---:|---:|"
  for s in "${SETTINGS[@]}"; do
    m="${s%%:*}" label="${s#*:}"
    base="${RATE["h2load:$m"]}"
    for tool in "${TOOLS[@]}"; do
      v="${RATE["$tool:$m"]}"
      case "$tool" in
        h2load) cmd="h2load -c $CONNS -m $m -t 1 -D $D" ;;
        sonde)
          cmd="sonde run -k --vus $((CONNS * m)) --threads 1"
          if ((m > 1)); then cmd+=" --streams-per-connection $m"; fi ;;
        oha) cmd="oha --http2 -c $CONNS -p $m" ;;
      esac
      ratio="$(awk -v a="$v" -v b="$base" 'BEGIN{ if (b > 0) printf "%.2fx", a / b; else print "-" }')"
      echo "| $label | $tool | \`$cmd\` | $v | $ratio |"
    done
  done
} | tee "$REPORT"
