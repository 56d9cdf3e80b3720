"""Single-event POSTs, ours against the course's Flask server, as a user would measure them.

Started by scripts/bench-wrk (which installs wrk and Flask and builds the server). Starts our
release server and the Flask stand-in (bench/flask_standin.py) on 127.0.0.1, then runs
`wrk -t1 -c16 --latency` with bench/post_one_event.lua against each in turn, several rounds,
and prints per round: requests/s, latency p50/p99, and the CPU each process used meanwhile
(user and system, in cores, from /proc/<pid>/stat; wrk's from its rusage), plus what the
rest of the machine used. All servers run for the whole benchmark; only wrk moves.
`--extra NAME=BINARY` adds another build of our server to the rotation (a before/after
comparison in one run). Standard library only.
"""

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url, proc, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{url}: the process exited with {proc.returncode} before answering")
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit(f"{url}: no healthy answer within {timeout} s")


def proc_cpu(pid):
    """(user, system) CPU seconds of a process and all its threads."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICK, int(fields[12]) / TICK


def machine_busy():
    """CPU seconds the whole machine spent busy (all cores), from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / TICK


def run_wrk(url, seconds, server_pid):
    command = [
        "wrk", "-t1", "-c16", f"-d{seconds}s", "--latency",
        "-s", os.path.join(HERE, "post_one_event.lua"), url,
    ]
    before = proc_cpu(server_pid)
    busy_before = machine_busy()
    started = time.monotonic()
    wrk = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = wrk.stdout.read()
    _, status, usage = os.wait4(wrk.pid, 0)
    wrk.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.monotonic() - started
    after = proc_cpu(server_pid)
    busy = machine_busy() - busy_before
    line = next((l for l in output.splitlines() if l.startswith("WRK_RESULT")), None)
    if wrk.returncode != 0 or line is None:
        sys.exit(f"wrk failed ({wrk.returncode}):\n{output}")
    result = dict(kv.split("=") for kv in line.split()[1:])
    result = {k: int(v) for k, v in result.items()}
    server_user = (after[0] - before[0]) / elapsed
    server_sys = (after[1] - before[1]) / elapsed
    wrk_cores = (usage.ru_utime + usage.ru_stime) / elapsed
    return {
        "rps": result["requests"] / (result["duration_us"] / 1e6),
        "p50_ms": result["p50_us"] / 1000,
        "p99_ms": result["p99_us"] / 1000,
        "errors": result["errors"] + result["non2xx"],
        "server_user": server_user,
        "server_sys": server_sys,
        "wrk": wrk_cores,
        "other": max(0.0, busy / elapsed - server_user - server_sys - wrk_cores),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", required=True, help="our release server binary")
    parser.add_argument("--python", default=sys.executable, help="python with Flask-SocketIO")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration per run")
    parser.add_argument("--logs", default="target/bench-wrk", help="where server logs go")
    parser.add_argument("--extra", action="append", default=[], metavar="NAME=BINARY",
                        help="another build of our server to measure in the same rotation")
    args = parser.parse_args()
    os.makedirs(args.logs, exist_ok=True)

    env = dict(os.environ)
    env.pop("RUST_LOG", None)  # the server's own default filter, as a user runs it
    ours = [("ours", args.server)] + [tuple(e.split("=", 1)) for e in args.extra]
    targets = []
    for name, binary in ours:
        port = free_port()
        log = open(os.path.join(args.logs, f"{name}.log"), "w")
        # As a user runs it (defaults: the history on), with a fresh data directory of its own.
        data_dir = os.path.join(args.logs, f"{name}-data")
        shutil.rmtree(data_dir, ignore_errors=True)
        proc = subprocess.Popen([binary, "--listen", f"127.0.0.1:{port}", "--data-dir", data_dir],
                                stdout=log, stderr=subprocess.STDOUT, env=env)
        targets.append((name, proc, f"http://127.0.0.1:{port}"))
    port = free_port()
    log = open(os.path.join(args.logs, "flask.log"), "w")
    flask = subprocess.Popen(
        [args.python, os.path.join(HERE, "flask_standin.py"), "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT,
    )
    targets.append(("flask", flask, f"http://127.0.0.1:{port}"))
    try:
        for _, proc, base in targets:
            wait_healthy(f"{base}/healthz", proc, 60)
        results = {name: [] for name, _, _ in targets}
        print(f"wrk -t1 -c16 -d{args.seconds}s --latency, one event per POST, "
              f"{args.rounds} rounds, {', '.join(n for n, _, _ in targets)} in turn")
        width = max(6, *(len(n) for n, _, _ in targets))
        header = (f"{'round':>5} {'server':<{width}} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7} "
                  f"{'srv user':>8} {'srv sys':>7} {'sys %':>5} {'us/req':>7} {'wrk':>5} "
                  f"{'other':>5} {'errors':>6}")
        print(header)
        print("-" * len(header))
        for round_ in range(1, args.rounds + 1):
            # Alternate which goes first, so neither always follows the other's aftermath.
            order = targets if round_ % 2 else targets[::-1]
            for name, proc, base in order:
                r = run_wrk(f"{base}/api/events", args.seconds, proc.pid)
                results[name].append(r)
                total = r["server_user"] + r["server_sys"]
                r["us_per_req"] = 1e6 * total / max(r["rps"], 1e-9)
                print(f"{round_:>5} {name:<{width}} {r['rps']:>9,.0f} {r['p50_ms']:>7.2f} "
                      f"{r['p99_ms']:>7.2f} {r['server_user']:>8.2f} {r['server_sys']:>7.2f} "
                      f"{100 * r['server_sys'] / max(total, 1e-9):>5.0f} {r['us_per_req']:>7.1f} "
                      f"{r['wrk']:>5.2f} {r['other']:>5.2f} {r['errors']:>6}", flush=True)
        print("(CPU columns in cores: server user and system time, wrk, rest of the machine;"
              " us/req: server CPU microseconds per request)")
        med = lambda name, key: statistics.median(r[key] for r in results[name])
        for name, _, _ in targets:
            rps = [r["rps"] for r in results[name]]
            print(f"{name:<{width}} median {med(name, 'rps'):>9,.0f} req/s (min {min(rps):,.0f}, "
                  f"max {max(rps):,.0f}), {med(name, 'us_per_req'):,.1f} us of server CPU per request")
        flask_rps = [r["rps"] for r in results["flask"]]
        for name, _, _ in targets[:-1]:
            ratios = [o["rps"] / f for o, f in zip(results[name], flask_rps)]
            print(f"ratio {name}/flask: {med(name, 'rps') / med('flask', 'rps'):.1f}x requests/s "
                  f"(median over median; per round {', '.join(f'{x:.1f}x' for x in ratios)}); "
                  f"{med('flask', 'us_per_req') / med(name, 'us_per_req'):.1f}x less CPU per request")
        flask_failed = sum(r["errors"] for r in results["flask"])
        if flask_failed:
            print(f"flask: {flask_failed} requests failed (wrk's 2 s timeout) or were not 2xx")
        failed = sum(r["errors"] for name, _, _ in targets[:-1] for r in results[name])
        if failed:
            sys.exit(f"ours: {failed} requests failed or were not 2xx")
    finally:
        for _, proc, _ in targets:
            proc.terminate()
        for _, proc, _ in targets:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


if __name__ == "__main__":
    main()
