"""The alert runbooks as one HTML page, served at /runbooks so that every alert's link resolves. Pure.

The text is docs/runbooks.md, shipped in the package (`exporter/runbooks.md`). Alert rules link
`<runbook base>#<alert name in lower case>`: every level-2 section gets as id the anchor GitHub gives its
heading, so the same fragment works on the page lagwatch serves and on the document in a repository. Each
section is shown as its Markdown source: readable as it is, and nothing to render or fetch.
"""

from __future__ import annotations

import html
import re
from importlib.resources import files

__all__ = ["anchor", "page", "runbooks"]

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
    "pre{white-space:pre-wrap;font-family:ui-monospace,monospace}"
    "@media (prefers-color-scheme:dark){body{background:#111;color:#ddd}a{color:#8ab4f8}}"
)


def runbooks() -> str:
    """The Markdown source shipped with this version of lagwatch."""
    return files("exporter").joinpath("runbooks.md").read_text(encoding="utf-8")


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def page(markdown: str, version: str) -> str:
    """One HTML page: the introduction, then a section per `## ` heading with that heading's anchor as id."""
    title, intro, sections = _split(markdown)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        f'<head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{_STYLE}</style></head>',
        "<body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>lagwatch {html.escape(version)}</p>",
        f"<pre>{html.escape(intro.strip())}</pre>",
        "<nav><ul>",
        *(f'<li><a href="#{anchor(h)}">{html.escape(h)}</a></li>' for h, _ in sections),
        "</ul></nav>",
    ]
    for heading, body in sections:
        parts += [
            f'<section id="{anchor(heading)}">',
            f"<h2>{html.escape(heading)}</h2>",
            f"<pre>{html.escape(body.strip())}</pre>",
            "</section>",
        ]
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)


def _split(markdown: str) -> tuple[str, str, list[tuple[str, str]]]:
    title = "lagwatch runbooks"
    intro: list[str] = []
    sections: list[tuple[str, list[str]]] = []
    in_code = False
    for line in markdown.splitlines():
        # A "## " inside a fenced code block is code, not a heading.
        if line.startswith("```"):
            in_code = not in_code
        if not in_code and line.startswith("# ") and not sections and not intro:
            title = line[2:].strip()
        elif not in_code and line.startswith("## "):
            sections.append((line[3:].strip(), []))
        else:
            (sections[-1][1] if sections else intro).append(line)
    return title, "\n".join(intro), [(h, "\n".join(body)) for h, body in sections]
