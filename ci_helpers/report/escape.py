"""User-derived text (metric, stage, branch and file names, error text) made safe for the job
summary and PR comments: it can neither add table rows or markup, nor start a workflow command."""

from __future__ import annotations

import html
import re

_UNSAFE_IN_CODE = re.compile(r"[`|<>&\r\n]")
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~])")


def one_line(value: object) -> str:
    """No line breaks: a newline in a name must not start a new line of output."""
    return " ".join(str(value).replace("\r", "\n").split("\n"))


def code(value: object) -> str:
    """`value` as inline code: a backtick span when that is safe, else HTML <code> with its
    special characters as entities (a `|` would split a table cell, a backtick end the span)."""
    text = one_line(value)
    if not _UNSAFE_IN_CODE.search(text):
        return f"`{text}`"
    return "<code>" + html.escape(text, quote=True).replace("|", "&#124;").replace("`", "&#96;") + "</code>"


def text(value: object) -> str:
    """`value` as plain markdown text: HTML escaped, markdown punctuation backslash-escaped."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(one_line(value), quote=False))
