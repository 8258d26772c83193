"""Reader: each page kind, each quirk of saved pages, each problem with its line."""

from __future__ import annotations

from datetime import date

import pytest

from publisher.source.archive import parse_page
from publisher.source.raw import PageKind

POST = "Title {n}\n\nMonday, February 11th, 2019\n\nBody of post {n}.\n\nSecond paragraph {n}.\n"


def parse(text: str, encoding: str = "utf-8", name: str = "a.txt"):
    return parse_page(text.encode(encoding), name)


def msgs(page) -> list[str]:
    return [str(p) for p in page.problems]


@pytest.mark.parametrize(
    ("header", "kind", "term"),
    [
        ("Posts Tagged ‘thanks’", PageKind.TAG, "thanks"),
        ("Posts Tagged 'thanks'", PageKind.TAG, "thanks"),
        ('Posts Tagged "Digital Skills"', PageKind.TAG, "Digital Skills"),
        ("Archive for the ‘News & Views’ Category", PageKind.CATEGORY, "News & Views"),
        ("Archive for the 'News' Category", PageKind.CATEGORY, "News"),
        ("Archive for May, 2017", PageKind.DATE, ""),
        ("Archive for 2017", PageKind.DATE, ""),
        ("Archive for May 3rd, 2017", PageKind.DATE, ""),
    ],
)
def test_header_kinds(header: str, kind: PageKind, term: str) -> None:
    page = parse(f"{header}\n\n" + POST.format(n=1) + "\n" + POST.format(n=2))
    assert page.kind is kind and page.term == term
    assert [p.title for p in page.posts] == ["Title 1", "Title 2"]
    # (the posts' dates are not the date archives': that is warned of, see below)
    assert [p for p in page.problems if "outside this date archive" not in p.message] == []
    post = page.posts[0]
    assert post.tags == ((term,) if kind is PageKind.TAG else ())
    assert post.categories == ((term,) if kind is PageKind.CATEGORY else ())


@pytest.mark.parametrize(
    "line",
    [
        "Monday, February 11th, 2019",
        "February 11th, 2019",
        "February 11, 2019",
        "Monday, February 11, 2019",
    ],
)
def test_date_line_forms(line: str) -> None:
    page = parse(f"Posts Tagged ‘x’\n\nA title\n\n{line}\n\nText.\n")
    assert page.posts[0].date == date(2019, 2, 11)
    assert page.problems == []


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252", "utf-16"])
@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_encodings_and_line_endings(encoding: str, newline: str) -> None:
    text = "Posts Tagged ‘café’\n\nIt’s “quoted” – £5\n\nMonday, February 11th, 2019\n\nBody é.\n\nEnd.\n"
    page = parse(text.replace("\n", newline), encoding)
    assert page.problems == []
    (post,) = page.posts
    assert post.title == "It’s “quoted” – £5" and post.tags == ("café",)
    assert post.line == 3
    assert [p.text for p in post.paragraphs] == ["Body é.", "End."]


def test_single_post_page_with_chrome_and_no_date() -> None:
    text = "A lone post\n\nFirst para.\n\nSecond para.\n\nTags: thanks, digital\n\nComments are closed.\n"
    page = parse(text)
    assert page.kind is PageKind.POST
    (post,) = page.posts
    assert post.date is None
    assert [p.text for p in post.paragraphs] == ["First para.", "Second para."]
    assert post.tags == ("thanks", "digital")


def test_single_post_page_with_date_and_posted_in() -> None:
    text = "A post\n\nTuesday, May 1st, 2018\n\nText.\n\nPosted in News | Comments Off\n"
    (post,) = parse(text).posts
    assert post.date == date(2018, 5, 1) and post.categories == ("News",)
    assert [p.text for p in post.paragraphs] == ["Text."]


def test_caption_bullets_and_continue_reading() -> None:
    text = (
        "Posts Tagged ‘x’\n\nPics\n\nMonday, February 11th, 2019\nThe team at the show\n\n"
        "Intro:\n  • one\n  • two\n\nMore text Continue reading →\n"
    )
    (post,) = parse(text).posts
    assert post.caption == "The team at the show"
    assert post.paragraphs[0].text == "Intro:"
    assert post.paragraphs[1].items == ("one", "two")
    assert post.paragraphs[2].text == "More text"
    assert post.excerpt


def test_page_cut_inside_next_title_keeps_fragment_as_text() -> None:
    text = "Posts Tagged ‘x’\n\nFirst\n\nMonday, February 11th, 2019\n\nBody.\n\nSecond po"
    page = parse(text)
    assert [p.title for p in page.posts] == ["First"]
    assert page.posts[0].at_eof
    assert [p.text for p in page.posts[0].paragraphs] == ["Body.", "Second po"]


