"""The README's "Supported setups" table tells the truth: every setup it claims is named again in the
"tested by the suite" column, with test modules that exist, or with the words "not tested".

The rule, per row:
- the "supported" column is a list of setups, split on commas and semicolons; text in parentheses
  is commentary;
- the "tested by the suite" column is a list of entries split on semicolons, each `setups: body`,
  where `setups` names one or more setups (comma-separated) and `body` names the test modules that
  run them as backticked paths (a test module, a folder of test modules or a workflow), or says
  "not tested";
- every claimed setup has an entry, every entry names a claimed setup, and every path exists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
HEADING = "## Supported setups"
# A backticked token that reads as a repository path: `tests/x.py`, `tests/mlflow2/`, `.github/...`.
PATH_TOKEN = re.compile(r"`((?:\.?[\w-]+/)+[\w.-]*)`")


@dataclass(frozen=True)
class Row:
    name: str
    supported: str
    tested: str


def table_rows(markdown: str) -> list[Row]:
    """The rows of the table under the "Supported setups" heading."""
    section = markdown.split(HEADING, 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        if not line.startswith("|"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if cells[1:] == ["supported", "tested by the suite"] or set("".join(cells)) <= {"-", " "}:
            continue  # the header and its rule
        assert len(cells) == 3, f"a Supported setups row needs 3 cells: {line}"
        rows.append(Row(*cells))
    return rows


def split_top(text: str, separators: str) -> list[str]:
    """`text` split on `separators` outside parentheses and backticks, pieces stripped, empties dropped."""
    pieces, current, depth, quoted = [], [], 0, False
    for char in text:
        if char == "`":
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth = max(depth - 1, 0)
        elif not quoted and depth == 0 and char in separators:
            pieces.append("".join(current))
            current = []
            continue
        current.append(char)
    pieces.append("".join(current))
    return [piece.strip() for piece in pieces if piece.strip()]


def without_remarks(text: str) -> str:
    """`text` without its parenthesised remarks (parentheses inside backticks are kept)."""
    kept, depth, quoted = [], 0, False
    for char in text:
        if char == "`":
            quoted = not quoted
        if not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")" and depth:
            depth -= 1
        elif depth == 0:
            kept.append(char)
    return " ".join("".join(kept).split())


def setup_key(text: str) -> str:
    """A setup's name as both columns must spell it: remarks and extra spaces dropped."""
    return without_remarks(text)


def claimed_setups(row: Row) -> list[str]:
    return [setup_key(item) for item in split_top(without_remarks(row.supported), ",;")]


def is_test_path(path: str, root: Path) -> bool:
    """A test module, a folder holding test modules, or a workflow: something that runs tests."""
    target = root / path
    if path.startswith(".github/workflows/"):
        return target.is_file()
    if not path.startswith("tests/"):
        return False
    if target.is_dir():
        return any(target.rglob("test_*.py"))
    return target.is_file() and target.name.startswith("test_") and target.suffix == ".py"


def row_problems(row: Row, root: Path) -> list[str]:
    """What is untrue in `row`: each problem names the setup and what it lacks."""
    problems, covered = [], set()
    claimed = claimed_setups(row)
    for entry in split_top(row.tested, ";"):
        label, colon, body = entry.partition(": ")
        if not colon:
            problems.append(f"{row.name}: the tested entry {entry!r} does not say which setups it tests (`setups: …`)")
            continue
        names = [setup_key(name) for name in split_top(label, ",")]
        paths = PATH_TOKEN.findall(body)
        for path in paths:
            if not (root / path).exists():
                problems.append(f"{row.name}: {', '.join(names)} names {path}, which does not exist")
        runs_tests = [path for path in paths if is_test_path(path, root)]
        if not runs_tests and "not tested" not in body.lower():
            problems.append(
                f"{row.name}: {', '.join(names)} lacks a test: name a test module (`tests/...`) that runs it,"
                ' or say "not tested"'
            )
        for name in names:
            if name not in claimed:
                problems.append(f"{row.name}: the tested column names {name!r}, which the supported column does not")
        covered.update(names)
    for setup in claimed:
        if setup not in covered:
            problems.append(
                f"{row.name}: {setup!r} is claimed as supported but lacks a test: no entry of the tested column"
                ' names it with a test module, or says "not tested"'
            )
    return problems


