"""Generated archives for property tests: posts rendered into archive pages of every
kind, split across files in any order (hypothesis strategies)."""

from __future__ import annotations

from datetime import date

from dateutil import tz
from hypothesis import strategies as st

from publisher.source.dates import MONTHS, WEEKDAYS
from publisher.text import title_key

LONDON = tz.gettz("Europe/London")
WORDS = [
    "council",
    "staff",
    "thanks",
    "digital",
    "café",
    "naïve",
    "Ofsted",
    "&",
    "<b>",
    "“quoted”",
    "it’s",
    "2019",
    "week",
    "people",
    "skills",
    "—",
    "£5",
    "smart",
    "working",
    "résumé",
]
TAGS = ["thanks", "digital", "Smart Working", "café", "news & views"]


def _ordinal(day: int) -> str:
    return "th" if 10 <= day % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")


def long_date(d: date) -> str:
    return f"{WEEKDAYS[d.weekday()]}, {MONTHS[d.month - 1]} {d.day}{_ordinal(d.day)}, {d.year}"


#: The forms of date line real archive captures take (see ``source.dates``).
DATE_FORMS = [
    long_date,
    lambda d: f"{MONTHS[d.month - 1]} {d.day}, {d.year}",
    lambda d: f"{d.day} {MONTHS[d.month - 1]} {d.year}",
    lambda d: f"{WEEKDAYS[d.weekday()][:3]}, {MONTHS[d.month - 1][:3]} {d.day}, {d.year}",
    lambda d: f"{WEEKDAYS[d.weekday()]} {d.day} {MONTHS[d.month - 1]} {d.year}",
    lambda d: f"{MONTHS[d.month - 1][:3]}. {d.day}{_ordinal(d.day)}, {d.year}",
    lambda d: f"{d.day}{_ordinal(d.day)} {MONTHS[d.month - 1]}, {d.year}",
]


sentence = st.lists(st.sampled_from(WORDS), min_size=1, max_size=12).map(
    lambda ws: (" ".join(ws)).capitalize() + "."
)
paragraph = st.one_of(
    sentence.map(lambda s: ("p", s)),
    st.lists(sentence, min_size=1, max_size=3).map(lambda items: ("ul", tuple(items))),
)
title = st.lists(st.sampled_from([w for w in WORDS if w[0].isalpha()]), min_size=1, max_size=6).map(
    lambda ws: " ".join(ws).title()
)


@st.composite
def posts(draw):
    titles = draw(st.lists(title, min_size=1, max_size=8, unique_by=title_key))
    # Distinct days: two same-day posts that never share a page have no archive
    # order to keep (test_posts covers same-day ordering).
    days = draw(
        st.lists(
            st.dates(date(2016, 1, 1), date(2019, 12, 31)),
            min_size=len(titles),
            max_size=len(titles),
            unique=True,
        )
    )
    out = []
    for i, t in enumerate(titles):
        paras = draw(st.lists(paragraph, min_size=1, max_size=4))
        if paras[0][0] == "ul":
            paras.insert(0, ("p", "Intro."))
        out.append(
            {
                "i": i,
                "title": t,
                "date": days[i],
                "paras": paras,
                "tags": sorted(draw(st.sets(st.sampled_from(TAGS), max_size=3))),
                "category": draw(st.sampled_from(["", "News", "Blog"])),
                "form": draw(st.sampled_from(range(len(DATE_FORMS)))),
            }
        )
    return out


def render_post(p, dated: bool = True) -> str:
    lines = [p["title"], ""]
    if dated:
        lines += [DATE_FORMS[p.get("form", 0)](p["date"]), ""]
    for kind, body in p["paras"]:
        lines += [body] if kind == "p" else [f"  • {item}" for item in body]
        lines.append("")
    return "\n".join(lines)


def newest_first(ps):
    return sorted(ps, key=lambda p: (-p["date"].toordinal(), p["i"]))


@st.composite
def archive_files(draw):
    ps = draw(posts())
    files: list[str] = []
    for tag in TAGS:
        mine = [p for p in ps if tag in p["tags"]]
        if mine:
            files.append(
                f"Posts Tagged ‘{tag}’\n\n" + "\n".join(map(render_post, newest_first(mine)))
            )
    for cat in ("News", "Blog"):
        mine = [p for p in ps if p["category"] == cat]
        if mine:
            files.append(
                f"Archive for the '{cat}' Category\n\n"
                + "\n".join(map(render_post, newest_first(mine)))
            )
    for p in ps:
        if not p["tags"] and not p["category"] or draw(st.booleans()):
            # a date archive or a single post page (dated, or undated if dated elsewhere)
            if draw(st.booleans()):
                files.append(
                    f"Archive for {MONTHS[p['date'].month - 1]}, {p['date'].year}\n\n"
                    + render_post(p)
                )
            else:
                undated = bool(p["tags"] or p["category"]) and draw(st.booleans())
                chrome = f"Tags: {', '.join(p['tags'])}\n\n" if p["tags"] else ""
                files.append(
                    render_post(p, dated=not undated) + "\n" + chrome + "Comments are closed.\n"
                )
    # two pages saved into one file, as captures sometimes are
    headed = ("Posts Tagged", "Archive for")
    if len(files) > 1 and all(f.startswith(headed) for f in files[:2]) and draw(st.booleans()):
        files[:2] = [files[0] + "\n" + files[1]]
    order = draw(st.permutations(range(len(files))))
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    return ps, [(f"f{n:02d}.txt", files[k].replace("\n", newline)) for n, k in enumerate(order)]
