"""The flock lock that goes with its holder, and the lock file that goes with its use."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from publisher.store.locks import exclusive


def test_a_removed_lock_file_is_never_held_twice(tmp_path: Path) -> None:
    """B waits on the file A holds; A removes it as it lets go. B must not then hold
    the removed file while C holds a new one at the same path: B locks anew."""
    path = tmp_path / "build.lock"
    inside: list[str] = []
    waiting = threading.Event()
    a_in = threading.Event()

    def hold(name: str, seconds: float, ready: threading.Event | None = None) -> None:
        with exclusive(path, waiting.set, remove=True):
            if ready:
                ready.set()
            inside.append(f"+{name}")
            assert (
                len([i for i in inside if i.startswith("+")])
                - len([i for i in inside if i.startswith("-")])
                == 1
            ), inside
            time.sleep(seconds)
            inside.append(f"-{name}")

    a = threading.Thread(target=hold, args=("a", 0.3, a_in))
    a.start()
    a_in.wait(5)
    b = threading.Thread(target=hold, args=("b", 0.2))
    b.start()
    waiting.wait(5)  # b is waiting on a's file
    a.join()
    c = threading.Thread(target=hold, args=("c", 0.2))
    c.start()
    b.join()
    c.join()
    assert sorted(inside) == ["+a", "+b", "+c", "-a", "-b", "-c"]
    assert not path.exists()  # the last holder removed it


def test_the_lock_file_goes_also_when_the_block_fails(tmp_path: Path) -> None:
    path = tmp_path / "build.lock"
    with pytest.raises(RuntimeError), exclusive(path, lambda: None, remove=True):
        assert path.exists()
        raise RuntimeError("the build failed")
    assert not path.exists()
