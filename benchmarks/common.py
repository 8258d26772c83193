"""Shared helpers: the peers' deterministic corpus, and running a command with its peak memory."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
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


def installed_python() -> str:
    """Python of a venv holding publisher as a user installs it: the wheel of this
    checkout (reinstalled each run, so it is the code under test) and only its
    runtime dependencies. The dev venv also has the test extras, one of which
    (``rnc2rng``) lxml imports at start-up: 20-60 ms no user pays. pip compiles
    the bytecode, which this VM's PYTHONDONTWRITEBYTECODE otherwise keeps from
    being cached: ~0.05 s a process. Timed children run outside the checkout,
    so they import the installed copy.
    """
    venv = WORK / "user-venv"
    py = venv / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", str(ROOT)], check=True)
    subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", str(ROOT)],
        check=True,
        stderr=subprocess.DEVNULL,
    )
    return str(py)


@dataclass(frozen=True)
class Run:
    wall: float  # seconds
    cpu: float  # user + system seconds of the process and the workers it waited for
    peak_mb: float  # the largest resident set of any of them

    def __str__(self) -> str:
        return f"{self.wall:7.2f} s wall {self.cpu:7.2f} s CPU  peak {self.peak_mb:6.0f} MB"


def timed(cmd: list[str], stdout: Path | None = None, **kw: object) -> Run:
    """Wall and CPU seconds and peak RSS of one child process (its own rusage, via wait4).

    CPU time is printed beside wall time because this shared VM's wall times
    vary by a third from run to run; CPU seconds vary much less.
    """
    start = time.perf_counter()
    sink = open(stdout, "wb") if stdout else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(cmd, stdout=sink, **kw)  # type: ignore[arg-type]
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if stdout:
        sink.close()  # type: ignore[union-attr]
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, cmd)
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


#: A fixed pure-Python loop: its time tells how fast this VM's CPU runs right now.
_PROBE = "import time\nt = time.process_time()\nsum(i * i for i in range(5_000_000))\n"


def host_speed() -> str:
    """One line to print beside the figures: the same fixed loop's CPU seconds.

    This VM's CPU speed changes by up to 2x from minute to minute (a fixed
    loop took 1.06 s in one and 1.95 s in another), and every figure moves
    with it; this line, printed after the figures, tells a slow spell from a
    slower change.
    """
    runs = []
    for _ in range(3):
        out = subprocess.run(
            [sys.executable, "-c", _PROBE + "print(time.process_time() - t)"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        runs.append(float(out))
    return (
        f"host speed probe: a fixed loop took {min(runs):.2f}-{max(runs):.2f} s CPU "
        "(3 runs; 0.18 s when quiet; lower is faster)"
    )
