"""Normalizer benchmark: archives -> post stream, posts/second and peak memory.

    .venv/bin/python benchmarks/bench_normalize.py [--posts 10000] [--tags 100]

Runs in this process; peak memory is the process's max RSS (parse + stream).
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

from common import corpus

from publisher.archive import read_pages
from publisher.pipeline import no_cyclic_gc
from publisher.posts import normalize


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--posts", type=int, default=10_000)
    ap.add_argument("--tags", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    src = corpus(args.posts, args.tags) / "tagtxt"
    size = sum(f.stat().st_size for f in src.glob("*.txt"))
    from dateutil import tz

    zone = tz.gettz("Europe/London")
    best = cpu = float("inf")
    stream = None
    for _ in range(args.repeat):
        stream = None  # let the previous run's stream go before measuring the next
        start, start_cpu = time.perf_counter(), time.process_time()
        with no_cyclic_gc():
            stream = normalize(read_pages([Path(src)]), zone, "bench.example")
        best = min(best, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)
    assert len(stream.posts) == args.posts and not stream.errors
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"normalize: {args.posts} posts ({size / 1e6:.0f} MB of archives, {args.tags} tags)")
    print(
        f"  best of {args.repeat}: {best:.2f} s wall = {args.posts / best:,.0f} posts/s "
        f"({cpu:.2f} s CPU; wall time on this shared VM varies by ±30%)"
    )
    print(f"  peak RSS: {peak:.0f} MB")


if __name__ == "__main__":
    main()
