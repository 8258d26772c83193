"""The cyclic collector around the big acyclic loads (``pipeline.no_cyclic_gc``)."""

from __future__ import annotations

import gc

from publisher.source.load import no_cyclic_gc


def test_freeze_happens_before_the_collector_is_back_on() -> None:
    """Objects made while collection was off count as new: re-enabling first would
    let the next allocation start a collection walking all of them."""
    events: list[int] = []

    def note(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            events.append(info["generation"])

    frozen = gc.get_freeze_count()
    try:
        with no_cyclic_gc(freeze=True):
            made = [[i] for i in range(100_000)]  # lists: tracked by the collector
            assert not gc.isenabled()
            gc.callbacks.append(note)
        more = [[i] for i in range(100)]  # a few allocations after the block
        assert gc.isenabled()
        assert gc.get_freeze_count() >= frozen + len(made)
        assert events == []  # no collection walked what the block made
        assert more
        gc.callbacks.remove(note)
        gc.unfreeze()

        # the control: without freeze, the block's end starts a collection of them
        with no_cyclic_gc():
            also = [[i] for i in range(100_000)]  # (freeing ``made`` would cancel the count)
            gc.callbacks.append(note)
        assert also and events
    finally:
        if note in gc.callbacks:
            gc.callbacks.remove(note)
        gc.unfreeze()


def test_without_freeze_the_collector_is_restored_as_it_was() -> None:
    gc.disable()
    try:
        with no_cyclic_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()  # it was off before: it stays off
    finally:
        gc.enable()
    with no_cyclic_gc():
        assert not gc.isenabled()
    assert gc.isenabled()
