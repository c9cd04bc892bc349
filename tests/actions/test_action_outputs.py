"""Each action's documented outputs are exactly what its ci-helpers command writes to
$GITHUB_OUTPUT: nothing written goes unmapped, and nothing mapped is never written (the
`mlflow-experiment-id` that pr-validate documented but never mapped, for one).

The commands' own publishing code writes to a real $GITHUB_OUTPUT file here, from small results;
the act-driven tests (test_actions.py) check the mapped values of real runs."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from ci_helpers.adapters.registry import AliasMove, RegisteredVersion
from ci_helpers.adapters.tracking import TrackedRun
from ci_helpers.build_progress import BuildProgress
from ci_helpers.errors import InfrastructureError
from ci_helpers.evaluation import EvalReport
from ci_helpers.lock_commit import LockCommitResult
from ci_helpers.provenance import GitContext
from ci_helpers.report.build import build_outputs
from ci_helpers.report.build_failure import publish_build_failure
from ci_helpers.report.pr import step_outputs
from ci_helpers.report.publish import publish_report
from ci_helpers.report.registry import publish_registry_outcome
from ci_helpers.results import PRValidationResult, RegistryOutcome

ROOT = Path(__file__).resolve().parents[2]
RUN = TrackedRun("sqlite:///mlflow.db", "7", "a" * 32)
VERSION = RegisteredVersion("housing", "3", "models:/m-1", RUN.run_id, reused=False)
MOVE = AliasMove("housing", "staging", "3", "2")


def _mapped(action: str, step: str) -> set[str]:
    outputs = yaml.safe_load((ROOT / "actions" / action / "action.yml").read_text())["outputs"]
    for name, spec in outputs.items():
        assert spec["value"] == f"${{{{ steps.{step}.outputs.{name} }}}}", (
            f"{action}: output {name} maps {spec['value']}"
        )
    return set(outputs)


def _written(path: Path) -> set[str]:
    names, lines = set(), iter(path.read_text().splitlines())
    for line in lines:
        heredoc = re.fullmatch(r"([\w-]+)<<(\S+)", line)
        if heredoc:
            names.add(heredoc.group(1))
            for value_line in lines:
                if value_line == heredoc.group(2):
                    break
        elif "=" in line:
            names.add(line.split("=", 1)[0])
    return names


@pytest.fixture
def github_output(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "github-output"
    path.write_text("")
    monkeypatch.setenv("GITHUB_OUTPUT", str(path))
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    return path


def test_pr_validate_maps_every_output_the_command_writes(github_output):
    result = PRValidationResult(
        True,
        "passed",
        GitContext("b" * 40, "feature", 7),
        (),
        EvalReport({"metrics.r2_score": 0.9}, "stage:evaluate"),
        run=RUN,
    )
    # as ci_helpers/flows/pr.py publishes it
    publish_report("{}", "", step_outputs(result), [], None, "mlops-actions pr-validate")

    assert _written(github_output) == _mapped("pr-validate", "validate")


def test_master_build_maps_every_output_the_command_writes(github_output):
    # build_outputs reads these fields of a BuildResult only
    result = SimpleNamespace(
        passed=True,
        verdict="passed",
        metrics={"metrics.r2_score": 0.9},
        run=RUN,
        registered=VERSION,
        alias=MOVE,
        lock=LockCommitResult("commit", "committed", "c" * 40),
        superseded_by=None,
        model_path="/ws/models/model.pkl",
        statement_path="/tmp/runner/mlops-provenance/churn-v1.intoto.json",
        subject_checksums_path="/tmp/runner/mlops-provenance/churn-v1.sha256",
    )
    publish_report("{}", "", build_outputs(result), [], None, "mlops-actions master-build")
    written = _written(github_output)
    github_output.write_text("")
    progress = BuildProgress()
    progress.run = RUN
    publish_build_failure(progress, InfrastructureError("S3 is down"), None)

    assert written == _mapped("master-build", "build")
    assert _written(github_output) <= written, "a failed build writes an output master-build does not map"


@pytest.mark.parametrize(
    "outcome",
    [
        RegistryOutcome(True, "registered", "housing", "3", VERSION, MOVE),
        RegistryOutcome(True, "rolled-back", "housing", "2", alias=AliasMove("housing", "production", "2", "3")),
    ],
    ids=lambda outcome: outcome.action,
)
def test_register_model_maps_every_output_the_command_writes(github_output, outcome):
    publish_registry_outcome(outcome, None)

    assert _written(github_output) == _mapped("register-model", "registry")
