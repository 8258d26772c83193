"""publisher: archived WordPress pages in, feeds, a static site and email digests out."""

__version__ = "0.1.0"
