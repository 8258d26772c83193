"""The progress of a send, on stderr: messages done of all, and the rate, which
says how long the rest will take (the figure a relay's latency changes)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def progress_bar(label: str, total: int) -> Iterator[Callable[[], None]]:
    """A progress bar on stderr, with the rate that tells how long the rest takes."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    rate = TextColumn("{task.fields[rate]}")
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        rate,
        TimeRemainingColumn(),
    )
    lock = threading.Lock()  # workers advance it from their threads
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(f"sending {label}", total=total, rate="")

        def advance() -> None:
            with lock:
                bar.advance(task)
                speed = bar.tasks[task].speed
                if speed:
                    bar.update(task, rate=f"{speed:.1f} msg/s")

        yield advance
