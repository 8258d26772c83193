"""Normalizer: merging copies, conflicts, ordering, slugs and ids."""

from __future__ import annotations

from datetime import date

from dateutil import tz

from publisher.source.archive import parse_page
from publisher.source.normalize import normalize
from publisher.text import slugify

LONDON = tz.gettz("Europe/London")
BODY = "One.\n\nTwo two.\n\nThree three three.\n"


def page(name: str, text: str):
    return parse_page(text.encode(), name)


def run(*pages, aliases=None):
    return normalize(list(pages), LONDON, "example.org", aliases)


def tagged(tag: str, *posts: str) -> str:
    return f"Posts Tagged ‘{tag}’\n\n" + "\n".join(posts)


def post(title: str, when: str = "Monday, February 11th, 2019", body: str = BODY) -> str:
    return f"{title}\n\n{when}\n\n{body}\n"


def test_copies_merge_with_union_of_terms_and_folded_whitespace() -> None:
    a = page("a.txt", tagged("thanks", post("It’s  done", body="One.\u00a0 Two.\n")))
    b = page("b.txt", tagged("digital", post("It's done", body="One.  Two.\n")))
    c = page("c.txt", "Archive for the ‘News’ Category\n\n" + post("It’s done", body="One. Two.\n"))
    stream = run(a, b, c)
    assert stream.problems == []
    (p,) = stream.posts
    assert p.tags == ("digital", "thanks") and p.categories == ("News",)
    assert p.sources == ("a.txt:3", "b.txt:3", "c.txt:3")


def test_excerpt_yields_to_full_copy() -> None:
    a = page("a.txt", tagged("x", post("P", body="One.\n\nTwo Continue reading →\n")))
    b = page("b.txt", tagged("y", post("P", body="One.\n\nTwo three.\n\nFour.\n")))
    (p,) = run(a, b).posts
    assert [x.text for x in p.paragraphs] == ["One.", "Two three.", "Four."]
    assert not p.excerpt and p.tags == ("x", "y")


def test_truncated_copy_at_end_of_page_yields() -> None:
    a = page("a.txt", tagged("x", post("P", body="One.\n\nTwo thr")).rstrip())
    b = page("b.txt", tagged("y", post("P", body="One.\n\nTwo three.\n\nFour.\n")))
    (p,) = run(a, b).posts
    assert len(p.paragraphs) == 3


def test_page_cut_inside_next_title_is_not_post_text() -> None:
    a = page("a.txt", tagged("x", post("P", body="One.\n\nTwo.") + "\nNext pos"))
    b = page("b.txt", tagged("y", post("P", body="One.\n\nTwo.\n"), post("Q", "May 1, 2018")))
    stream = run(a, b)
    assert stream.problems == []
    p = next(x for x in stream.posts if x.title == "P")
    assert [x.text for x in p.paragraphs] == ["One.", "Two."]


def test_conflicting_copies_name_both_places_and_skip_the_post() -> None:
    a = page("a.txt", tagged("x", post("P", body="One.\n\nTwo.\n"), post("Q", "May 1, 2018")))
    b = page("b.txt", tagged("y", post("P", body="One.\n\nDifferent.\n")))
    stream = run(a, b)
    (err,) = stream.errors
    assert err.file in ("a.txt", "b.txt") and err.line == 3
    other = "b.txt:3" if err.file == "a.txt" else "a.txt:3"
    assert "conflicting copies of 'P' (2019-02-11)" in err.message and other in err.message
    assert "paragraph 2" in err.message
    assert [p.title for p in stream.posts] == ["Q"]
    assert stream.skipped == ["a.txt:3: P", "b.txt:3: P"]


def test_conflict_message_shows_where_a_long_paragraph_differs() -> None:
    opening = "The same long opening of a paragraph, word for word in both copies, "
    a = page("a.txt", tagged("x", post("P", body=opening + "then the end.\n")))
    b = page("b.txt", tagged("y", post("P", body=opening + "then THE end.\n")))
    (err,) = run(a, b).errors
    assert "then the end." in err.message and "then THE end." in err.message
    assert "The same long opening" not in err.message  # not the part both copies share


def test_undated_single_page_merges_with_dated_copy() -> None:
    single = page("single.txt", "P\n\n" + BODY + "\nTags: extra\n\nComments are closed.\n")
    dated = page("a.txt", tagged("x", post("P")))
    stream = run(single, dated)
    assert stream.problems == []
    (p,) = stream.posts
    assert p.tags == ("extra", "x") and p.date == date(2019, 2, 11)


def test_undated_post_without_dated_copy_is_reported_not_invented() -> None:
    stream = run(page("single.txt", "Lonely\n\n" + BODY))
    assert stream.posts == ()
    (err,) = stream.errors
    assert (err.file, err.line) == ("single.txt", 1)
    assert "cannot be dated" in err.message and "add a date line" in err.message


def test_same_day_posts_keep_archive_order_across_files() -> None:
    day = "Monday, February 11th, 2019"
    a = page("a.txt", tagged("x", post("Zebra", day), post("Apple", day)))
    b = page("b.txt", tagged("y", post("Apple", day), post("Mango", day)))
    stream = run(b, a)
    assert [p.title for p in stream.posts] == ["Zebra", "Apple", "Mango"]
    times = [p.published.strftime("%H:%M") for p in stream.posts]
    assert times == ["12:00", "11:59", "11:58"]
    assert stream.posts[0].published.utcoffset().total_seconds() == 0  # GMT in February


