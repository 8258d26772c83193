"""Normalizer benchmark: archives -> post stream, posts/second and peak memory.

    .venv/bin/python benchmarks/bench_normalize.py [--posts 10000] [--tags 100] [--repeat 5]

Each run is a fresh process, as a command is: caches (slugs, title keys) and
the allocator start cold. Repeats within one process ran ~0.35 s faster at
10,000 posts (warm caches, reused memory) and overstated what a user gets.
Prints the best and the median of the runs, and the largest peak RSS.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
from pathlib import Path

from common import corpus, host_speed, installed_python


def once(src: Path) -> dict[str, float]:
    """One cold run in this process: read + normalize, timed from the first file read."""
    import gc
    import resource

    from publisher.settings import Settings
    from publisher.source.load import load_pages

    settings = Settings()  # Europe/London, as the corpus is dated
    gc.disable()  # as the command line does for every one-shot command (cli.ONE_SHOT)
    start, start_cpu = time.perf_counter(), time.process_time()
    _, stream = load_pages(settings, [src])  # as every command reads archives
    wall, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    assert not stream.errors
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"wall": wall, "cpu": cpu, "peak": peak, "posts": len(stream.posts)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--posts", type=int, default=10_000)
    ap.add_argument("--tags", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--once", type=Path, help=argparse.SUPPRESS)  # the child's entry point
    args = ap.parse_args()
    if args.once:
        print(json.dumps(once(args.once)))
        return
    src = corpus(args.posts, args.tags) / "tagtxt"
    size = sum(f.stat().st_size for f in src.glob("*.txt"))
    python = installed_python()
    runs = [
        json.loads(
            subprocess.run(
                [python, __file__, "--once", str(src)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        )
        for _ in range(args.repeat)
    ]
    assert all(r["posts"] == args.posts for r in runs)
    walls = sorted(r["wall"] for r in runs)
    best = min(runs, key=lambda r: r["wall"])
    print(f"normalize: {args.posts} posts ({size / 1e6:.0f} MB of archives, {args.tags} tags)")
    print(
        f"  {args.repeat} fresh processes: best {walls[0]:.2f} s wall "
        f"({args.posts / walls[0]:,.0f} posts/s, {best['cpu']:.2f} s CPU), "
        f"median {statistics.median(walls):.2f} s"
    )
    print(
        f"  peak RSS {max(r['peak'] for r in runs):.0f} MB (whole process, stream included); "
        "wall time on this shared VM varies by up to half"
    )
    print(f"  {host_speed()}")


if __name__ == "__main__":
    main()
