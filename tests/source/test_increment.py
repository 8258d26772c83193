"""Incremental normalize: a patched stream is exactly what a full normalize gives."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from publisher.source.archive import parse_page
from publisher.source.increment import Patch, patch
from publisher.source.normalize import normalize
from publisher.source.posts import Stream
from publisher.source.raw import ArchivePage
from tests.helpers import SEEDS, examples
from tests.helpers.archives import LONDON, archive_files, long_date

DOMAIN = "example.com"
DIGITISATION = "Digitisation, and the Children’s Services Ofsted"


def pages_of(files: dict[str, str]) -> dict[str, ArchivePage]:
    return {name: parse_page(text.encode("utf-8"), name) for name, text in files.items()}


def full(pages: dict[str, ArchivePage]) -> Stream:
    return normalize(pages.values(), LONDON, DOMAIN)


def assert_same(a: Stream, b: Stream) -> None:
    assert a.posts == b.posts
    assert [p.content_hash for p in a.posts] == [p.content_hash for p in b.posts]
    assert [p.summary for p in a.posts] == [p.summary for p in b.posts]
    assert (a.problems, a.skipped, a.terms) == (b.problems, b.skipped, b.terms)


def seed_files() -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(SEEDS.glob("*.txt"))}


def edited(files: dict[str, str], old: str, new: str, only: str | None = None) -> dict[str, str]:
    out = dict(files)
    for name, text in files.items():
        if only in (None, name) and old in text:
            out[name] = text.replace(old, new)
    return out


def run(before: dict[str, str], after: dict[str, str]):  # type: ignore[no-untyped-def]
    old_pages, new_pages = pages_of(before), pages_of(after)
    changed = {n: p for n, p in new_pages.items() if after[n] != before.get(n)}
    result = patch(full(old_pages), old_pages, changed, DOMAIN, LONDON)
    return result, full(new_pages)


def patched_seeds(old: str, new: str) -> tuple[Patch, Stream]:
    """The seeds with ``old`` made ``new`` in every archive: patched, and as it must be."""
    files = seed_files()
    result, expected = run(files, edited(files, old, new))
    assert result is not None
    assert_same(result.stream, expected)
    return result, expected


def test_body_edit_in_every_copy_remakes_that_post_only() -> None:
    result, expected = patched_seeds("on a similar journey", "on a very similar journey")
    [post] = [p for p in expected.posts if p.title == DIGITISATION]
    assert result.remade == (post.id,)
    assert "very similar" in post.paragraphs[0].text


def test_added_paragraph_moves_the_lines_of_the_posts_below() -> None:
    result, expected = patched_seeds(
        "on a similar journey", "on a similar journey.\n\nA new paragraph"
    )
    moved = {p.id for p in result.replaced} - set(result.remade)
    assert moved, "posts below the edit are found two lines lower"
    old = full(pages_of(seed_files()))
    assert all(
        p.sources != q.sources
        for p in old.posts
        for q in expected.posts
        if p.id in moved and q.id == p.id
    )


def test_touched_but_unchanged_remakes_nothing() -> None:
    files = seed_files()
    result, expected = run(files, dict(files))
    assert result is not None and result.remade == () and result.replaced == ()
    assert_same(result.stream, expected)


def test_copies_that_come_go_or_move_are_patched_too() -> None:
    """Posts added, removed, retitled, redated, or filed in one more archive: the
    affected days are ordered again and every slug given out again."""
    files = seed_files()
    first, second = files
    removed = files[second].split("\n\nLots going on in August")
    cases = {
        "title": edited(files, DIGITISATION, "Digitisation and Ofsted"),
        "date": edited(files, "Monday, February 11th, 2019", "Monday, February 18th, 2019"),
        "a post added": {**files, first: files[first] + "\n\nNew post\n\nMay 1, 2019\n\nText.\n"},
        "a post added on the same day": {
            **files,
            first: files[first].replace(
                "\n\nThe relationship",
                "\n\nAnother that Monday\n\nMonday, February 11th, 2019\n\nA.\n\nThe relationship",
            ),
        },
        "the same title, later: the newcomer's slug gets its date": {
            **files,
            first: files[first] + f"\n\n{DIGITISATION}\n\nMay 1, 2019\n\nAgain.\n",
        },
        "the same title, earlier: the older post takes the plain slug": {
            **files,
            first: files[first] + f"\n\n{DIGITISATION}\n\nMay 1, 2010\n\nFirst.\n",
        },
        "a tag renamed: one term gone, one new": edited(
            files, "Posts Tagged ‘thanks’", "Posts Tagged ‘gratitude’"
        ),
        "a post removed": {
            **files,
            second: removed[0]
            + "\n\nCongratulations"
            + removed[1].split("\n\nCongratulations", 1)[1],
        },
        "a post filed in one more archive": {
            **files,
            first: files[first]
            + "\n\nThe importance of cyber security\n\n"
            + files[second]
            .split("The importance of cyber security\n\n", 1)[1]
            .split("\n\nThe Digital Revolution")[0],
        },
    }
    for why, after in cases.items():
        result, expected = run(files, after)
        assert result is not None and result.reordered, why
        assert_same(result.stream, expected)
        assert {p.id for p in expected.posts} ^ {
            p.id for p in full(pages_of(files)).posts
        } or result.remade, why


def test_warnings_of_changed_archives_are_theirs_to_change() -> None:
    """A weekday that does not match (a warning, the date wins) comes and goes with its
    archive's edits; the other archives' warnings stay."""
    files = seed_files()
    first, second = files
    warned = edited(files, "Monday, February 11th, 2019", "Friday, February 11th, 2019")
    for before, after in [
        (files, warned),
        (warned, files),
        (warned, edited(warned, "cyber", "Cyber", only=second)),
    ]:
        result, expected = run(before, after)
        assert result is not None
        assert_same(result.stream, expected)
    assert [p.file for p in full(pages_of(warned)).problems] == [first, second]


def test_edits_it_cannot_patch_are_left_to_a_full_normalize() -> None:
    files = seed_files()
    first = next(iter(files))
    cases = {
        "one copy of two differs: a conflict": edited(
            files, "on a similar journey", "on another journey", only=first
        ),
        "a tag now shown as 'Thanks'": edited(
            files, "Posts Tagged ‘thanks’", "Posts Tagged ‘Thanks’"
        ),
    }
    for why, after in cases.items():
        result, _ = run(files, after)
        assert result is None, why


def test_a_merged_term_is_left_to_a_full_normalize_before_and_after() -> None:
    """A merged term's warning is the stream's, not a page's (see ``collect_terms``):
    an edit made while it stands, or one that makes it, is not patched."""
    files = seed_files()
    merged = {**files, "zz.txt": "Posts Tagged ‘Thanks!’\n\nA post\n\nMay 1, 2018\n\nText.\n"}
    warned = [p.message for p in full(pages_of(merged)).problems]
    assert len(warned) == 1 and warned[0].startswith("tag ‘thanks’ is published as ‘Thanks!’")
    assert run(files, merged)[0] is None  # it comes
    assert run(merged, edited(merged, "Text.", "More text."))[0] is None  # it stands
    result, expected = run(merged, edited(merged, "‘Thanks!’", "‘other’"))
    assert result is None and not expected.problems  # it goes


@given(
    data=archive_files(),
    pick=st.integers(0, 50),
    which=st.sets(st.integers(0, 9)),
    grow=st.booleans(),
)
@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_body_edit_patches_to_the_full_result_or_declines(data, pick, which, grow) -> None:  # type: ignore[no-untyped-def]
    """Edit a paragraph (or add one after it, moving the lines below) in every file
    that has it, or in some (the copies then conflict): a patch, when given,
    equals normalizing everything again."""
    ps, files = data
    before = dict(files)
    kind, body = ps[pick % len(ps)]["paras"][0]
    old = body if kind == "p" else f"  • {body[0]}"
    new = old + "\n\nA paragraph more." if grow else old.replace(".", " indeed.", 1)
    holders = sorted(n for n, t in before.items() if old in t)
    chosen = {n for i, n in enumerate(holders) if i in which} or set(holders)
    after = {n: t.replace(old, new) if n in chosen else t for n, t in before.items()}
    result, expected = run(before, after)
    if result is not None:
        assert_same(result.stream, expected)
    undated = any(r.date is None for page in pages_of(before).values() for r in page.posts)
    if chosen == set(holders) and not undated and not expected.problems:
        assert result is not None  # the same edit in every copy is always patched


def _newline(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\r" if "\r" in text else "\n"


@st.composite
def structural_edits(draw):  # type: ignore[no-untyped-def]
    """Archive files, then the same files with a post added, removed, retitled or
    redated, or a tag archive's tag renamed."""
    ps, files = draw(archive_files())
    before = dict(files)
    after = dict(files)
    pages = pages_of(before)
    kind = draw(st.sampled_from(["add", "remove", "retitle", "redate", "retag"]))
    tagged = sorted(n for n, t in before.items() if t.startswith("Posts Tagged"))
    if kind == "retag" and tagged:
        name = draw(st.sampled_from(tagged))
        nl = _newline(before[name])
        header, rest = before[name].split(nl, 1)
        tag = draw(st.sampled_from(["thanks", "Thanks", "digital", "Fresh", "café"]))
        after[name] = f"Posts Tagged ‘{tag}’{nl}{rest}"
        return before, after, kind
    raws = [(name, r) for name, page in pages.items() for r in page.posts if r.date is not None]
    if kind == "add" or not raws:
        name = draw(st.sampled_from(sorted(before)))
        day = draw(st.dates(date(2016, 1, 1), date(2019, 12, 31)))
        title = draw(st.sampled_from(["Zebra Crossing", "Council", "Staff Thanks"]))
        nl = _newline(before[name])
        lines = before[name].split(nl)
        at = 2 if lines[0].startswith(("Posts Tagged", "Archive for")) else 0
        block = [title, "", long_date(day), "", "Brand new.", ""]
        after[name] = nl.join(lines[:at] + block + lines[at:])
        return before, after, "add"
    name, raw = draw(st.sampled_from(raws))
    nl = _newline(before[name])
    lines = before[name].split(nl)
    if kind == "remove":
        later = [r.line for r in pages[name].posts if r.line > raw.line]
        end = min(later) - 1 if later else len(lines)
        after[name] = nl.join(lines[: raw.line - 1] + lines[end:])
    else:
        old = lines[raw.line - 1] if kind == "retitle" else long_date(raw.date)
        new = old + " Again" if kind == "retitle" else long_date(raw.date + timedelta(days=1))
        for n, text in before.items():
            after[n] = text.replace(old, new)
    return before, after, kind


