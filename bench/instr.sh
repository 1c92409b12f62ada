#!/usr/bin/env bash
# User-space instructions (valgrind callgrind) and system calls (strace -c -f) per request of
# sonde and wrk against a local nginx answering "ok" with keep-alive: the README's "where does a
# request's CPU go" rows. Instruction counts do not depend on machine load, so this may run
# beside other work; wall-clock figures come from bench/run.sh.
#   bench/instr.sh           20,000 requests per sonde run, wrk for 3 s and 6 s (~5 min)
#   bench/instr.sh --smoke   2,000 requests, wrk 1 s and 2 s (< 30 s)
# Per request = (run of 2N - run of N) / N, so start-up and report writing cancel out. Under
# valgrind a run lasts ~50x longer, so sonde's once-a-second work (interval merges, histogram
# resets) weighs more per request than it does at full speed: the sonde figure is an upper bound.
# Loopback only; nginx on INSTR_PORT (default 18190) pinned to CPU 0, the tool to CPU 1.
# SONDE_BIN picks the binary (default target/release/sonde). Table on stdout and in
# target/bench-state/instr.md.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh

N=20000 WRK_D=3 STRACE_N=20000
if [[ "${1:-}" == "--smoke" ]]; then N=2000 WRK_D=1 STRACE_N=2000; fi
PORT="${INSTR_PORT:-18190}"

need_apt=()
command -v valgrind >/dev/null || need_apt+=(valgrind)
command -v strace >/dev/null || need_apt+=(strace)
command -v wrk >/dev/null || need_apt+=(wrk)
command -v nginx >/dev/null || need_apt+=(nginx)
if ((${#need_apt[@]})); then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi

work="$(mktemp -d /tmp/sonde-instr.XXXXXX)"
mkdir -p "$work/logs" "$work/tmp"
cat >"$work/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid nginx.pid;
error_log logs/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path tmp; proxy_temp_path tmp; fastcgi_temp_path tmp;
    uwsgi_temp_path tmp; scgi_temp_path tmp;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$PORT backlog=4096;
        location / { default_type text/plain; return 200 "ok\n"; }
    }
}
EOF
if curl -fsS -o /dev/null "http://127.0.0.1:$PORT/" 2>/dev/null; then
  echo "bench: something already answers on 127.0.0.1:$PORT (set INSTR_PORT)" >&2; exit 2
fi
taskset -c 0 nginx -p "$work/" -c "$work/nginx.conf" &
NGX=$!
cleanup() { kill "$NGX" 2>/dev/null || true; wait "$NGX" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
for _ in $(seq 50); do
  curl -fsS -o /dev/null "http://127.0.0.1:$PORT/" 2>/dev/null && break
  sleep 0.1
done
curl -fsS -o /dev/null "http://127.0.0.1:$PORT/" && kill -0 "$NGX" 2>/dev/null || { echo "bench: nginx did not answer on $PORT" >&2; exit 2; }

sonde_snapshot "$work/sonde"
URL="http://127.0.0.1:$PORT/"

# instructions of one callgrind run: prints the "I refs" total.
refs() { grep -E 'I +refs:' "$1" | tail -1 | awk '{gsub(",", "", $NF); print $NF}'; }

sonde_instr() {
  local n="$1" out="$work/cg-sonde-$1"
  timeout 900 taskset -c 1 valgrind --tool=callgrind --callgrind-out-file="$out.cg" \
    "$SONDE" run --url "$URL" --vus 1 -n "$n" --threads 1 --format json --quiet \
    >"$out.json" 2>"$out.err"
  # A run that did not complete its N requests cleanly would still give a plausible count.
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); h=d["http"]; sys.exit(0 if h["requests"]==int(sys.argv[2]) and h["errors"]==0 else 1)' \
    "$out.json" "$n" || { echo "bench: sonde's callgrind run of $n requests did not complete cleanly (see $out.err)" >&2; exit 2; }
  refs "$out.err"
}
s1=$(sonde_instr "$N")
s2=$(sonde_instr $((2 * N)))
sonde_per=$(((s2 - s1) / N))

wrk_instr() {
  local d="$1" out="$work/cg-wrk-$1"
  timeout 120 taskset -c 1 valgrind --tool=callgrind --callgrind-out-file="$out.cg" \
    wrk -t1 -c1 -d"${d}s" "$URL" >"$out.txt" 2>"$out.err"
  echo "$(refs "$out.err") $(awk '/requests in/{print $1}' "$out.txt")"
}
read -r w1 r1 < <(wrk_instr "$WRK_D")
read -r w2 r2 < <(wrk_instr $((2 * WRK_D)))
wrk_per=$(((w2 - w1) / (r2 - r1)))

# calls of each system call per request, from strace -c -f's table.
per_call() {
  local file="$1" reqs="$2" name="$3"
  awk -v n="$name" -v r="$reqs" '$NF == n { printf "%.3f", $4 / r; found = 1 }
    END { if (!found) printf "0" }' "$file"
}
timeout 120 taskset -c 1 strace -c -f -o "$work/st-sonde" \
  "$SONDE" run --url "$URL" --vus 50 -n "$STRACE_N" --threads 1 --format json --quiet >/dev/null
timeout 120 taskset -c 1 strace -c -f -o "$work/st-wrk" \
  wrk -t1 -c50 -d"${WRK_D}s" "$URL" >"$work/st-wrk.txt"
wrk_reqs=$(awk '/requests in/{print $1}' "$work/st-wrk.txt")

table() {
  echo "## Instructions and system calls per request (HTTP/1.1 keep-alive vs nginx)"
  echo
  echo "$(machine_line); $SONDE_VERSION ($SONDE_COMMIT, built $SONDE_BUILT); $(wrk --version 2>&1 | head -1 | awk '{print $1, $2}')"
  echo
  echo "| tool | instructions/req (callgrind, 1 conn) | write/sendto | read/recvfrom | epoll_ctl | epoll_wait (strace, 50 conns) |"
  echo "|---|---:|---:|---:|---:|---:|"
  echo "| sonde | $sonde_per | $(per_call "$work/st-sonde" "$STRACE_N" sendto) | $(per_call "$work/st-sonde" "$STRACE_N" recvfrom) | $(per_call "$work/st-sonde" "$STRACE_N" epoll_ctl) | $(per_call "$work/st-sonde" "$STRACE_N" epoll_wait) |"
  echo "| wrk | $wrk_per | $(per_call "$work/st-wrk" "$wrk_reqs" write) | $(per_call "$work/st-wrk" "$wrk_reqs" read) | $(per_call "$work/st-wrk" "$wrk_reqs" epoll_ctl) | $(per_call "$work/st-wrk" "$wrk_reqs" epoll_wait) |"
}
mkdir -p target/bench-state
table | tee target/bench-state/instr.md
