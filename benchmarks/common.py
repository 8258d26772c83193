"""Shared helpers: the peers' deterministic corpus, and running a command with its peak memory."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEERS = Path(os.environ.get("BENCH_PEERS", ROOT.parent / "shared" / "bench-peers"))
WORK = Path(os.environ.get("BENCH_WORK", ROOT / "bench-out"))


def corpus(posts: int, tags: int = 100, formats: str = "tagtxt") -> Path:
    """Generate (once) the shared deterministic corpus with ../shared/bench-peers/make_corpus.py."""
    out = WORK / f"corpus-{posts}-{tags}"
    if not (out / "manifest.json").is_file() or not all(
        (out / f).is_dir() for f in formats.split(",")
    ):
        subprocess.run(
            [
                sys.executable,
                str(PEERS / "make_corpus.py"),
                "--out",
                str(out),
                "--posts",
                str(posts),
                "--tags",
                str(tags),
                "--format",
                formats,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return out


def timed(cmd: list[str], **kw: object) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one child process (its own rusage, via wait4)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, **kw)  # type: ignore[arg-type]
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, cmd)
    return wall, usage.ru_maxrss / 1024
