"""How build writes: determinism, incremental rebuilds, atomicity, stale files, history."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import feedparser
import pytest

from publisher.config import load_settings
from publisher.errors import PublisherError
from publisher.settings import Settings
from publisher.site.build import build
from publisher.site.cache import SnapshotStore
from tests.helpers import ROOT, SEEDS, run_cli, write
from tests.helpers.feeds import assert_valid_atom

EDIT_NOW = datetime.fromisoformat("2026-11-23T09:30:00+00:00")


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {
        p.relative_to(root).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def seeds(tmp_path: Path) -> Path:
    dst = tmp_path / "seeds"
    shutil.copytree(SEEDS, dst)
    return dst


def settings_with(tmp_path: Path, extra: str = "", name: str = "p.toml") -> Settings:
    cfg = tmp_path / name
    cfg.write_text(
        f'[state]\nurl = "sqlite:///{(tmp_path / (name + ".db")).as_posix()}"\n{extra}',
        encoding="utf-8",
    )
    return load_settings(cfg, environ={})


def test_two_builds_are_byte_identical(tmp_path: Path, seeds: Path) -> None:
    a = build(settings_with(tmp_path, name="a.toml"), [seeds], tmp_path / "a")
    b = build(settings_with(tmp_path, name="b.toml"), [seeds], tmp_path / "b")
    assert a.written == b.written > 20
    sa = {k: v[0] for k, v in snapshot(tmp_path / "a").items() if not k.startswith(".")}
    sb = {k: v[0] for k, v in snapshot(tmp_path / "b").items() if not k.startswith(".")}
    assert sa == sb


def test_unchanged_rebuild_touches_nothing(tmp_path: Path, seeds: Path) -> None:
    s = settings_with(tmp_path)
    out = tmp_path / "out"
    build(s, [seeds], out)
    before = snapshot(out)
    again = build(s, [seeds], out)
    assert again.up_to_date and "nothing changed" in again.summary()
    os.utime(seeds / "000_5c47147349eb2bcc.txt")  # touched, not changed: parses, writes nothing
    third = build(s, [seeds], out)
    assert not third.up_to_date and third.written == 0 and third.removed == 0
    after = snapshot(out)
    assert {k: v for k, v in after.items() if not k.startswith(".")} == {
        k: v for k, v in before.items() if not k.startswith(".")
    }


def test_edited_post_rewrites_only_files_that_carry_it(tmp_path: Path, seeds: Path) -> None:
    s = settings_with(tmp_path)
    out = tmp_path / "out"
    build(s, [seeds], out)
    f = seeds / "000_5c47147349eb2bcc.txt"
    # "Thanks to our gritting crews" is only in the thanks archive: tag thanks + site feeds
    f.write_text(
        f.read_text(encoding="utf-8").replace("flat out", "working flat out"), encoding="utf-8"
    )
    result = build(s, [seeds], out, now=EDIT_NOW)
    assert result.archives_read == 1  # from the snapshot: the other archive is not read
    # the post's neighbours show its title only: re-rendered, found identical, kept
    assert sorted(result.changed) == [
        "all.atom",
        "all.json",
        "all.rss",
        "index.html",  # it shows the newest posts' opening words
        "posts/thanks-to-our-gritting-crews-a-ministerial-visit-and.html",
        "sitemap.xml",  # the post's page has a new date
        "tag/thanks.atom",
        "tag/thanks.html",
        "tag/thanks.json",
        "tag/thanks.rss",
        "years/2018.html",  # as its year's page does
    ]
    feed = feedparser.parse(str(out / "tag" / "thanks.atom"))
    edited = next(e for e in feed.entries if e.title.startswith("Thanks to our gritting"))
    assert edited.updated == "2026-11-23T09:30:00+00:00"
    assert edited.published == "2018-03-05T12:00:00+00:00"
    others = [e for e in feed.entries if e is not edited]
    assert all(e.updated == e.published for e in others)
    assert feed.feed.updated == "2026-11-23T09:30:00+00:00"
    # a later unchanged rebuild keeps the stored updated date (no wall clock)
    os.utime(f)
    build(s, [seeds], out, now=datetime.fromisoformat("2030-01-01T00:00:00+00:00"))
    feed = feedparser.parse(str(out / "tag" / "thanks.atom"))
    assert feed.feed.updated == "2026-11-23T09:30:00+00:00"


def test_errors_write_nothing_unless_skip_invalid(tmp_path: Path, seeds: Path) -> None:
    s = settings_with(tmp_path)
    out = tmp_path / "out"
    build(s, [seeds], out)
    before = snapshot(out)
    write(
        seeds / "bad.txt",
        "Posts Tagged ‘broken’\n\nGood one\n\nMay 1, 2018\n\nText.\n\nBad\n\nFebruary 30, 2019\n\nX.\n",
    )
    with pytest.raises(PublisherError, match="nothing was written"):
        build(s, [seeds], out)
    assert snapshot(out) == before
    lock = SnapshotStore(s.state.url, out).base.with_suffix(".lock")
    assert not lock.exists()  # a failed build leaves no lock file behind
    result = build(s, [seeds], out, skip_invalid=True)
    assert result.posts == 13 and len(result.skipped) == 1
    assert result.skipped[0].endswith("seeds/bad.txt:9: Bad")
    assert (out / "tag" / "broken.atom").is_file()


def test_cli_build_exit_status_and_summary(tmp_path: Path, seeds: Path) -> None:
    write(seeds / "bad.txt", "")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUBLISHER_")}
    cmd = [sys.executable, "-m", "publisher", "build", "--out", "site", str(seeds)]
    r = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, env=env, check=False)
    assert r.returncode == 1 and "bad.txt:1: error: empty file" in r.stderr
    assert "--skip-invalid" in r.stderr and not (tmp_path / "site").exists()
    r = subprocess.run(
        [*cmd, "--skip-invalid"], cwd=tmp_path, capture_output=True, text=True, env=env, check=False
    )
    assert r.returncode == 0 and "12 posts: 35 files written" in r.stdout
    assert (tmp_path / "var" / "publisher.db").is_file()


def test_a_build_waits_for_one_writing_the_same_folder(
    tmp_path: Path, seeds: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While another build holds the folder's lock (held here), ``publisher build``
    says it waits and writes nothing; once free, it builds."""
    from publisher.store.locks import exclusive

    monkeypatch.chdir(tmp_path)  # the default state database is var/publisher.db there
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUBLISHER_")}
    cmd = [sys.executable, "-m", "publisher", "build", "--out", "site", str(seeds)]
    s = load_settings(None, environ={})
    lock = SnapshotStore(s.state.url, tmp_path / "site").base.with_suffix(".lock")
    write(lock, "")
    with exclusive(lock, lambda: pytest.fail("the lock was not free")):
        proc = subprocess.Popen(
            cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(2)
        assert not (tmp_path / "site" / "all.atom").exists()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "12 posts: 35 files written" in out
    assert err.startswith("waiting for another build of site to finish")


def test_an_output_folder_that_cannot_be_one_is_reported(tmp_path: Path, seeds: Path) -> None:
    write(tmp_path / "taken", "a file")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUBLISHER_")}
    cmd = [sys.executable, "-m", "publisher", "build", "--out", "taken/site", str(seeds)]
    r = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, env=env, check=False)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "output folder taken/site: taken is not a folder" in r.stderr
    assert "fix: check --out or [build] output" in r.stderr


