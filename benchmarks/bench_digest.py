"""Digest delivery benchmark: one week's digest to N subscribers through real SMTP.

    .venv/bin/python benchmarks/bench_digest.py [--subscribers 10000] [--posts 10000]

The sink is aiosmtpd's own Sink handler in a separate process on loopback;
the sender is `publisher digest --send` as a user runs it. Subscribers are
spread over tag choices (none, one or two of the ten most used tags), so the
digest is rendered once per distinct choice. Prints messages sent per second (wall
time of the whole command, parsing the archives included) and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, corpus, host_speed, installed_python, timed

sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--subscribers", type=int, default=10_000)
    ap.add_argument("--posts", type=int, default=10_000)
    args = ap.parse_args()
    src = corpus(args.posts) / "tagtxt"
    tmp = Path(tempfile.mkdtemp(prefix="bench-digest-"))
    port = free_port()
    sink = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            f"127.0.0.1:{port}",
            "-c",
            "aiosmtpd.handlers.Sink",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        cfg = tmp / "publisher.toml"
        cfg.write_text(
            f'[build]\nseeds = "{src}"\n[state]\nurl = "sqlite:///{tmp / "state.db"}"\n'
            f'[delivery]\nmethod = "smtp"\n[smtp]\nhost = "127.0.0.1"\nport = {port}\n'
            'security = "none"\n'
        )
        import sqlalchemy as sa

        from publisher.config import load_settings
        from publisher.source.load import load_stream
        from publisher.store.schema import deliveries, open_engine, subscribers
        from publisher.weeks import week_of

        settings = load_settings(cfg, environ={})
        stream = load_stream(settings, [src])
        popular = [
            t.name
            for t in sorted(stream.terms_of("tag"), key=lambda t: -len(stream.posts_with(t)))[:10]
        ]
        week = week_of(stream.posts[len(stream.posts) // 3].date, settings.site.tzinfo)
        rng = random.Random(1)
        rows = []
        for i in range(args.subscribers):
            tags = rng.choice([[], [rng.choice(popular)], rng.sample(popular, 2)])
            rows.append(
                {
                    "email_key": f"user{i}@example.org",
                    "email": f"user{i}@example.org",
                    "name": f"User {i}",
                    "tags": json.dumps(tags),
                    "status": "active",
                    "bounces": 0,
                    "created": "2026-01-01",
                    "updated": "2026-01-01",
                }
            )
        engine = open_engine(settings.state.url)
        with engine.begin() as conn:
            conn.execute(subscribers.insert(), rows)
        engine.dispose()
        week_posts = sum(1 for p in stream.posts if week.contains(p.published))
        time.sleep(0.5)  # let the sink start listening
        env = {**os.environ, "PUBLISHER_SECRET": "bench-secret-0123456789abcdefghij"}
        profile = (
            ["-m", "cProfile", "-o", os.environ["BENCH_PROFILE"]]
            if os.environ.get("BENCH_PROFILE")
            else []
        )
        # the site as a deployment has it: built (the send publishes the digest's web
        # copy with an incremental build)
        py = installed_python()
        subprocess.run(
            [py, "-m", "publisher", "--config", str(cfg), "build", "--quiet"],
            cwd=tmp, env=env, check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        out = tmp / "summary.txt"
        run = timed(
            [
                py,
                *profile,
                "-m",
                "publisher",
                "--config",
                str(cfg),
                "digest",
                "--week",
                week.label,
                "--send",
                "--quiet",
            ],
            stdout=out,
            cwd=tmp,
            env=env,
        )
        loop_rate = out.read_text().split("; ")[1].split(" messages/s")[0]
        with open_engine(settings.state.url).connect() as conn:
            sent = conn.execute(
                sa.select(sa.func.count()).where(deliveries.c.status == "sent")
            ).scalar_one()
        print(
            f"digest: {args.subscribers} subscribers, week {week.label} with {week_posts} "
            f"posts, {args.posts} posts in the archives"
        )
        print(
            f"  {run.wall:.2f} s end to end: {sent} messages sent = {sent / run.wall:,.0f} "
            f"messages/s, {args.subscribers / run.wall:,.0f} subscribers/s "
            f"({args.subscribers - sent} had no posts for their tags)\n"
            f"  sender {run.cpu:.2f} s CPU; peak RSS {run.peak_mb:.0f} MB\n"
            f"  the delivery loop alone (the summary's figure): {loop_rate} messages/s"
        )
        print(f"  {host_speed()}")
    finally:
        sink.terminate()
        sink.wait()


if __name__ == "__main__":
    main()
