"""Every relative link and every file or folder of this repository that the docs name resolves:
a page moved or a file renamed fails here, not in a reader's browser."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted(
    [
        *ROOT.glob("*.md"),
        *ROOT.glob("docs/*.md"),
        ROOT / "gitlab" / "README.md",
    ]
)
# [text](target) and [text](target "title"); images too
LINK = re.compile(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
# A path in this repository: it starts with one of its top-level folders.
TOP_LEVEL = "|".join(
    re.escape(p.name)
    for p in ROOT.iterdir()
    if p.is_dir()
    and p.name
    in {
        "actions",
        "bench",
        "ci_helpers",
        "docs",
        "examples",
        "gitlab",
        "scripts",
        "tests",
        ".github",
        ".ci",
    }
)
PATH = re.compile(rf"(?<![\w./:@-])((?:{TOP_LEVEL})/(?:[\w./-]*[\w/])?)")  # a sentence's full stop is not in it
# GitHub's own actions, named as `uses:` targets (actions/cache), are not files of this repository.
THIRD_PARTY_ACTIONS = re.compile(
    r"actions/(checkout|cache|setup-python|upload-artifact|attest-build-provenance)(/(restore|save))?/?"
)


def _anchors(page: Path) -> set[str]:
    """The fragment GitHub gives each heading: lowercased, punctuation dropped, spaces as dashes."""
    headings = re.findall(r"^#+\s+(.*)$", page.read_text(), re.M)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
            continue
        path, _, fragment = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        assert resolved.exists(), f"{page.relative_to(ROOT)}: link to {target}, which does not exist"
        if fragment and resolved.suffix == ".md":
            assert fragment in _anchors(resolved), f"{page.relative_to(ROOT)}: no heading #{fragment} in {path}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_named_files_exist(page):
    for name in PATH.findall(page.read_text()):
        if THIRD_PARTY_ACTIONS.fullmatch(name):
            continue
        assert (ROOT / name).exists(), f"{page.relative_to(ROOT)} names {name}, which does not exist"


def test_the_checks_see_links_and_paths():
    """The patterns above find what they are for (a broken pattern would pass every page)."""
    text = "see [a](docs/cli.md#reference) and `scripts/test.sh`, not actions/cache or org/mlops-actions/actions/x"
    assert LINK.findall(text) == ["docs/cli.md#reference"]
    assert PATH.findall(text) == ["docs/cli.md", "scripts/test.sh", "actions/cache"]
    assert "reference" in _anchors(ROOT / "docs" / "cli.md")