@given(edit=structural_edits())
@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_structural_edit_patches_to_the_full_result_or_declines(edit) -> None:  # type: ignore[no-untyped-def]
    """A patch, when given, equals normalizing everything again; and an edit of
    archives with no undated copy and no problem, before or after, is patched
    (declining is for what a patch cannot vouch for, not a way out)."""
    before, after, kind = edit
    result, expected = run(before, after)
    if result is not None:
        assert_same(result.stream, expected)
    old = full(pages_of(before))
    undated = any(
        r.date is None for f in (before, after) for p in pages_of(f).values() for r in p.posts
    )
    if kind != "retag" and not undated and not expected.problems and not old.problems:
        assert result is not None


def test_a_second_dated_post_of_an_undated_copys_title_declines() -> None:
    """An undated copy joins the one dated post of its title; a second one makes it
    an error, which only a full normalize sees (found by the property above)."""
    before = {
        "a.txt": "Posts Tagged ‘x’\n\nCouncil\n\nJanuary 1, 2016\n\nText.\n",
        "b.txt": "Council\n\nText.\n\nTags: y\n\nComments are closed.\n",
        "c.txt": "Posts Tagged ‘z’\n\nStaff\n\nMarch 1, 2016\n\nOther.\n",
    }
    after = {**before, "c.txt": before["c.txt"] + "\nCouncil\n\nJanuary 2, 2016\n\nNew.\n"}
    result, expected = run(before, after)
    assert result is None and expected.errors