def test_slug_collisions_resolved_oldest_keeps_plain() -> None:
    a = page("a.txt", tagged("x", post("Thanks!", "March 1, 2019"), post("Thanks?", "May 1, 2018")))
    stream = run(a)
    by_title = {p.title: p for p in stream.posts}
    assert by_title["Thanks?"].slug == "thanks"
    assert by_title["Thanks!"].slug == "thanks-2019-03-01"
    # the date makes the id unique: it keeps the plain slug, whoever is older
    assert by_title["Thanks!"].id == "tag:example.org,2019-03-01:thanks"
    assert by_title["Thanks?"].id == "tag:example.org,2018-05-01:thanks"


def test_ids_stay_when_an_older_archive_with_the_same_titles_is_found() -> None:
    """Recurring titles ("Thanks", "Merry Christmas"): an older post found later takes
    the plain slug, but no id a reader has seen changes."""
    newer = page(
        "a.txt", tagged("x", post("Thanks!", "March 1, 2019"), post("Thanks?", "May 1, 2018"))
    )
    older = page("b.txt", tagged("y", post("Thanks.", "June 1, 2017")))
    before = {p.title: p.id for p in run(newer).posts}
    after = {p.title: p for p in run(newer, older).posts}
    assert {t: after[t].id for t in before} == before
    assert after["Thanks."].slug == "thanks" and after["Thanks?"].slug == "thanks-2018-05-01"
    # two such titles on one day: the second by title gets -2
    day = page(
        "c.txt", tagged("z", post("Thanks!", "March 1, 2019"), post("Thanks?", "March 1, 2019"))
    )
    ids = sorted(p.id for p in run(day).posts)
    assert ids == ["tag:example.org,2019-03-01:thanks", "tag:example.org,2019-03-01:thanks-2"]


def test_id_alias_keeps_old_id_after_rename() -> None:
    a = page("a.txt", tagged("x", post("Corrected title")))
    (p,) = run(a, aliases={"old-titel": "corrected-title"}).posts
    assert p.slug == "corrected-title"
    assert p.id == "tag:example.org,2019-02-11:old-titel"


def test_term_slugs_are_safe_and_merge_case_variants() -> None:
    a = page("a.txt", tagged("../../etc/passwd", post("P")))
    b = page("b.txt", tagged("Digital", post("Q", "May 1, 2018")))
    c = page("c.txt", tagged("digital ", post("R", "May 2, 2018")))
    d = page("d.txt", tagged("数字", post("S", "May 3, 2018")))
    stream = run(a, b, c, d)
    slugs = {t.slug for t in stream.terms_of("tag")}
    assert "etc-passwd" in slugs and "digital" in slugs and len(slugs) == 3
    assert all("/" not in s and ".." not in s and s for s in slugs)
    assert len(stream.posts_with(stream.term("tag", "digital"))) == 2
    assert slugify("CON", "tag") == "con-tag" and slugify("数字", "tag").startswith("tag-")


def test_names_that_only_share_a_slug_are_merged_with_a_warning() -> None:
    """‘C#’ and ‘C++’ both make the slug ``c``, so one feed: published as one tag,
    but said so at the copy that carries the other name; case and spacing variants
    (‘Digital’, ‘digital ’) are one name and say nothing."""
    a = page("a.txt", tagged("C#", post("P")))
    b = page("b.txt", tagged("C++", post("Q", "May 1, 2018")))
    c = page("c.txt", tagged("Digital", post("R", "May 2, 2018")))
    d = page("d.txt", tagged("digital ", post("S", "May 3, 2018")))
    stream = run(a, b, c, d)
    assert [(t.name, t.slug) for t in stream.terms_of("tag")] == [
        ("C#", "c"),
        ("Digital", "digital"),
    ]
    assert {p.title: p.tags for p in stream.posts}["Q"] == ("C#",)
    assert [(p.file, p.line, p.severity) for p in stream.problems] == [("b.txt", 3, "warning")]
    assert "tag ‘C++’ is published as ‘C#’: both make the slug 'c'" in stream.problems[0].message
    assert not stream.errors and len(stream.posts) == 4


def test_html_is_escaped_and_summary_plain() -> None:
    a = page(
        "a.txt", tagged("x", post("<b>&</b>", body="Fish & <chips> \"quoted\" 'x'\n\n  • a<b\n"))
    )
    (p,) = run(a).posts
    assert p.title == "<b>&</b>"
    assert (
        p.html
        == "<p>Fish &amp; &lt;chips&gt; &quot;quoted&quot; &#x27;x&#x27;</p>\n<ul><li>a&lt;b</li></ul>"
    )
    assert p.summary == "Fish & <chips> \"quoted\" 'x'…"
    assert p.word_count == 6


def test_content_hash_is_pinned() -> None:
    """The state database keeps these to date edits: if the formula changed, every post
    would look edited to every reader after an upgrade. Value reviewed, not recomputed."""
    a = page("a.txt", tagged("x", post("P", body="One.\n\n  • item one\n  • item two\n")))
    (p,) = run(a).posts
    assert p.content_hash == "442d63275d5a8c9ce1c800140075c2a3"
    b = page("a.txt", tagged("x", post("P", body="One.\n\n  • item one\n  • item 2\n")))
    assert run(b).posts[0].content_hash != p.content_hash
