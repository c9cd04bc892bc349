"""The Python tree stays lint-clean, formatted and type-checked (configs in pyproject.toml)."""

from __future__ import annotations

import ast
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "ci_helpers"


def _run(*args: str) -> subprocess.CompletedProcess:
    tool = shutil.which(args[0])
    if not tool:
        pytest.fail(f"{args[0]} is not installed; the test extra installs it")
    return subprocess.run([tool, *args[1:]], cwd=ROOT, capture_output=True, text=True, check=False)


def test_ruff_lint_is_clean():
    result = _run("ruff", "check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_clean():
    result = _run("ruff", "format", "--no-cache", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_clean():
    result = _run("mypy", "--no-incremental", "--cache-dir", "/dev/null")
    assert result.returncode == 0, result.stdout + result.stderr


def test_package_is_typed():
    assert (PACKAGE / "py.typed").is_file()


def _imports(path: Path) -> set[str]:
    """The ci_helpers modules a file imports, as dotted names relative to the package."""
    tree = ast.parse(path.read_text())
    package = path.relative_to(ROOT).with_suffix("").parts[:-1]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = list(package[: len(package) - node.level + 1])
            found.add(".".join([*base, *(node.module.split(".") if node.module else [])]))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ci_helpers"):
            found.add(node.module or "")
    return found


@pytest.mark.parametrize("path", sorted((PACKAGE / "adapters").glob("*.py")), ids=lambda p: p.name)
def test_adapters_import_nothing_of_ours_but_errors(path):
    ours = {name for name in _imports(path) if not name.startswith("ci_helpers.adapters")}
    assert ours <= {"ci_helpers.errors"}, f"{path.name} imports {sorted(ours)}"


@pytest.mark.parametrize("path", sorted((PACKAGE / "flows").glob("*.py")), ids=lambda p: p.name)
def test_flows_never_import_each_other(path):
    flows = {name for name in _imports(path) if name.startswith("ci_helpers.flows")}
    assert flows == set(), f"{path.name} imports {sorted(flows)}"


# cli.py and the command modules it registers (cli_<command>.py)
@pytest.mark.parametrize(
    "path",
    sorted(p for p in PACKAGE.rglob("*.py") if p.name != "cli.py" and not p.name.startswith("cli_")),
    ids=lambda p: p.name,
)
def test_only_the_cli_imports_click(path):
    """cli.py, and the cli_<command>.py modules it registers, hold the click wiring."""
    assert "import click" not in path.read_text()


def test_nothing_but_the_project_model_parses_dvc_files():
    """dvc.yaml, dvc.lock and .dvc files are read through DVC's API in project.py, never by hand."""
    readers = [
        str(path.relative_to(ROOT))
        for path in PACKAGE.rglob("*.py")
        if path.name != "project.py"
        and "import yaml" in path.read_text()
        and any(name in path.read_text() for name in ("dvc.yaml", "dvc.lock", '".dvc"'))
    ]
    assert readers == []
