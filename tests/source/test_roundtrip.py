"""Property: posts rendered into archive pages of any kind, split across files in any
order, parse back to the same stream."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from publisher.source.archive import parse_page
from publisher.source.normalize import normalize
from tests.helpers import examples
from tests.helpers.archives import LONDON, archive_files, newest_first


@settings(
    max_examples=examples(80),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(archive_files())
def test_any_split_parses_back_to_the_same_stream(case) -> None:
    ps, files = case
    pages = [parse_page(text.encode("utf-8"), name) for name, text in files]
    stream = normalize(pages, LONDON, "example.org")
    assert stream.problems == []
    expected = [
        (
            p["title"],
            p["date"],
            tuple(sorted(p["tags"], key=str.casefold)),
            (p["category"],) if p["category"] else (),
            p["paras"],
        )
        for p in newest_first(ps)
    ]
    got = [
        (
            q.title,
            q.date,
            q.tags,
            q.categories,
            [("ul", x.items) if x.is_list else ("p", x.text) for x in q.paragraphs],
        )
        for q in stream.posts
    ]
    assert got == expected
    again = normalize(list(reversed(pages)), LONDON, "example.org")
    assert again.posts == stream.posts
