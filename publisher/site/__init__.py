"""Publishing: the post stream -> feeds, pages, sitemap and OPML in the output folder."""
