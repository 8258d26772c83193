"""Jinja2 for every stage that renders text: the pages, the digest, the web forms.

Autoescaping is on for HTML and XML templates: every value is escaped unless
it is the post HTML the normalizer built from escaped text. Templates are
looked up in ``Settings.template_dirs``: a site's own folder first, then the
bundled ``publisher/templates``.
"""

from __future__ import annotations

import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from publisher.errors import PublisherError

if TYPE_CHECKING:
    from jinja2 import Environment


def environment(templates: Sequence[Path]) -> Environment:
    """Jinja2, imported here: a build of feeds only (``[build] pages = false``) never
    loads it."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    return Environment(
        loader=FileSystemLoader(list(templates)),
        autoescape=select_autoescape(["html", "xml", "html.j2", "xml.j2"], default=False),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        # templates do not change while a command runs: no stat() per page rendered
        auto_reload=False,
    )


def render(env: Environment, name: str, /, **ctx: object) -> str:
    """Template ``name`` rendered. A fault in a template (most likely a site's own
    copy: see ``[build] templates``) is a PublisherError naming its file and line,
    not a traceback from inside Jinja2."""
    from jinja2 import TemplateError, TemplateSyntaxError

    try:
        return env.get_template(name).render(**ctx)
    except TemplateError as exc:
        where = name
        if isinstance(exc, TemplateSyntaxError) and exc.filename:
            where = f"{exc.filename}:{exc.lineno}"
        else:  # Jinja2 gives a template's frames its file name and line
            frames = traceback.extract_tb(exc.__traceback__)
            own = [f for f in frames if not f.filename.endswith(".py") and f.lineno]
            if own:
                where = f"{own[-1].filename}:{own[-1].lineno}"
        raise PublisherError(
            f"{where}: template error: {exc.message or exc.__class__.__name__}",
            "fix the template; a copy in [build] templates overrides the bundled one "
            "(remove the copy to use the bundled template again)",
        ) from None
