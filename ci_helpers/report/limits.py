"""Fit a report's markdown into what its host shows: GitHub drops a step summary over 1 MiB whole
(the user then sees nothing), and refuses a comment over 65,536 characters.

A report is rendered as blocks (`Block`): the verdict, the failing checks, the gated metrics'
rows are essential; plots, trends, the other metrics' rows are not. `fit` keeps the essential
blocks first, then the others in document order while they fit, cutting only between whole
blocks or whole table rows / list items, so no fence, table or <details> is left open. It ends
with a note saying what was left out and where the whole report is. The summary is measured in
UTF-8 bytes, a comment in characters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

SUMMARY_LIMIT_BYTES = 1024 * 1024  # GitHub's limit on one step's summary
# Left free for the few lines other parts of the same step may append (a comment's fall-back notice).
SUMMARY_BUDGET_BYTES = SUMMARY_LIMIT_BYTES - 16 * 1024
COMMENT_LIMIT_CHARS = 65536  # GitHub's limit on a comment body; GitLab's notes take more


def utf8_bytes(text: str) -> int:
    return len(text.encode("utf-8"))


@dataclass(frozen=True)
class Block:
    """A part of a report, kept or left out whole: `head` and `tail` stay together around the
    `items` (table rows, list entries), which are cut from the end, one whole item at a time. A
    block whose items are all cut goes whole, so no table is left without rows."""

    what: str  # how the cut note names it: "metrics rows", "the plots"
    head: tuple[str, ...] = ()
    items: tuple[str, ...] = ()
    tail: tuple[str, ...] = ()
    essential: bool = False  # kept before any other block
    essential_items: int = 0  # the first items kept with the essential blocks (gated metrics' rows)

    @property
    def must_keep(self) -> int:
        """How many of its items go in with the essential blocks."""
        return len(self.items) if self.essential else self.essential_items

    def lines(self, kept: int | None = None) -> list[str]:
        return [*self.head, *self.items[: len(self.items) if kept is None else kept], *self.tail]


def render(blocks: Iterable[Block]) -> str:
    return "\n".join(line for block in blocks for line in block.lines()) + "\n"


class Markdown(str):
    """A rendered report: its whole text, as a str (printing and tests read it as one), that also
    holds its blocks so that `fit` can cut it between them."""

    blocks: tuple[Block, ...]

    def __new__(cls, blocks: Iterable[Block]) -> Markdown:
        blocks = tuple(blocks)
        markdown = super().__new__(cls, render(blocks))
        markdown.blocks = blocks
        return markdown


def _line_blocks(markdown: str) -> tuple[Block, ...]:
    """Blocks for markdown that came without them: its first line is essential, and every other
    line is an item that can be cut, except that a ``` fence or a <details> element stays whole."""
    lines = markdown.rstrip("\n").split("\n")
    items: list[str] = []
    open_until: str | None = None
    for line in lines[1:]:
        if open_until is not None:
            items[-1] += "\n" + line
            if line.strip().startswith(open_until):
                open_until = None
            continue
        items.append(line)
        stripped = line.strip()
        if stripped.startswith("```") and stripped.count("```") == 1:
            open_until = "```"
        elif stripped.startswith("<details") and "</details>" not in stripped:
            open_until = "</details>"
    return (Block("the verdict", head=tuple(lines[:1]), essential=True), Block("lines", items=tuple(items)))


def _cut_note(cut: list[str], limit_text: str, where: str) -> str:
    return f"\n---\n⚠️ Truncated to {limit_text}: left out {'; '.join(cut)}. The full report is in {where}.\n"


def fit(markdown: str, limit: int, measure: Callable[[str], int], limit_text: str, where: str) -> str:
    """`markdown` when it measures at most `limit`; else the essential blocks, then the others in
    document order as far as they fit, and a note naming what was left out and `where` the whole
    report is. `measure` is `utf8_bytes` for a summary, `len` for a comment."""
    if measure(markdown) <= limit:
        return markdown
    blocks = getattr(markdown, "blocks", None) or _line_blocks(markdown)
    # Room for the note at its longest: every block named as cut.
    worst = [f"{len(b.items)} of {len(b.items)} {b.what}" if b.items else b.what for b in blocks]
    budget = limit - measure(_cut_note(worst, limit_text, where))
    kept: dict[int, int] = {}  # block index -> items kept; a block not in it is left out
    used = 0

    def add(index: int, up_to: int) -> None:
        nonlocal used
        block = blocks[index]
        count = kept.get(index, 0)
        cost = 0 if index in kept else sum(measure(line) + 1 for line in (*block.head, *block.tail))
        if used + cost > budget:
            return
        while count < up_to and used + cost + measure(block.items[count]) + 1 <= budget:
            cost += measure(block.items[count]) + 1
            count += 1
        if block.items and count == 0:
            return
        kept[index] = count
        used += cost

    for index, block in enumerate(blocks):  # first the essentials
        if block.essential or block.essential_items:
            add(index, block.must_keep)
    for index, block in enumerate(blocks):  # then the rest, in document order
        add(index, len(block.items))
    cut = []
    for index, block in enumerate(blocks):
        if index not in kept:
            cut.append(f"{len(block.items)} of {len(block.items)} {block.what}" if block.items else block.what)
        elif kept[index] < len(block.items):
            cut.append(f"{len(block.items) - kept[index]} of {len(block.items)} {block.what}")
    lines = [line for index, block in enumerate(blocks) if index in kept for line in block.lines(kept[index])]
    return "\n".join(lines) + "\n" + _cut_note(cut, limit_text, where)


def report_file_text(report_path: object | None) -> str:
    """Where the whole report is, for a cut note."""
    if report_path:
        return f"the JSON report `{report_path}` (the `report-json` output)"
    return "no file: pass --report-json (the actions' `report-json` input) to write the whole report as JSON"


def fit_summary(markdown: str, report_path: object | None) -> str:
    """The job summary, under GitHub's 1 MiB."""
    return fit(
        markdown, SUMMARY_BUDGET_BYTES, utf8_bytes, "GitHub's 1 MiB step summary limit", report_file_text(report_path)
    )


def summary_is_whole(markdown: str) -> bool:
    """Whether the job summary holds all of `markdown` (so a comment may send readers there)."""
    return utf8_bytes(markdown) <= SUMMARY_BUDGET_BYTES


def fit_comment(markdown: str, limit: int, host: str, where: str) -> str:
    """A PR comment or MR note's report, under `limit` characters."""
    return fit(markdown, limit, len, f"{host}'s comment size limit", where)