def test_empty_file() -> None:
    assert msgs(parse("")) == [
        "a.txt:1: error: empty file: no posts to read; remove it or re-save the page"
    ]
    assert parse("  \n\n").problems[0].line == 1


def test_binary_and_undecodable_files() -> None:
    page = parse_page(b"\x89PNG\r\n\x00\x00\x00", "img.txt")
    assert "binary file" in msgs(page)[0] and page.problems[0].is_error
    page = parse_page(b"Posts Tagged 'x'\n\nT\n\nMay 1, 2018\n\nbad \x81 byte\n", "b.txt")
    assert page.problems[0].line == 7 and "undecodable" in page.problems[0].message


def test_no_posts_found() -> None:
    page = parse("Posts Tagged ‘x’\n\nJust some text without a date.\n")
    assert len(page.problems) == 1
    assert page.problems[0].line == 3 and "no posts found" in page.problems[0].message


def test_impossible_date_rejects_only_that_post() -> None:
    text = "Posts Tagged ‘x’\n\nBad\n\nMonday, February 30th, 2019\n\nText.\n\n" + POST.format(n=2)
    page = parse(text)
    assert msgs(page) == [
        "a.txt:5: error: impossible date 'Monday, February 30th, 2019': check the day of the month"
    ]
    assert [p.title for p in page.posts] == ["Title 2"]
    assert page.rejected == [(3, "Bad")]


def test_weekday_mismatch_is_a_warning_and_date_wins() -> None:
    page = parse("Posts Tagged ‘x’\n\nT\n\nTuesday, February 11th, 2019\n\nText.\n")
    (problem,) = page.problems
    assert not problem.is_error and problem.line == 5
    assert "is a Monday, not a Tuesday" in problem.message
    assert page.posts[0].date == date(2019, 2, 11)


def test_title_absurdly_long() -> None:
    title = "word " * 60
    page = parse(
        f"Posts Tagged ‘x’\n\n{title}\n\nMonday, February 11th, 2019\n\nText.\n\n"
        + POST.format(n=2)
    )
    assert page.problems[0].line == 3 and "characters long" in page.problems[0].message
    assert [p.title for p in page.posts] == ["Title 2"]


def test_post_with_no_body() -> None:
    text = "Posts Tagged ‘x’\n\nEmpty\n\nMonday, February 11th, 2019\n\n" + POST.format(n=2)
    page = parse(text)
    assert msgs(page) == [
        "a.txt:3: error: post 'Empty' has no body: add its text below the date line"
    ]
    assert [p.title for p in page.posts] == ["Title 2"]


def test_control_characters_removed_with_warning() -> None:
    page = parse("Posts Tagged ‘x’\n\nT\x07itle\n\nMonday, February 11th, 2019\n\nBo\x00dy\x1b.\n")
    assert [(p.line, p.severity.value) for p in page.problems] == [(3, "warning"), (7, "warning")]
    assert page.posts[0].title == "Title" and page.posts[0].paragraphs[0].text == "Body."


def test_text_before_first_post_is_reported() -> None:
    page = parse("Posts Tagged ‘x’\n\nstray line\n\n\n" + POST.format(n=1))
    assert [(p.line, p.severity.value) for p in page.problems] == [(3, "warning")]


def test_invisible_characters_leave_titles_and_terms_with_a_warning() -> None:
    """Bidi overrides and zero-width characters could make a title or a tag read as
    another (or backwards) in pages, feeds and mail: removed, and said where."""
    text = (
        "Posts Tagged \u2018ne\u200dws\u2019\n\n"
        "Pay \u202eyour bill\u202c now\n\nMonday, February 11th, 2019\n\nBody.\n\n"
        "Tags: safe, s\u2066ne\u2069aky\n"
    )
    page = parse_page(text.encode("utf-8"), "a.txt")
    (post,) = page.posts
    assert post.title == "Pay your bill now"
    assert set(post.tags) == {"news", "sneaky", "safe"}
    warned = sorted((p.line, p.message.split(" holds")[0]) for p in page.problems)
    assert [line for line, _ in warned] == [1, 3, 3]
    assert all(not p.is_error for p in page.problems)


def test_a_post_with_too_many_terms_is_warned_of() -> None:
    tags = ", ".join(f"t{i}" for i in range(60))
    text = f"A post\n\nMonday, February 11th, 2019\n\nBody.\n\nTags: {tags}\n"
    page = parse_page(text.encode("utf-8"), "a.txt")
    assert len(page.posts) == 1 and len(page.posts[0].tags) == 60
    (problem,) = page.problems
    assert problem.line == 1 and "60 tags and categories" in problem.message


