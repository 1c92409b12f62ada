#!/usr/bin/env python3
"""Start-up probe for issue 7, goal 5: time from spawning a load tool to its first request.

Owns: a tiny HTTP/1.1 keep-alive server on 127.0.0.1 (port 0, stdlib only) that answers every
request with a 3-byte body, and the timing loop. It must not talk to anything but loopback, and
every wait is bounded (a tool that sends nothing within --timeout is killed by its PID).

For each repetition and tool (tools interleaved, after --warmup unrecorded rounds):
  t0 = time.monotonic_ns() immediately before subprocess.Popen(command)
  t1 = time.monotonic_ns() when the first bytes of its first request are readable on a socket
       this server accepted (the server's own wake-up latency, tens of µs, is included)
and reports t1 - t0 as p50 / p90 / max per tool. The pseudo-tool `spawn` (set with --floor)
runs /bin/true (with the same pinning prefix) and reports spawn-to-exit: the floor of process
creation that every tool pays.

  startup_probe.py --reps 20 --pin 1 --tool 'sonde=sonde run --url {url} -n 5 --vus 1' ...
prints a markdown table on stdout; --tool may be repeated; {url} is replaced by the server URL.
"""

import argparse
import os
import selectors
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time

RESPONSE = b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\ncontent-type: text/plain\r\n\r\nok\n"


class Server:
    """Single-threaded keep-alive HTTP server; answers each request head with RESPONSE."""

    def __init__(self):
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(1024)
        self.lsock.setblocking(False)
        self.port = self.lsock.getsockname()[1]
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.lsock, selectors.EVENT_READ, None)
        self.first_ns = None  # monotonic ns of the first request bytes since reset()

    def url(self):
        return f"http://127.0.0.1:{self.port}/"

    def reset(self):
        self.first_ns = None

    def close_conns(self):
        for key in list(self.sel.get_map().values()):
            if key.fileobj is not self.lsock:
                self._drop(key.fileobj)

    def _drop(self, conn):
        try:
            self.sel.unregister(conn)
        except (KeyError, ValueError):
            pass
        conn.close()

    def poll(self, timeout_s):
        """Serve for at most timeout_s seconds (one select round)."""
        for key, _ in self.sel.select(timeout_s):
            if key.fileobj is self.lsock:
                try:
                    while True:
                        conn, _ = self.lsock.accept()
                        conn.setblocking(False)
                        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                        self.sel.register(conn, selectors.EVENT_READ, bytearray())
                except BlockingIOError:
                    pass
                continue
            conn, buf = key.fileobj, key.data
            try:
                data = conn.recv(65536)
            except (ConnectionError, OSError):
                data = b""
            if not data:
                self._drop(conn)
                continue
            if self.first_ns is None:
                self.first_ns = time.monotonic_ns()
            buf += data
            answers = 0
            while True:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    break
                head = bytes(buf[:end]).lower()
                body_len = 0
                for line in head.split(b"\r\n")[1:]:
                    if line.startswith(b"content-length:"):
                        try:
                            body_len = int(line.split(b":", 1)[1].strip())
                        except ValueError:
                            body_len = 0
                if len(buf) < end + 4 + body_len:
                    break
                del buf[: end + 4 + body_len]
                answers += 1
            if answers:
                try:
                    conn.sendall(RESPONSE * answers)
                except (ConnectionError, OSError):
                    self._drop(conn)


def run_once(server, argv, timeout_s, until_exit):
    """Spawn argv; return (first_request_ms or None, exit_ms, returncode, stderr tail)."""
    server.reset()
    with tempfile.TemporaryFile() as err:
        t0 = time.monotonic_ns()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        deadline = t0 + int(timeout_s * 1e9)
        exit_ns = None
        while True:
            rc = proc.poll()
            if rc is not None and exit_ns is None:
                exit_ns = time.monotonic_ns()
            if exit_ns is not None and (server.first_ns is not None or not until_exit):
                break
            if exit_ns is not None:
                # exited without a request: serve what is already queued, then give up
                server.poll(0)
                break
            if time.monotonic_ns() > deadline:
                proc.kill()
                proc.wait(5)
                exit_ns = None
                break
            server.poll(0.0005)  # bounds the exit-time error to ~0.5 ms
        rc = proc.returncode
        err.seek(0)
        tail = err.read()[-300:].decode("utf-8", "replace").strip().replace("\n", " / ")
    server.close_conns()
    first_ms = None if server.first_ns is None else (server.first_ns - t0) / 1e6
    exit_ms = None if exit_ns is None else (exit_ns - t0) / 1e6
    return first_ms, exit_ms, rc, tail


def pct(values, p):
    """Nearest-rank percentile of a non-empty list."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(-(-p * len(s) // 100)) - 1))
    return s[k]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tool", action="append", default=[], help="NAME=COMMAND with {url}")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=1, help="unrecorded rounds first (page cache)")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds per run before kill")
    ap.add_argument("--pin", default="", help="CPU list for the tools (taskset -c); '' = unpinned")
    ap.add_argument("--probe-cpu", default="", help="CPU list for this probe (server) itself")
    ap.add_argument("--floor", action="store_true", help="also measure spawn of /bin/true")
    a = ap.parse_args()

    if a.probe_cpu:
        os.sched_setaffinity(0, {int(c) for c in a.probe_cpu.split(",")})
    prefix = []
    if a.pin:
        if shutil.which("taskset"):
            prefix = ["taskset", "-c", a.pin]
        else:
            print("startup_probe: taskset not found, tools run unpinned", file=sys.stderr)

    server = Server()
    tools = []
    if a.floor:
        tools.append(("spawn (/bin/true, exit)", prefix + ["/bin/true"], False))
    for spec in a.tool:
        name, _, cmd = spec.partition("=")
        argv = shlex.split(cmd.replace("{url}", server.url()))
        if not argv or not shutil.which(argv[0]):
            print(f"startup_probe: {name}: {argv[0] if argv else '?'} not found, skipped", file=sys.stderr)
            continue
        tools.append((name, prefix + argv, True))

    results = {name: {"first": [], "exit": [], "fail": 0, "note": ""} for name, _, _ in tools}
    for rep in range(a.warmup + a.reps):
        for name, argv, wants_request in tools:
            first, exit_ms, rc, tail = run_once(server, argv, a.timeout, wants_request)
            if rep < a.warmup:
                continue
            r = results[name]
            if not wants_request:
                if exit_ms is None or rc != 0:
                    r["fail"] += 1
                else:
                    r["exit"].append(exit_ms)
                continue
            if first is None:
                r["fail"] += 1
                r["note"] = f"no request (exit {rc}): {tail}"[:160]
            else:
                r["first"].append(first)
                if exit_ms is not None:
                    r["exit"].append(exit_ms)
                if rc not in (0, None):
                    r["note"] = f"exit {rc}: {tail}"[:160]

    print("| tool | runs | p50 ms | p90 ms | max ms | min ms | exit p50 ms | notes |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for name, argv, wants_request in tools:
        r = results[name]
        vals = r["first"] if wants_request else r["exit"]
        ex = f"{pct(r['exit'], 50):.1f}" if r["exit"] else "-"
        note = r["note"].replace("|", "/")
        if r["fail"]:
            note = (f"{r['fail']} failed; " + note).strip("; ")
        if vals:
            print(f"| {name} | {len(vals)} | {pct(vals, 50):.1f} | {pct(vals, 90):.1f} | {max(vals):.1f} | "
                  f"{min(vals):.1f} | {ex} | {note} |")
        else:
            print(f"| {name} | 0 | - | - | - | - | {ex} | {note} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
