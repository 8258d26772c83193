"""Small pure text helpers shared by every stage: slugs, comparison keys, XML safety."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from functools import lru_cache
from pathlib import Path

#: Characters XML 1.0 forbids (C0 controls but tab and newline; CR is folded
#: earlier), plus the non-characters U+FFFE/U+FFFF.
XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0d\x0e-\x1f\ufffe\uffff]")

#: Characters that change how text around them is shown without being seen: bidi
#: embeddings, overrides and isolates, marks, zero-width joiners and spaces, the
#: word joiner, invisible operators, a BOM inside text. In a title or a term name
#: they can make one read as another (or reverse it), in pages, feeds and mail.
INVISIBLE = re.compile("[\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")

_QUOTES = str.maketrans({"‘": "'", "’": "'", "‚": "'", "“": '"', "”": '"', "„": '"', "′": "'"})
_NON_SLUG = re.compile(r"[^a-z0-9]+")
_APOSTROPHES = re.compile(r"['’‘`]")
#: Names Windows (and some tools) cannot use as file names, and path tricks.
_RESERVED = {"con", "prn", "aux", "nul", "index", "feed", "feeds", "archive"} | {
    f"{p}{n}" for p in ("com", "lpt") for n in range(10)
}
MAX_SLUG = 60


def strip_invisible(text: str) -> str:
    """``text`` without ``INVISIBLE`` characters (zero-width spaces become spaces,
    as ``squash`` makes them, so words they separated stay apart)."""
    return " ".join(INVISIBLE.sub("", text.replace("\u200b", " ")).split())


def strip_xml_forbidden(text: str) -> str:
    return XML_FORBIDDEN.sub("", text)


def xml_text(s: str) -> str:
    """``s`` escaped for XML character data (``& < >``), as ``xml.sax.saxutils.escape``
    does, without importing that module (``urllib.request`` and ``ssl`` come
    with it)."""
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def xml_attr(s: str) -> str:
    """``s`` as a double-quoted XML attribute value (whitespace that attribute value
    normalization would fold kept as character references, as ``quoteattr`` does)."""
    value = xml_text(s).replace('"', "&quot;")
    return '"' + value.replace("\n", "&#10;").replace("\r", "&#13;").replace("\t", "&#9;") + '"'


def squash(text: str) -> str:
    """Runs of any white space, including non-breaking spaces, become one space.

    ``str.split()`` splits on every Unicode space (NBSP included) in C; only
    the zero-width space needs adding.
    """
    return " ".join(text.replace("\u200b", " ").split())


def compare_key(text: str) -> str:
    """The form two copies are compared in: white space and curly quotes folded."""
    return squash(text).translate(_QUOTES)


@lru_cache(maxsize=1 << 16)
def title_key(title: str) -> str:
    return compare_key(title).casefold()


@lru_cache(maxsize=65536)
def slugify(text: str, fallback_prefix: str = "post") -> str:
    """ASCII, lowercase, dash-separated; never empty, never a path or reserved name.

    Apostrophes vanish rather than split words ("Children’s" -> "childrens"), so
    slugs read like WordPress's. Text with no ASCII letters (e.g. CJK) gets a
    stable hash so it is still a valid, unique file name.
    """
    if text.isascii():
        folded = text.lower().replace("'", "").replace("`", "")
    else:
        folded = unicodedata.normalize("NFKD", text)
        folded = "".join(c for c in folded if not unicodedata.combining(c))
        folded = _APOSTROPHES.sub("", folded.casefold())
    slug = _NON_SLUG.sub("-", folded.encode("ascii", "ignore").decode()).strip("-")
    if len(slug) > MAX_SLUG:
        slug = slug[:MAX_SLUG].rsplit("-", 1)[0] or slug[:MAX_SLUG]
    if not slug:
        hashed = hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]
        slug = f"{fallback_prefix}-{hashed}"
    if slug in _RESERVED:
        slug = f"{slug}-{fallback_prefix}"
    return slug


def fingerprint(*parts: object) -> str:
    """A short stable hash of ``parts`` (their ``str``), for change detection."""
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        h.update(str(part).encode("utf-8"))
        h.update(b"\x1f")
    return h.hexdigest()


def folder_fingerprint(*folders: Path) -> str:
    """Fingerprint of every file's name and bytes in ``folders`` (the templates)."""
    return fingerprint(
        *(sorted((p.name, p.read_bytes()) for p in f.iterdir() if p.is_file()) for f in folders)
    )


def to_address(email: str) -> str:
    """The address as the wire takes it: the domain in IDNA (``bücher.de`` as
    ``xn--bcher-kva.de``); a local part that is not ASCII stays (SMTPUTF8)."""
    local, _, domain = email.rpartition("@")
    try:
        return f"{local}@{domain.encode('idna').decode('ascii')}"
    except UnicodeError:
        return email
