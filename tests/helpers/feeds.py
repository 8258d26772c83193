"""Real validators for the tests: feedparser, atoma, and RFC 4287's RELAX NG schema."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import rnc2rng
from lxml import etree

SCHEMA = Path(__file__).parent / "schemas" / "atom.rnc"


@cache
def atom_schema() -> etree.RelaxNG:
    rng = rnc2rng.dumps(rnc2rng.load(str(SCHEMA)))
    # rnc2rng declares the empty "local" namespace, which XML forbids; it is unused.
    rng = rng.replace('xmlns:local=""', "")
    return etree.RelaxNG(etree.fromstring(rng.encode()))


def assert_valid_atom(path: Path) -> None:
    schema = atom_schema()
    doc = etree.parse(str(path))
    assert schema.validate(doc), f"{path}: {schema.error_log}"


SITEMAP_SCHEMA = Path(__file__).parent / "schemas" / "sitemap.rnc"


@cache
def sitemap_schema() -> etree.RelaxNG:
    rng = rnc2rng.dumps(rnc2rng.load(str(SITEMAP_SCHEMA))).replace('xmlns:local=""', "")
    return etree.RelaxNG(etree.fromstring(rng.encode()))


def assert_valid_sitemap(data: bytes) -> None:
    schema = sitemap_schema()
    doc = etree.fromstring(data)
    assert schema.validate(doc), schema.error_log