@pytest.mark.parametrize(
    "written",
    [
        "Monday, February 11th, 2019",
        "February 11, 2019",  # US style, no weekday, no ordinal
        "February 11 2019",
        "11 February 2019",  # day before month
        "Monday 11 February 2019",
        "Monday, 11th February, 2019",
        "Mon, Feb 11, 2019",  # abbreviated weekday and month
        "Mon 11 Feb. 2019",
        "11th of February 2019",
        "Feb. 11th, 2019",
    ],
)
def test_date_lines_in_the_common_english_forms(written: str) -> None:
    text = f"Posts Tagged ‘t’\n\nA first post\n\n{written}\n\nBody one.\n\nA second post\n\nJanuary 7, 2019\n\nBody two.\n"
    page = parse_page(text.encode(), "a.txt")
    assert [(p.title, p.date) for p in page.posts] == [
        ("A first post", date(2019, 2, 11)),
        ("A second post", date(2019, 1, 7)),
    ]
    assert not page.problems


def test_a_line_shaped_like_a_date_is_reported_never_read_as_text() -> None:
    """A misspelt month used to glue the post, title and all, into the post before."""
    text = (
        "Posts Tagged ‘t’\n\nFirst\n\nFebruary 4, 2019\n\nBody one.\n\n"
        "Second\n\nFebuary 11th, 2019\n\nBody two.\n\nThird\n\nFebruary 18, 2019\n\nBody three.\n"
    )
    page = parse_page(text.encode(), "a.txt")
    assert [p.title for p in page.posts] == ["First", "Third"]
    assert page.posts[0].paragraphs[-1].text == "Body one."  # nothing glued to it
    (problem,) = page.problems
    assert problem.is_error and problem.line == 11 and "Febuary 11th, 2019" in problem.message
    assert page.rejected == [(9, "Second")]


def test_a_title_shaped_like_a_date_stays_a_title() -> None:
    text = "Posts Tagged ‘t’\n\nSummer 21 2019\n\nJune 3, 2019\n\nPlans.\n"
    page = parse_page(text.encode(), "a.txt")
    assert [(p.title, p.date) for p in page.posts] == [("Summer 21 2019", date(2019, 6, 3))]


def test_a_post_dated_outside_its_date_archive_is_warned_of() -> None:
    text = (
        "Archive for May, 2017\n\nIn May\n\nMay 3, 2017\n\nFine.\n\n"
        "Out of place\n\nJune 1, 2017\n\nHm.\n"
    )
    page = parse_page(text.encode(), "may.txt")
    assert [p.date for p in page.posts] == [date(2017, 5, 3), date(2017, 6, 1)]
    (problem,) = page.problems
    assert not problem.is_error and problem.line == 11
    assert "outside this date archive's period (1 May 2017 to 31 May 2017)" in problem.message


def test_two_pages_saved_into_one_file_keep_their_own_terms() -> None:
    text = (
        "Posts Tagged ‘thanks’\n\nA thank you\n\nMay 3, 2017\n\nThanks.\n\n"
        "Posts Tagged ‘digital’\n\nA digital post\n\nMay 4, 2017\n\nBits.\n"
    )
    page = parse_page(text.encode(), "two.txt")
    assert [(p.title, p.tags) for p in page.posts] == [
        ("A thank you", ("thanks",)),
        ("A digital post", ("digital",)),
    ]
    assert page.posts[0].paragraphs[-1].text == "Thanks."  # the header is no body text
    assert not page.problems


def test_a_decomposed_accent_is_the_same_term() -> None:
    nfd = "cafe\u0301"
    text = f"Posts Tagged ‘{nfd}’\n\nA post\n\nMay 3, 2017\n\nText.\n\nTags: {nfd}, caf\u00e9\n"
    (post,) = parse_page(text.encode(), "a.txt").posts
    assert set(post.tags) == {"caf\u00e9"}


def test_a_header_without_posts_is_reported_at_a_line_that_exists() -> None:
    page = parse_page("Posts Tagged ‘lonely’\n".encode(), "lonely.txt")
    (problem,) = page.problems
    assert problem.is_error and problem.line == 1


def test_a_stray_windows_1252_byte_in_a_utf8_file_is_read_with_a_warning() -> None:
    """One byte pasted from a Windows program used to make the whole page unreadable
    (or, read as Windows-1252 throughout, every UTF-8 accent garbled)."""
    text = "Posts Tagged ‘café’\n\nA post\n\nMay 3, 2017\n\nIt’s fine.\n\nIt\x92s pasted.\n"
    data = text.encode("utf-8").replace(b"\xc2\x92", b"\x92")  # the one stray byte
    page = parse_page(data, "a.txt")
    (post,) = page.posts
    assert post.tags == ("café",)  # the UTF-8 stayed UTF-8
    assert [p.text for p in post.paragraphs] == ["It’s fine.", "It’s pasted."]
    (problem,) = page.problems
    assert not problem.is_error and problem.line == 9 and "0x92" in problem.message
