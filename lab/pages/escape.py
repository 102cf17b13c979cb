"""Markdown escaping of user text (hypotheses, notes, titles, metric names, config values, commands), one jinja
filter per place it lands, so no text can add a heading, a run section, a table column or raw HTML to a page:

    {{ run.hypothesis | md }}       paragraph or list item: block markers at line starts and HTML tags neutralised
    {{ title | heading }}           one line, no `#`
    | {{ row.metric | cell }} |     table cell: one line, `|` escaped
    {{ key | code }}                inline code span, as many backticks as it needs
    {{ command | fenced("bash") }}  a whole fenced block, its fence longer than any backtick run inside

Markdown rules as in CommonMark 0.31 (block starts, backslash escapes, code spans, fences) and GitHub's tables.
"""

from __future__ import annotations

import re

LINE_START = re.compile(  # what can open a block at a line start: heading, quote, list item, rule or setext
    r"^([ \t]*)(#{1,6}(?=[ \t]|$)|>|[-+*](?=[ \t]|$)|\d{1,9}[.)](?=[ \t]|$)|[-=*_](?=[-=*_ \t]*$)|`{3,}|~{3,}|\|)",
    re.MULTILINE)  # underline, fence, table row
HTML_TAG = re.compile(r"<(?=[A-Za-z/!?])")  # `<` that could open an HTML tag or comment (a bare `a < b` cannot)


def md(text) -> str:
    """Text for a paragraph or list item: every line starting like a heading, quote, list, rule, table or fence
    gets a backslash, and `<` before a tag name becomes `&lt;`. Line breaks are kept."""
    text = HTML_TAG.sub("&lt;", str(text))
    return LINE_START.sub(lambda found: found.group(1) + found.group(2)[:-1] + "\\" + found.group(2)[-1]
                          if found.group(2)[0].isdigit() else found.group(1) + "\\" + found.group(2), text)


def one_line(text) -> str:
    """`text` on one line: runs of whitespace with a line break become one space."""
    return re.sub(r"\s*[\r\n]+\s*", " ", str(text)).strip()


def heading(text) -> str:
    """Text inside a heading: one line, `#` escaped, tags neutralised."""
    return HTML_TAG.sub("&lt;", one_line(text)).replace("#", "\\#")


def cell(text) -> str:
    """Text inside a table cell: one line, `|` escaped (GitHub splits cells before code spans), tags neutralised."""
    return HTML_TAG.sub("&lt;", one_line(text)).replace("|", "\\|")


def code(text) -> str:
    """An inline code span of `text` (one line), fenced by one backtick more than its longest backtick run."""
    text = one_line(text)
    ticks = "`" * (max(map(len, re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def fenced(text, language: str = "") -> str:
    """A fenced code block holding `text` as it is, its fence at least three backticks and longer than any
    backtick run at a line start inside."""
    text = str(text).rstrip("\n")
    longest = max(map(len, re.findall(r"^[ \t]*(`+)", text, re.MULTILINE)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{text}\n{fence}"


FILTERS = {"md": md, "heading": heading, "cell": cell, "code": code, "fenced": fenced}
