"""Delivery through a relay at real network latency.

    .venv/bin/python benchmarks/bench_relay.py [--subscribers 2000] [--rtt 0,20,50]
        [--connections 1,8,32]

`publisher digest --send` of 2019-W07 (the seeds) to N subscribers, as a user
runs it, into aiosmtpd offering PIPELINING (``relay_sink``) in its own
process, behind ``latency_proxy``, which delays each direction by half the
round-trip time (RTT): a hosted relay is 20-100 ms away, and a loopback
benchmark hides every round trip. One more row per RTT is the server without
PIPELINING on one connection: four round trips a message, as before.

Prints, per RTT and connection count, messages/s over the delivery loop (the
summary's own figure: planning and parsing excluded) and what 10,000 and
100,000 subscribers would take at that rate. Slow configurations send fewer
messages (--slow-subscribers), as their rate is steady after the first few.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, host_speed, installed_python

sys.path.insert(0, str(ROOT))
HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def start(cmd: list[str], port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(HERE)}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(port)
    return proc


def sink(handler: str) -> tuple[int, subprocess.Popen[bytes]]:
    port = free_port()
    cmd = [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}", "-c", handler]
    return port, start(cmd, port)


def proxy(target: int, rtt: float) -> tuple[int, subprocess.Popen[bytes]]:
    port = free_port()
    cmd = [sys.executable, str(HERE / "latency_proxy.py"), str(port), str(target), str(rtt)]
    return port, start(cmd, port)


def state_with(subscribers: int, folder: Path) -> Path:
    """A state database with ``subscribers`` active subscribers of every post."""
    from publisher.store.schema import open_engine
    from publisher.store.schema import subscribers as table

    db = folder / "template.db"
    engine = open_engine(f"sqlite:///{db}")
    rows = [
        {
            "email_key": f"user{i}@example.org",
            "email": f"user{i}@example.org",
            "name": f"User {i}",
            "tags": json.dumps([]),
            "status": "active",
            "bounces": 0,
            "created": "2026-01-01",
            "updated": "2026-01-01",
        }
        for i in range(subscribers)
    ]
    with engine.begin() as conn:
        conn.execute(table.insert(), rows)
    engine.dispose()
    return db


def send(port: int, connections: int, template: Path, tmp: Path) -> tuple[int, float]:
    """One ``digest --send``: messages sent and the summary's messages/s."""
    run = Path(tempfile.mkdtemp(dir=tmp))
    shutil.copy(template, run / "state.db")
    cfg = run / "publisher.toml"
    cfg.write_text(
        f'[build]\nseeds = "{ROOT / "seeds"}"\n[state]\nurl = "sqlite:///{run / "state.db"}"\n'
        f'[delivery]\nmethod = "smtp"\n[smtp]\nhost = "127.0.0.1"\nport = {port}\n'
        f'security = "none"\nconnections = {connections}\n'
    )
    env = {**os.environ, "PUBLISHER_SECRET": "bench-secret-0123456789abcdefghij"}
    cmd = [installed_python(), "-m", "publisher", "--config", str(cfg), "digest"]
    cmd += ["--week", "2019-W07", "--send", "--quiet"]
    out = subprocess.run(cmd, cwd=run, env=env, capture_output=True, text=True, check=True)
    sent = int(re.search(r"sent (\d+)", out.stdout).group(1))  # type: ignore[union-attr]
    rate = float(re.search(r"([\d.]+) messages/s", out.stdout).group(1))  # type: ignore[union-attr]
    return sent, rate


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--subscribers", type=int, default=2000)
    ap.add_argument("--slow-subscribers", type=int, default=300)
    ap.add_argument("--rtt", default="0,20,50")
    ap.add_argument("--connections", default="1,8,32")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-relay-"))
    plain_port, plain = sink("relay_sink.Sink")
    pipe_port, pipe = sink("relay_sink.PipeliningSink")
    many = state_with(args.subscribers, tmp)
    (tmp / "few").mkdir()
    few = state_with(args.slow_subscribers, tmp / "few")
    print("relay: digest 2019-W07 (seeds) by `publisher digest --send`, aiosmtpd behind a")
    print("latency proxy; messages/s over the delivery loop; time for 10k and 100k at that rate")
    print(f"{'RTT':>6} {'server':<16} {'conns':>5} {'sent':>5} {'msg/s':>8} {'10k':>8} {'100k':>8}")
    procs = [plain, pipe]
    try:
        for rtt in (float(r) for r in args.rtt.split(",")):
            rows = [("no PIPELINING", plain_port, 1)]
            rows += [("PIPELINING", pipe_port, int(c)) for c in args.connections.split(",")]
            for label, target, conns in rows:
                port = target
                if rtt:
                    port, hop = proxy(target, rtt)
                    procs.append(hop)
                slow = rtt >= 20 and conns == 1
                sent, rate = send(port, conns, few if slow else many, tmp)
                print(
                    f"{rtt:4.0f}ms {label:<16} {conns:>5} {sent:>5} {rate:>8.1f} "
                    f"{duration(10_000 / rate):>8} {duration(100_000 / rate):>8}",
                    flush=True,
                )
        print(f"  {host_speed()}")
    finally:
        for p in procs:
            p.terminate()
            p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
