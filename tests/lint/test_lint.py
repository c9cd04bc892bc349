"""Static checks of the actions and workflows: zizmor, check-jsonschema, actionlint (all offline)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ACTIONS = sorted(ROOT.glob("actions/*/action.yml"))
WORKFLOWS = sorted(
    [
        *ROOT.glob(".github/workflows/*.yml"),
        *ROOT.glob("examples/workflows/*.yml"),
        *ROOT.glob("tests/actions/workflows/*.yml"),
    ]
)


def _tool(name: str) -> str:
    path = shutil.which(name)
    if not path:
        pytest.fail(f"{name} is not installed; the test extra installs it")
    return path


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), cwd=ROOT, capture_output=True, text=True, check=False)


def test_zizmor_pedantic_has_no_findings():
    """zizmor's strictest persona over every action and every workflow a user sees or copies. Files
    are named one by one: given a folder, zizmor audits only what lies under `.github/workflows`
    and the action.yml files in it, so `examples/workflows` would be skipped silently."""
    published = [
        *ACTIONS,
        *ROOT.glob(".github/workflows/*.yml"),
        *ROOT.glob("examples/workflows/*.yml"),
    ]
    result = _run(_tool("zizmor"), "--offline", "--no-progress", "--persona", "pedantic", *map(str, published))
    assert result.returncode == 0, result.stdout + result.stderr
    audited = re.findall(r"completed (\S+)", result.stderr)
    assert len(audited) == len(published), result.stderr


def test_self_test_runs_every_supported_python():
    workflow = yaml.safe_load((ROOT / ".github/workflows/self-test.yml").read_text())
    pythons = workflow["jobs"]["tests"]["strategy"]["matrix"]["python"]
    assert pythons == ["3.10", "3.11", "3.12", "3.13"]


def test_every_zizmor_ignore_carries_its_reason():
    for path in [*ACTIONS, *WORKFLOWS]:
        for line in path.read_text().splitlines():
            if "zizmor: ignore[" in line:
                reason = line.split("]", 1)[1].strip()
                assert len(reason) > 10, f"{path}: zizmor ignore without a reason: {line.strip()}"


def test_actions_match_the_vendored_schema():
    result = _run(
        _tool("check-jsonschema"),
        "--builtin-schema",
        "vendor.github-actions",
        *map(str, ACTIONS),
        *map(str, ROOT.glob("tests/actions/stand-ins/*/action.yml")),
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflows_match_the_vendored_schema():
    result = _run(_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *map(str, WORKFLOWS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint():
    result = _run(_tool("actionlint"), *map(str, WORKFLOWS))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", ACTIONS, ids=lambda p: p.parent.name)
def test_action_passes_inputs_only_through_env(path):
    action = yaml.safe_load(path.read_text())
    for step in action["runs"]["steps"]:
        assert "${{" not in step.get("run", ""), f"{path}: expression inside run: in step {step.get('name')}"
        if "run" in step:
            assert step.get("shell", "").startswith("bash -eEuo pipefail"), (
                f"{path}: strict shell in {step.get('name')}"
            )
    for name, spec in action["inputs"].items():
        assert spec.get("description"), f"{path}: input {name} has no description"
        assert name == name.lower(), f"{path}: input {name} is not kebab-case"
        assert "_" not in name, f"{path}: input {name} is not kebab-case"
    for name, spec in action["outputs"].items():
        assert spec.get("description"), f"{path}: output {name} has no description"
        assert spec["value"].startswith("${{ steps."), f"{path}: output {name} is not mapped from a step"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_workflows_are_least_privilege_pinned_and_time_limited(path):
    workflow = yaml.safe_load(path.read_text())
    assert workflow.get("permissions") == {}, f"{path}: top-level permissions must be {{}}"
    for name, job in workflow["jobs"].items():
        assert "permissions" in job, f"{path}: job {name} sets no permissions"
        assert "timeout-minutes" in job, f"{path}: job {name} has no timeout-minutes"
    for match in re.finditer(r"uses:\s*([^\s#]+)(.*)", path.read_text()):
        ref, comment = match.groups()
        if ref.startswith(("./", "org/mlops-actions/")):
            continue
        assert re.search(r"@[0-9a-f]{40}$", ref), f"{path}: {ref} is not pinned by SHA"
        assert re.search(r"# v\d", comment), f"{path}: {ref} has no version comment"