def test_a_file_that_cannot_be_written_is_an_error_and_the_next_build_finishes(
    tmp_path: Path, seeds: Path
) -> None:
    """A file of someone else's where the output needs a folder (as a full disk, a
    write that fails): the error names the file and the remedy, no temporary file
    is left, the other file is untouched; once it is moved, the build completes."""
    s, out = settings_with(tmp_path), tmp_path / "out"
    theirs = write(out / "posts", "someone else's file")
    with pytest.raises(PublisherError) as exc:
        build(s, [seeds], out)
    assert exc.value.message.startswith(str(out / "posts") + "/")
    assert exc.value.message.endswith(
        f": cannot write it: {out / 'posts'} is a file, where the output needs a folder"
    )
    assert "build again" in exc.value.remedy
    assert theirs.read_text() == "someone else's file"
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    # what it wrote was claimed before it was written: the next build's, not a stranger's
    assert (out / ".publisher-claimed.json").is_file()
    theirs.rename(tmp_path / "moved")
    r = build(s, [seeds], out)
    assert r.written + r.unchanged == 35 and (out / "posts").is_dir()
    assert not (out / ".publisher-claimed.json").exists()  # the manifest records them now
    assert _files(out) == _files(build_fresh(tmp_path, seeds))


def build_fresh(tmp_path: Path, seeds: Path) -> Path:
    """The same build into a new folder, with its own state."""
    build(settings_with(tmp_path, name="fresh.toml"), [seeds], tmp_path / "fresh")
    return tmp_path / "fresh"


def test_stale_files_removed_but_foreign_files_kept(tmp_path: Path, seeds: Path) -> None:
    s = settings_with(tmp_path)
    out = tmp_path / "out"
    extra = write(
        seeds / "extra.txt", "Posts Tagged ‘gone soon’\n\nA post\n\nMay 1, 2018\n\nText.\n"
    )
    build(s, [seeds], out)
    assert (out / "tag" / "gone-soon.rss").is_file()
    mine = write(out / "tag" / "notes.txt", "mine")
    write(out / "robots.txt", "User-agent: *\n")
    extra.unlink()
    result = build(s, [seeds], out)
    assert result.removed == 5  # 3 feeds, its page and the post page
    assert (
        not (out / "tag" / "gone-soon.rss").exists()
        and not (out / "tag" / "gone-soon.html").exists()
    )
    assert mine.read_text() == "mine" and (out / "robots.txt").is_file()


