"""The real seed archives give the stream the issue promises."""

from __future__ import annotations

from datetime import date

from publisher.settings import Settings
from publisher.source.files import read_pages
from publisher.source.normalize import normalize
from tests.helpers import SEEDS


def _stream(settings: Settings):
    return normalize(read_pages([SEEDS]), settings.site.tzinfo, settings.site.id_domain)


def test_seeds_give_twelve_unique_posts(settings: Settings) -> None:
    stream = _stream(settings)
    assert stream.problems == []
    assert len(stream.posts) == 12
    assert len({p.id for p in stream.posts}) == 12
    assert len({p.slug for p in stream.posts}) == 12


def test_shared_post_carries_both_tags(settings: Settings) -> None:
    stream = _stream(settings)
    (post,) = [
        p for p in stream.posts if p.title == "Digitisation, and the Children’s Services Ofsted"
    ]
    assert post.date == date(2019, 2, 11)
    assert post.tags == ("digital", "thanks")
    assert len(post.sources) == 2
    assert (
        post.id
        == "tag:publisher.localhost,2019-02-11:digitisation-and-the-childrens-services-ofsted"
    )


def test_tag_counts_and_order(settings: Settings) -> None:
    stream = _stream(settings)
    assert len(stream.posts_with(stream.term("tag", "thanks"))) == 3
    assert len(stream.posts_with(stream.term("tag", "digital"))) == 10
    dates = [p.date for p in stream.posts]
    assert dates == sorted(dates, reverse=True)
    oldest = stream.posts[-1]
    assert oldest.date == date(2017, 8, 29) and oldest.date.strftime("%A") == "Tuesday"
    assert oldest.published.isoformat() == "2017-08-29T12:00:00+01:00"


def test_result_does_not_depend_on_file_order(settings: Settings) -> None:
    pages = read_pages([SEEDS])
    a = normalize(pages, settings.site.tzinfo, "x.org")
    b = normalize(list(reversed(pages)), settings.site.tzinfo, "x.org")
    assert a.posts == b.posts
