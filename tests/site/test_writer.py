"""The output writer: pieces written in turn, identical files left alone, paths kept inside."""

from __future__ import annotations

from pathlib import Path

import pytest

from publisher.errors import PublisherError
from publisher.site.writer import OutputWriter


def test_pieces_are_written_in_turn_and_an_identical_file_is_left_alone(tmp_path: Path) -> None:
    parts = [b"<feed>", b"", "é".encode(), b"x" * 70_000, b"</feed>\n"]
    whole = b"".join(parts)
    first = OutputWriter(tmp_path)
    first.write("all.atom", "k1", parts)
    first.write("one.txt", "k1", b"plain bytes")
    first.finish("inputs")
    assert (tmp_path / "all.atom").read_bytes() == whole
    mtime = (tmp_path / "all.atom").stat().st_mtime_ns

    again = OutputWriter(tmp_path)  # a new key, the same bytes in other pieces: not rewritten
    again.write("all.atom", "k2", [whole[:3], whole[3:]])
    assert again.counts.unchanged == 1 and again.counts.written == 0
    assert (tmp_path / "all.atom").stat().st_mtime_ns == mtime

    for changed in ([whole[:-1], b"!"], [whole, b"more"], [whole[:-2]]):
        writer = OutputWriter(tmp_path)
        writer.write("all.atom", "k3", changed)
        assert writer.counts.written == 1
        assert (tmp_path / "all.atom").read_bytes() == b"".join(changed)
        writer.finish("inputs")


@pytest.mark.parametrize("rel", ["../x.atom", "/etc/x", "tag//x.rss", "a\\b", "tag/../../x"])
def test_paths_outside_the_folder_are_refused(tmp_path: Path, rel: str) -> None:
    with pytest.raises(PublisherError, match="outside the output folder"):
        OutputWriter(tmp_path / "out").write(rel, "k", [b"x"])
    assert not any(tmp_path.rglob("x*"))


def test_a_symlinked_folder_inside_the_output_is_refused_and_nothing_written(
    tmp_path: Path,
) -> None:
    """``out/tag`` linked to another folder: the build refuses, naming the link, and
    writes nothing there (nor anywhere in the output)."""
    from publisher.config import load_settings
    from publisher.site.build import build
    from tests.helpers import SEEDS

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "thanks.atom").write_text("the user's own file\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "tag").symlink_to(elsewhere, target_is_directory=True)
    cfg = tmp_path / "publisher.toml"
    cfg.write_text(f'[state]\nurl = "sqlite:///{(tmp_path / "state.db").as_posix()}"\n')
    settings = load_settings(cfg, environ={})
    with pytest.raises(PublisherError) as exc:
        build(settings, [SEEDS], out)
    assert str(out / "tag") in exc.value.message and "symbolic link" in exc.value.message
    assert sorted(p.name for p in elsewhere.iterdir()) == ["thanks.atom"]
    assert (elsewhere / "thanks.atom").read_text() == "the user's own file\n"
    assert sorted(p.name for p in out.iterdir()) == ["tag"]  # nothing else written