def test_files_publisher_did_not_write_are_never_replaced_without_overwrite(
    tmp_path: Path, seeds: Path
) -> None:
    """A web root's own ``index.html`` where the build would write one: the build
    stops before writing or recording anything, naming it; ``--overwrite``
    replaces it. Files in no path of the build stay untouched either way."""
    s, out = settings_with(tmp_path), tmp_path / "out"
    theirs = write(out / "index.html", "<p>the web root's own page</p>")
    write(out / "robots.txt", "User-agent: *\n")
    with pytest.raises(PublisherError) as exc:
        build(s, [seeds], out)
    assert exc.value.message.endswith("did not write: index.html; nothing was written")
    assert "--overwrite" in exc.value.remedy
    assert sorted(p.name for p in out.rglob("*")) == ["index.html", "robots.txt"]
    assert theirs.read_text() == "<p>the web root's own page</p>"

    r = run_cli("--config", str(tmp_path / "p.toml"), "build", "--quiet", "--out", str(out),
                str(seeds), "--overwrite", cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "<!doctype html>" in theirs.read_text() and (out / "robots.txt").is_file()
    again = build(s, [seeds], out)  # ours now: not refused, nothing to rewrite
    assert again.written == 0 and again.unchanged == 35


def test_a_lost_manifest_makes_every_file_a_stranger_until_overwrite(
    tmp_path: Path, seeds: Path
) -> None:
    s, out = settings_with(tmp_path), tmp_path / "out"
    first = build(s, [seeds], out)
    (out / ".publisher-manifest.json").unlink()
    with pytest.raises(PublisherError) as exc:
        build(s, [seeds], out)
    assert f"replace {first.written} file(s)" in exc.value.message
    assert "and 30 more" in exc.value.message  # five named, the rest counted
    again = build(s, [seeds], out, overwrite=True)
    assert again.written + again.unchanged == first.written
    assert _files(out) == _files(build_fresh(tmp_path, seeds))


def test_writes_are_atomic_no_temp_files_left(
    tmp_path: Path, seeds: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = settings_with(tmp_path)
    out = tmp_path / "out"
    build(s, [seeds], out)
    before = snapshot(out)
    import publisher.site.writer as output

    calls = {"n": 0}
    real_replace = os.replace

    def dying_replace(src, dst):  # the machine dies after a few files are in place
        calls["n"] += 1
        if calls["n"] > 3:
            raise OSError("disk full")
        real_replace(src, dst)

    monkeypatch.setattr(output.os, "replace", dying_replace)
    f = seeds / "002_58f30e9912765277.txt"
    f.write_text(f.read_text(encoding="utf-8").replace("cyber", "Cyber"), encoding="utf-8")
    with pytest.raises(PublisherError, match="cannot write it: disk full"):
        build(s, [seeds], out)
    monkeypatch.setattr(output.os, "replace", real_replace)
    assert not [p for p in out.rglob("*.tmp")]
    for rel, (data, _) in snapshot(out).items():  # every file is whole: old or new
        if rel.endswith((".atom", ".rss")):
            assert not feedparser.parse(data).bozo
    assert snapshot(out).keys() == before.keys()
    build(s, [seeds], out)  # the next build completes the job
    assert "Cyber" in (out / "all.atom").read_text(encoding="utf-8")


def test_formats_and_pages_choose_the_files_and_switch_back(tmp_path: Path, seeds: Path) -> None:
    """Feeds only, in two formats (Pelican's benchmark shape), then everything, then back:
    each build removes what the settings no longer ask for, and nothing else."""
    out = tmp_path / "out"
    foreign = write(out / "tag" / "notes.html", "not ours")
    full = build(settings_with(tmp_path), [seeds], out)
    first = {k: v[0] for k, v in snapshot(out).items() if k != ".publisher-manifest.json"}
    feeds_only = settings_with(tmp_path, "[build]\nformats = ['rss', 'atom']\npages = false\n")
    slim = build(feeds_only, [seeds], out)
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    files -= {".publisher-manifest.json", "tag/notes.html"}
    assert {f.rsplit(".", 1)[1] for f in files} == {"atom", "rss", "opml", "xsl", "png"}
    assert {"all.atom", "all.rss", "tag/thanks.atom", "tag/digital.rss"} <= files
    assert slim.removed == full.written - len(files) and foreign.read_text() == "not ours"
    assert len(feedparser.parse(str(out / "tag" / "digital.rss")).entries) == 10
    opml = (out / "feeds.opml").read_text(encoding="utf-8")
    assert 'xmlUrl="http://127.0.0.1:8000/tag/thanks.atom"' in opml
    rss_only = settings_with(tmp_path, "[build]\nformats = ['rss']\n")
    build(rss_only, [seeds], out)
    page = (out / "posts").glob("*.html").__next__().read_text(encoding="utf-8")
    assert 'type="application/rss+xml"' in page and "application/atom+xml" not in page
    assert not list(out.rglob("*.atom")) and not list(out.rglob("[!.]*.json"))
    build(settings_with(tmp_path), [seeds], out)
    last = {k: v[0] for k, v in snapshot(out).items() if k != ".publisher-manifest.json"}
    assert last == first  # byte for byte, as if never switched


def test_a_templates_folder_overrides_only_what_it_holds(tmp_path: Path, seeds: Path) -> None:
    """``[build] templates`` holds the files a site changes; the rest are the bundled
    ones. Changing one rewrites the files made with it; a folder that is not there
    is a configuration error naming the setting, and nothing is written."""
    out, bundled = tmp_path / "out", ROOT / "publisher" / "templates"
    build(settings_with(tmp_path), [seeds], out)
    before = {k: v[0] for k, v in snapshot(out).items() if not k.startswith(".")}
    own = tmp_path / "theme"
    extra = f"[build]\ntemplates = '{own.as_posix()}'\n"
    with pytest.raises(PublisherError) as missing:
        build(settings_with(tmp_path, extra), [seeds], out)
    assert missing.value.exit_code == 2 and "[build] templates: no folder" in str(missing.value)
    assert {k: v[0] for k, v in snapshot(out).items() if not k.startswith(".")} == before
    write(own / "style.css", "body { color: teal }\n")
    post = (bundled / "post.html.j2").read_text(encoding="utf-8")
    write(own / "post.html.j2", post.replace("</article>", "<p>Our own footer</p></article>"))
    r = build(settings_with(tmp_path, extra), [seeds], out)
    after = {k: v[0] for k, v in snapshot(out).items() if not k.startswith(".")}
    changed = {k for k in after if after[k] != before[k]}
    assert changed == set(r.changed) == {"style.css"} | {k for k in after if k.startswith("posts/")}
    assert after["style.css"] == b"body { color: teal }\n"
    assert all(b"<p>Our own footer</p></article>" in after[k] for k in changed - {"style.css"})
    assert after["feed.xsl"] == (bundled / "feed.xsl").read_bytes()


def test_escaping_and_control_characters_round_trip(tmp_path: Path) -> None:
    title = "Fish & <chips> \"quoted\" 'single' — café ☕"
    body = "Tom & Jerry <script>alert('x')</script> “curly” naïve ☃\x07 end."
    src = write(
        tmp_path / "in" / "a.txt", f"Posts Tagged ‘R&D <x>’\n\n{title}\n\nMay 1, 2018\n\n{body}\n"
    )
    out = tmp_path / "out"
    build(settings_with(tmp_path), [src.parent], out)
    clean = body.replace("\x07", "")
    for fmt in ("atom", "rss"):
        path = next((out / "tag").glob(f"*.{fmt}"))
        raw = path.read_bytes()
        assert b"\x07" not in raw and b"<script>" not in raw
        entry = feedparser.parse(raw).entries[0]
        assert entry.title == title
        assert entry.content[0].value == f"<p>{__import__('html').escape(clean)}</p>"
    assert_valid_atom(next((out / "tag").glob("*.atom")))
    page = (out / "posts").glob("*.html").__next__().read_text(encoding="utf-8")
    assert "<script>" not in page and "Fish &amp; &lt;chips&gt;" in page
    assert sorted(p.name for p in (out / "tag").iterdir()) == [
        f"r-d-x.{x}" for x in ("atom", "html", "json", "rss")
    ]
    from lxml import etree

    opml = etree.parse(str(out / "feeds.opml"))
    texts = opml.xpath("//outline/@text")
    assert any(t.endswith("Posts tagged ‘R&D <x>’") for t in texts), texts


def test_archived_feeds_give_the_full_history(tmp_path: Path, seeds: Path) -> None:
    s = settings_with(tmp_path, "[build]\nfeed_max_items = 5\n")
    out = tmp_path / "out"
    build(s, [seeds], out)
    base = s.site.base_url
    for fmt in ("atom", "rss"):
        doc = feedparser.parse(str(out / f"all.{fmt}"))
        assert len(doc.entries) == 5
        seen = [e.id for e in doc.entries]
        archives = []
        link = next(lk.href for lk in doc.feed.links if lk.rel == "prev-archive")
        while link:
            path = out / link.removeprefix(base)
            archives.append(path.name)
            page = feedparser.parse(str(path))
            assert not page.bozo
            assert b"<fh:archive/>" in path.read_bytes()
            seen += [e.id for e in page.entries]
            link = next((lk.href for lk in page.feed.links if lk.rel == "prev-archive"), None)
        assert archives == [f"2.{fmt}", f"1.{fmt}"]
        assert len(set(seen)) == 12
    archived = sorted((out / "archive").rglob("*.atom"))
    assert len(archived) >= 2  # the two pages of ``all`` at the least (asserted above)
    for path in archived:
        assert_valid_atom(path)


def test_id_alias_keeps_old_id_after_title_fix(tmp_path: Path, seeds: Path) -> None:
    f = seeds / "002_58f30e9912765277.txt"
    f.write_text(
        f.read_text(encoding="utf-8").replace("The Digital Revolution", "The Digital Revolutions"),
        encoding="utf-8",
    )
    s = settings_with(tmp_path, '[ids]\n"the-digital-revolution" = "the-digital-revolutions"\n')
    build(s, [seeds], tmp_path / "out")
    feed = feedparser.parse(str(tmp_path / "out" / "all.atom"))
    entry = next(e for e in feed.entries if e.title == "The Digital Revolutions")
    assert entry.id == "tag:publisher.localhost,2017-12-04:the-digital-revolution"
    assert entry.link.endswith("/posts/the-digital-revolutions.html")


def test_websub_hub_is_linked_and_pinged_for_changed_feeds(tmp_path: Path, seeds: Path) -> None:
    pings: list[str] = []
    modes: list[str] = []  # checked here, not in the server's thread (where a failed
    # assert would only be printed)

    class Hub(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            form = parse_qs(body)
            modes.extend(form["hub.mode"])
            pings.extend(form["hub.url"])
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hub = f"http://127.0.0.1:{server.server_port}/hub"
    try:
        s = settings_with(tmp_path, f'[site]\nwebsub_hub = "{hub}"\n')
        out = tmp_path / "out"
        build(s, [seeds], out)
        base = s.site.base_url
        assert sorted(pings) == sorted(
            f"{base}{k}.{f}"
            for k in ("all", "tag/thanks", "tag/digital")
            for f in ("atom", "rss", "json")
        )
        assert modes == ["publish"] * len(pings)
        doc = feedparser.parse(str(out / "all.atom"))
        assert any(lk.rel == "hub" and lk.href == hub for lk in doc.feed.links)
        pings.clear()
        f = seeds / "002_58f30e9912765277.txt"
        f.write_text(f.read_text(encoding="utf-8").replace("cyber", "cyber-"), encoding="utf-8")
        build(s, [seeds], out, now=EDIT_NOW)
        assert sorted(pings) == sorted(
            f"{base}{k}.{f}" for k in ("all", "tag/digital") for f in ("atom", "rss", "json")
        )
    finally:
        server.shutdown()


def test_readme_documents_every_config_key() -> None:
    import dataclasses

    from publisher.config import _KEY_ALIASES, _SECTIONS

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    spelled = {(sec, field): key for (sec, key), field in _KEY_ALIASES.items()}
    for section, cls in _SECTIONS.items():
        assert f"`[{section}]`" in readme
        for f in dataclasses.fields(cls):
            key = spelled.get((section, f.name), f.name)
            assert f"`{key}`" in readme, f"[{section}] {key} missing from README"


def _synthetic_archives(folder: Path, posts: int, tags: int) -> None:
    from datetime import date, timedelta

    from tests.helpers.archives import long_date

    by_tag: dict[int, list[str]] = {t: [] for t in range(tags)}
    for i in range(posts):
        day = date(2019, 12, 31) - timedelta(days=i)
        text = (
            f"Post number {i} & <more>\n\n{long_date(day)}\n\nBody {i} café “q”.\n\nSecond {i}.\n"
        )
        for t in {i % tags, (i * 7) % tags}:
            by_tag[t].append(text)
    for t, texts in by_tag.items():
        write(folder / f"t{t}.txt", f"Posts Tagged ‘topic {t}’\n\n" + "\n".join(texts))


@pytest.mark.parametrize(
    ("max_items", "posts"),
    [(5, 300), (10_000, 800)],  # many small files; a few huge feeds (fewer files than posts)
)
def test_parallel_render_matches_serial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, max_items: int, posts: int
) -> None:
    import publisher.site.render as build_module

    forked: list[int] = []
    render_forked = build_module._render_forked

    def spy(writer, pending, *args):  # type: ignore[no-untyped-def]
        forked.append(len(pending))
        return render_forked(writer, pending, *args)

    def same_output() -> None:
        a = {k: v[0] for k, v in snapshot(tmp_path / "one").items() if not k.startswith(".")}
        b = {k: v[0] for k, v in snapshot(tmp_path / "two").items() if not k.startswith(".")}
        assert a == b

    monkeypatch.setattr(build_module, "_render_forked", spy)
    _synthetic_archives(tmp_path / "in", posts=posts, tags=6)
    s = settings_with(tmp_path, f"[build]\nfeed_max_items = {max_items}\n")
    one = build(s, [tmp_path / "in"], tmp_path / "one", jobs=1)
    assert forked == []
    two = build(s, [tmp_path / "in"], tmp_path / "two", jobs=2)
    assert forked == [two.written] and one.written == two.written  # the forked path was taken
    same_output()
    three = build(s, [tmp_path / "in"], tmp_path / "three", jobs=3)  # a lane per format
    assert forked[-1] == three.written and _files(tmp_path / "three") == _files(tmp_path / "one")
    again = build(s, [tmp_path / "in"], tmp_path / "two", jobs=2)
    assert again.up_to_date and again.unchanged == two.written

    # an edit to the newest post: incremental, and forked only when its feeds are large
    f = tmp_path / "in" / "t0.txt"
    f.write_text(f.read_text(encoding="utf-8").replace("Body 0 ", "Body zero ", 1), "utf-8")
    when = datetime(2026, 1, 5, 12, tzinfo=UTC)
    forked.clear()
    one = build(s, [tmp_path / "in"], tmp_path / "one", jobs=1, now=when)
    two = build(s, [tmp_path / "in"], tmp_path / "two", jobs=2, now=when)
    assert one.archives_read == two.archives_read == 1 and 0 < two.written == one.written
    assert len(forked) == (max_items == 10_000)
    same_output()


def _feeds_only(tmp_path: Path) -> Settings:
    """Pelican's benchmark settings: Atom and RSS only, every post, no pages."""
    extra = '[build]\nfeed_max_items = 10000\nformats = ["atom", "rss"]\npages = false\n'
    return settings_with(tmp_path, extra)


def test_a_feeds_only_build_in_two_workers_is_the_serial_build(tmp_path: Path) -> None:
    """Pelican's settings: the Atom and the RSS documents go to two workers, each
    making its own entries; the output is byte for byte the serial build's."""
    _synthetic_archives(tmp_path / "in", posts=700, tags=6)
    s = _feeds_only(tmp_path)
    build(s, [tmp_path / "in"], tmp_path / "one", jobs=1)
    build(s, [tmp_path / "in"], tmp_path / "two", jobs=2)
    assert _files(tmp_path / "two") == _files(tmp_path / "one")
    assert any(p.suffix == ".rss" for p in (tmp_path / "two").rglob("*"))


def test_a_worker_that_fails_stops_the_build_with_its_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The RSS worker fails; the build reports its error instead of waiting for ever,
    and the Atom worker is stopped."""
    from publisher.site.feeds import FeedRenderer

    def failing(self, doc):  # type: ignore[no-untyped-def]
        raise PublisherError("the rss worker failed on purpose")

    monkeypatch.setattr(FeedRenderer, "rss", failing)
    _synthetic_archives(tmp_path / "in", posts=700, tags=6)

    def too_long(*_: object) -> None:
        raise TimeoutError("the build still waits for a worker that failed")

    old = signal.signal(signal.SIGALRM, too_long)
    signal.alarm(60)
    try:
        with pytest.raises(PublisherError, match="on purpose"):
            build(_feeds_only(tmp_path), [tmp_path / "in"], tmp_path / "out", jobs=2)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def test_atom_and_rss_share_a_worker_only_when_the_rest_balances_them() -> None:
    from publisher.site.artifact import Artifact
    from publisher.site.render import _lanes

    def doc(path: str, weight: int) -> Artifact:
        return Artifact(path, "", bytes, shows=weight)

    feeds_only = [doc("all.atom", 300), doc("all.rss", 300), doc("tag/a.atom", 100)]
    assert _lanes(feeds_only, 2) == {".atom": 0, ".rss": 1, ".json": 0}
    everything = [
        *feeds_only,
        doc("all.json", 300),
        *(doc(f"posts/{i}.html", 1) for i in range(99)),
    ]
    assert _lanes(everything, 2) == {".atom": 0, ".rss": 0, ".json": 1}
    no_json = everything[:3] + everything[4:]  # 99 pages do not balance 700 of feeds
    assert _lanes(no_json, 2)[".rss"] == 1
    assert set(_lanes(everything, 1).values()) == {0}
    assert _lanes(everything, 4) == {".atom": 0, ".rss": 1, ".json": 2}  # one each


class _DiesWhileWritten:
    """A file's pieces whose writing kills the worker writing them, half-way through."""

    def __init__(self, how: Callable[[], None]) -> None:
        self.how = how

    def __iter__(self):  # type: ignore[no-untyped-def]
        yield b"<half a file>" * 1000
        self.how()
        yield b"never"


@pytest.mark.parametrize(
    ("how", "says"),
    [
        (lambda: os.kill(os.getpid(), signal.SIGKILL), "killed by SIGKILL"),
        (lambda: os._exit(3), "exited with 3"),
    ],
)
def test_a_render_worker_that_dies_is_an_error_not_a_hang(
    tmp_path: Path, how: Callable[[], None], says: str
) -> None:
    """A worker killed without a word (the out-of-memory killer, ``kill -9``) used
    to leave the build waiting for its report forever, holding the build lock. Now
    it is an error naming the cause; the other worker stops, and what the dead
    one was writing leaves no temporary file behind."""
    from publisher.site.artifact import Artifact
    from publisher.site.feeds import FeedRenderer
    from publisher.site.render import render_all
    from publisher.site.writer import OutputWriter

    out = tmp_path / "out"
    pending = [Artifact(f"page/{i}.html", "k", lambda: b"whole\n", shows=50) for i in range(200)]
    pending[7] = Artifact("page/7.html", "k", lambda: _DiesWhileWritten(how), shows=50)

    def too_long(*_: object) -> None:
        raise TimeoutError("the build still waits for a dead worker")

    old = signal.signal(signal.SIGALRM, too_long)
    signal.alarm(60)
    try:
        with pytest.raises(PublisherError) as exc:
            render_all(
                OutputWriter(out),
                pending,
                FeedRenderer(Settings().site, {}),
                False,
                2,
                lambda: None,
            )
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    assert says in exc.value.message and "build again" in exc.value.remedy
    left = sorted(p.name for p in out.rglob("*") if p.is_file())
    assert not [n for n in left if n.endswith(".tmp")]  # the half-written file is gone
    assert (
        "7.html" not in left
        and left
        and all((out / "page" / n).read_bytes() == b"whole\n" for n in left)
    )


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_fault_in_a_template_names_its_file_and_line(
    tmp_path: Path, jobs: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A site's own template with a syntax error, or naming what a post does not
    have: an error at FILE:LINE with a remedy, rendered here or in forked workers
    (300 posts: past the size where a build forks), never a traceback."""
    import publisher.site.render as build_module

    forked, render_forked = [], build_module._render_forked
    monkeypatch.setattr(
        build_module, "_render_forked", lambda *a: forked.append(1) or render_forked(*a)
    )
    _synthetic_archives(tmp_path / "in", posts=300, tags=6)
    own = tmp_path / "theme"
    extra = f"[build]\ntemplates = '{own.as_posix()}'\n"
    faults = {
        "{% block main %}\n{{ post.title }\n{% endblock %}": ":2: template error: unexpected '}'",
        "{% block main %}\n\n<p>{{ post.nothing.x }}</p>{% endblock %}": ":3: template error:",
    }
    for n, (body, says) in enumerate(faults.items()):
        write(own / "post.html.j2", '{% extends "base.html.j2" %}' + body)
        with pytest.raises(PublisherError) as exc:
            build(settings_with(tmp_path, extra), [tmp_path / "in"], tmp_path / f"o{n}", jobs=jobs)
        assert exc.value.message.startswith(f"{own / 'post.html.j2'}{says}"), exc.value.message
        assert "[build] templates" in exc.value.remedy
    assert len(forked) == (2 if jobs == 2 else 0)


def test_no_change_rebuild_imports_nothing_heavy(tmp_path: Path, seeds: Path) -> None:
    """The cheap path must stay cheap: no feed, template, database or scheduler library."""
    s = settings_with(tmp_path)
    build(s, [seeds], tmp_path / "out")
    code = (
        "import sys; from publisher.cli import main; "
        f"rc = main(['--config', {str(tmp_path / 'p.toml')!r}, 'build', '--quiet', "
        f"'--out', {str(tmp_path / 'out')!r}, {str(seeds)!r}]); "
        "heavy = [m for m in ('feedgen', 'jinja2', 'sqlalchemy', 'apscheduler', 'lxml') "
        "if m in sys.modules]; print(rc, heavy)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "nothing changed" in r.stdout and r.stdout.strip().endswith("0 []")


def test_a_feeds_only_build_loads_no_template_or_database_library(
    tmp_path: Path, seeds: Path
) -> None:
    """With pages off, nothing needs Jinja2; SQLAlchemy stays in the state helper."""
    settings_with(tmp_path, "[build]\npages = false\n")
    code = (
        "import sys; from publisher.cli import main; "
        f"rc = main(['--config', {str(tmp_path / 'p.toml')!r}, 'build', '--quiet', "
        f"'--out', {str(tmp_path / 'out')!r}, {str(seeds)!r}]); "
        "print(rc, [m for m in ('jinja2', 'sqlalchemy') if m in sys.modules])"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUBLISHER_")}
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert r.stdout.strip().endswith("0 []") and (tmp_path / "out" / "all.atom").is_file()
    assert not list((tmp_path / "out").rglob("*.html"))


def _files(root: Path) -> dict[str, bytes]:
    return {k: v[0] for k, v in snapshot(root).items() if not k.startswith(".")}


@pytest.mark.parametrize(
    "extra",
    [
        "",
        # feeds of 2 entries: an older post added shifts the fixed archive documents
        '[build]\nfeed_max_items = 2\n[ids]\n"digital-revolution-old" = "the-digital-revolution"\n',
    ],
    ids=["defaults", "small-feeds"],
)
def test_incremental_rebuilds_match_full_rebuilds(tmp_path: Path, seeds: Path, extra: str) -> None:
    """Two sites from the same archives: one rebuilt from its snapshot after each
    edit, one rebuilt in full (snapshot dropped). Every file must agree."""
    inc = settings_with(tmp_path, extra, name="inc.toml")
    ref = settings_with(tmp_path, extra, name="ref.toml")
    build(inc, [seeds], tmp_path / "inc")
    build(ref, [seeds], tmp_path / "ref")
    digital = seeds / "002_58f30e9912765277.txt"
    single, fresh = seeds / "saved-later.txt", seeds / "zz-fresh.txt"
    edits = [
        # the top post of one archive: a paragraph added moves the 9 posts below it
        (digital, "have become the first", "have become.\n\nA paragraph more: the first", 1),
        # a moved post that is in both archives: read from the first build's delta
        (None, "on a similar journey", "on a very similar journey", 2),
        # another moved post, edited on the delta of two builds
        (digital, "mandatory cyber", "mandatory Cyber", 1),
        # a new post: the order, minutes and slugs are redone; the delta keeps the order
        (digital, "‘digital’\n", "‘digital’\n\nNew\n\nMay 1, 2020\n\nA new post.\n", 1),
        # an old post, at the end of the archive: every older archive document shifts
        (digital, "Summer breaks", "Old\n\nMay 1, 2010\n\nAn old post.\n\nSummer breaks", 1),
        # a post retitled in both archives: its slug and id change
        (None, "Digitisation, and the", "Digitisation and the", 2),
        # the new post removed again, then text edited on a page the delta keeps whole
        (digital, "New\n\nMay 1, 2020\n\nA new post.\n\n", "", 1),
        (digital, "mandatory Cyber", "mandatory CYBER", 1),
        # a warning in one archive (a weekday that does not match): kept in the delta
        (digital, "Monday, August 6th, 2018", "Friday, August 6th, 2018", 1),
        # archives saved anew: a single post page, a tag archive of a new tag (a new term
        # the delta must keep), then both gone again
        (single, None, "Saved later\n\nJune 3, 2020\n\nText.\n\nTags: digital\n", 1),
        (fresh, None, "Posts Tagged ‘fresh’\n\nSaved later\n\nJune 3, 2020\n\nText.\n", 1),
        (single, "", None, 0),
        (fresh, "", None, 0),
    ]
    for i, (only, old, new, archives) in enumerate(edits):
        if old is None:
            only.write_text(new, encoding="utf-8")
        elif new is None:
            only.unlink()
        for f in [only] if only else sorted(seeds.glob("*.txt")):
            if old and new is not None:
                f.write_text(f.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")
        now = EDIT_NOW.replace(hour=10 + i % 14)
        a = build(inc, [seeds], tmp_path / "inc", now=now)
        SnapshotStore(ref.state.url, tmp_path / "ref").discard()
        b = build(ref, [seeds], tmp_path / "ref", now=now)
        assert (a.archives_read, b.archives_read) == (archives, a.archives)
        assert f"{archives} of {a.archives} archives read" in a.summary()
        assert sorted(a.changed) == sorted(b.changed), (i, set(a.changed) ^ set(b.changed))
        assert _files(tmp_path / "inc") == _files(tmp_path / "ref")
    feed = feedparser.parse(str(tmp_path / "inc" / "tag" / "digital.atom"))
    entry = next(e for e in feed.entries if e.title.startswith("Digitisation"))
    assert entry.title == "Digitisation and the Children’s Services Ofsted"
    assert not any(e.title == "New" for e in feed.entries)


def test_incremental_rebuild_falls_back_when_its_records_cannot_vouch(
    tmp_path: Path, seeds: Path
) -> None:
    s = settings_with(tmp_path)
    out = tmp_path / "out"
    build(s, [seeds], out)
    fresh = _files(out)
    f = seeds / "002_58f30e9912765277.txt"

    def edit(old: str, new: str) -> None:
        f.write_text(f.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")

    # a file edited by hand is put back, though the edited post is not in it
    (out / "tag" / "thanks.html").write_text("defaced", encoding="utf-8")
    edit("mandatory cyber", "mandatory Cyber")
    r = build(s, [seeds], out)
    assert r.archives_read == 1 and "tag/thanks.html" in r.changed
    assert (out / "tag" / "thanks.html").read_bytes() == fresh["tag/thanks.html"]
    # a damaged snapshot: a full build
    store = SnapshotStore(s.state.url, out)
    store.base.write_bytes(b"not a pickle")
    edit("mandatory Cyber", "mandatory CYBER")
    assert build(s, [seeds], out).archives_read == 2
    # the output folder gone: every file is written again, incrementally or not
    shutil.rmtree(out)
    edit("mandatory CYBER", "mandatory cyber")
    r = build(s, [seeds], out)
    assert r.archives_read == 1 and r.written == len(fresh) and _files(out).keys() == fresh.keys()
    assert (out / "tag" / "thanks.html").read_bytes() == fresh["tag/thanks.html"]
    # a state database replaced since: the snapshot's dates are not used (its parsed
    # pages are: they depend on the archives only); a new database knows no edits
    Path(s.state.url.removeprefix("sqlite:///")).unlink()
    edit("mandatory cyber", "mandatory Cyber")
    assert build(s, [seeds], out).archives_read == 1
    feed = feedparser.parse(str(out / "tag" / "digital.atom"))
    assert len(feed.entries) == 10 and all(e.updated == e.published for e in feed.entries)


def test_a_snapshot_that_cannot_be_kept_costs_only_speed(
    tmp_path: Path, seeds: Path, caplog: pytest.LogCaptureFixture
) -> None:
    s = settings_with(tmp_path)
    out = tmp_path / "out"
    store = SnapshotStore(s.state.url, out)
    write(store.base.parent, "a file where the snapshot folder would be")
    first = build(s, [seeds], out)
    assert "build snapshot not kept" in caplog.text
    f = seeds / "002_58f30e9912765277.txt"
    f.write_text(f.read_text(encoding="utf-8").replace("cyber security training", "training"))
    again = build(s, [seeds], out)
    assert (first.written, again.archives_read) == (
        35,
        2,
    ) and "posts/the-importance-of-cyber-security.html" in again.changed


def test_full_reads_what_size_and_time_cannot_show(tmp_path: Path, seeds: Path) -> None:
    s = settings_with(tmp_path)
    out = tmp_path / "out"
    build(s, [seeds], out)
    f = seeds / "002_58f30e9912765277.txt"
    st = f.stat()
    f.write_text(f.read_text(encoding="utf-8").replace("mandatory cyber", "mandatory Cyber"))
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))  # as `cp -p` or `rsync -t` may leave it
    assert f.stat().st_size == st.st_size and build(s, [seeds], out).up_to_date
    forced = build(s, [seeds], out, full=True)
    assert forced.archives_read == 2
    assert "posts/the-importance-of-cyber-security.html" in forced.changed
    assert "mandatory Cyber" in (out / "posts/the-importance-of-cyber-security.html").read_text()


def test_without_the_cache_builds_are_the_same_and_keep_no_snapshot(
    tmp_path: Path, seeds: Path
) -> None:
    """``[build] cache = false`` (a one-off build, as on a clean CI checkout): the same
    files, nothing kept beside the state database, and a snapshot an earlier build
    kept is removed (it would no longer describe the output)."""
    cached, plain = (
        settings_with(tmp_path, name="cached.toml"),
        settings_with(tmp_path, "[build]\ncache = false\n", name="plain.toml"),
    )
    a, b = tmp_path / "a", tmp_path / "b"
    build(cached, [seeds], a)
    build(plain, [seeds], b)
    assert SnapshotStore(cached.state.url, a).base.is_file()
    assert kept(plain, b) == []
    assert _files(a) == _files(b)

    f = seeds / "002_58f30e9912765277.txt"
    f.write_text(f.read_text(encoding="utf-8").replace("mandatory cyber", "mandatory Cyber"))
    ra, rb = build(cached, [seeds], a, now=EDIT_NOW), build(plain, [seeds], b, now=EDIT_NOW)
    assert (ra.archives_read, rb.archives_read) == (1, 2)  # no snapshot: every archive
    assert sorted(ra.changed) == sorted(rb.changed) and _files(a) == _files(b)
    assert build(plain, [seeds], b).up_to_date  # the manifest still sees that
    assert kept(plain, b) == []

    r = run_cli("--config", str(tmp_path / "cached.toml"), "build", "--quiet", "--no-cache",
                "--out", str(a), str(seeds), cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert kept(cached, a) == []
    assert _files(a) == _files(b)


def kept(s: Settings, out: Path) -> list[str]:
    """What the builds of ``out`` keep beside the state database, but their lock."""
    folder = SnapshotStore(s.state.url, out).base.parent
    return sorted(p.name for p in folder.iterdir() if p.suffix != ".lock")


def test_archives_outside_the_working_folder_keep_the_names_given(
    tmp_path: Path, seeds: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Problems name a file as it was given ("../seeds/..."), in full and incremental
    builds alike, and the snapshot then still patches edits to it."""
    s = settings_with(tmp_path)
    (tmp_path / "site").mkdir()
    monkeypatch.chdir(tmp_path / "site")
    given = Path("..") / "seeds"
    f = seeds / "002_58f30e9912765277.txt"
    f.write_text(f.read_text(encoding="utf-8").replace("Monday, August 6th", "Friday, August 6th"))
    build(s, [given], Path("out"))
    assert "../seeds/002_58f30e9912765277.txt:25: warning" in caplog.text
    caplog.clear()
    f.write_text(f.read_text(encoding="utf-8").replace("mandatory cyber", "mandatory Cyber"))
    edited = build(s, [given], Path("out"))
    assert "../seeds/002_58f30e9912765277.txt:25: warning" in caplog.text
    assert edited.archives_read == 1 and SnapshotStore(s.state.url, Path("out")).delta.is_file()


def test_settings_that_do_not_change_the_output_leave_a_no_change_build(
    settings: Settings, tmp_path: Path
) -> None:
    """The build's cache key holds only what its output is made from: new SMTP,
    delivery or schedule settings (or the config file's name) read no archive again,
    while a site setting does."""
    out = tmp_path / "out"
    first = build(settings, [SEEDS], out)
    assert not first.up_to_date
    other = replace(
        settings,
        smtp=replace(settings.smtp, host="relay.example.org", port=2525),
        delivery=replace(settings.delivery, method="smtp", max_attempts=9),
        schedule=replace(settings.schedule, digest_cron="0 8 * * tue"),
        source="elsewhere.toml",
    )
    assert build(other, [SEEDS], out).up_to_date
    retitled = replace(other, site=replace(settings.site, title="Another title"))
    again = build(retitled, [SEEDS], out)
    assert not again.up_to_date and again.written > 0


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("after", [0.4, 0.9, 1.5])
def test_a_build_killed_leaves_no_process_and_no_lock_behind(tmp_path: Path, after: float) -> None:
    """``kill -9`` of a build (the CLI's: with its state helper and render workers)
    at several points: every process it forked ends with it (none is left holding
    the build's lock or waiting on a pipe), and the next build starts at once."""
    _synthetic_archives(tmp_path / "in", posts=2500, tags=8)
    cfg = tmp_path / "publisher.toml"
    cfg.write_text(
        f'[build]\noutput = "{(tmp_path / "out").as_posix()}"\n'
        f'[state]\nurl = "sqlite:///{(tmp_path / "state.db").as_posix()}"\n',
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUBLISHER_")}
    cmd = [sys.executable, "-m", "publisher", "--config", str(cfg), "build", "--quiet"]
    proc = subprocess.Popen(
        [*cmd, "--jobs", "2", str(tmp_path / "in")],
        cwd=tmp_path,
        env=env,
        start_new_session=True,  # its own process group: the children stay in it
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(after)
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 10
    while _group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _group_alive(proc.pid), "a child of the killed build is still running"
    again = subprocess.run(
        [*cmd, str(tmp_path / "in")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert again.returncode == 0, again.stderr
    assert "waiting for another build" not in again.stderr