def table_problems(markdown: str, root: Path) -> list[str]:
    rows = table_rows(markdown)
    if not rows:
        return [f"README.md has no table under {HEADING!r}"]
    return [problem for row in rows for problem in row_problems(row, root)]


def test_every_supported_setup_is_named_with_its_tests():
    problems = table_problems(README.read_text(), ROOT)
    assert not problems, "README.md, Supported setups:\n" + "\n".join(problems)


def _row(name: str) -> Row:
    return next(row for row in table_rows(README.read_text()) if row.name == name)


def test_the_python_row_claims_what_the_self_test_workflow_runs():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "self-test.yml").read_text())
    matrix = {str(version) for version in workflow["jobs"]["tests"]["strategy"]["matrix"]["python"]}
    claimed = set(claimed_setups(_row("Python")))
    assert claimed <= matrix, f"Python versions claimed but not in self-test.yml's matrix: {sorted(claimed - matrix)}"


def test_the_dvc_row_names_the_release_the_oldest_dvc_venv_installs():
    pinned = re.search(r'^oldest_dvc="([0-9.]+)"', (ROOT / "scripts" / "setup-oldest-dvc.sh").read_text(), re.M)
    assert claimed_setups(_row("DVC"))[0] == pinned.group(1), "README's DVC floor != scripts/setup-oldest-dvc.sh's"


# The checker itself, on sample tables: it must catch what it is for, or the lint passes silently.

SAMPLE = """# x

## Supported setups

| | supported | tested by the suite |
| --- | --- | --- |
{rows}

## Next
"""


def _sample_root(tmp_path: Path) -> Path:
    (tmp_path / "tests" / "suite").mkdir(parents=True)
    (tmp_path / "tests" / "suite" / "test_a.py").write_text("")
    (tmp_path / "tests" / "support.py").write_text("")
    return tmp_path


def _problems(tmp_path: Path, *rows: str) -> list[str]:
    return table_problems(SAMPLE.format(rows="\n".join(rows)), _sample_root(tmp_path))


def test_a_true_table_passes(tmp_path):
    assert (
        _problems(
            tmp_path,
            "| Thing | A (a remark, with a comma), B | A: `tests/suite/test_a.py`; B: `tests/suite/` (a folder) |",
            "| Other | C, D | C: `tests/suite/test_a.py`; D: not tested (no server here) |",
        )
        == []
    )


def test_a_claimed_setup_no_entry_names_fails_naming_it(tmp_path):
    problems = _problems(tmp_path, "| Thing | A, B | A: `tests/suite/test_a.py` |")
    assert problems == [
        "Thing: 'B' is claimed as supported but lacks a test: no entry of the tested column names it with a test "
        'module, or says "not tested"'
    ]


def test_a_row_claiming_support_with_no_module_fails(tmp_path):
    problems = _problems(tmp_path, "| Thing | A | A: real servers |", "| Other | C |  |")
    assert any(p.startswith("Thing: A lacks a test") for p in problems), problems
    assert any("Other: 'C' is claimed as supported but lacks a test" in p for p in problems), problems


def test_a_module_that_does_not_exist_fails_naming_it(tmp_path):
    problems = _problems(tmp_path, "| Thing | A | A: `tests/suite/test_gone.py` |")
    assert "Thing: A names tests/suite/test_gone.py, which does not exist" in problems
    assert any(p.startswith("Thing: A lacks a test") for p in problems), problems


def test_a_path_that_runs_no_test_does_not_count(tmp_path):
    problems = _problems(tmp_path, "| Thing | A | A: `tests/support.py` |")
    assert any(p.startswith("Thing: A lacks a test") for p in problems), problems


def test_an_entry_for_an_unclaimed_setup_fails(tmp_path):
    problems = _problems(tmp_path, "| Thing | A | A, Z: `tests/suite/test_a.py` |")
    assert problems == ["Thing: the tested column names 'Z', which the supported column does not"]


def test_a_missing_table_fails(tmp_path):
    assert table_problems("# README\n\nno table\n\n## Supported setups\n\nprose only\n", tmp_path)
