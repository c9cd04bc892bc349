"""Hostile metric and branch names, run for real on Actions: they add no summary rows or columns, no
markup, and no workflow command that ci-helpers did not mean to emit.

The project's own evaluation stage writes metric keys with a newline followed by `::error::forged`,
with `|`, with backticks and with an HTML tag; the branches are named `x<img>` and ``tick`<img>``.
"""

from __future__ import annotations

import json
import re
import shutil
import textwrap
import uuid
from pathlib import Path

import pytest

from tests.support.project import sh
from tests.support.run import Outcome, ci_helpers, github_env, read_outputs, read_report

pytestmark = pytest.mark.integration

NEWLINE_KEY = "acc\n::error::forged"
HOSTILE_KEYS = (NEWLINE_KEY, "a|b", "tick`s", "html <img src=x>")
METRICS = {f"eval.{key}" for key in ("accuracy", *HOSTILE_KEYS)}
BRANCHES = ("x<img>", "tick`<img>")

EVALUATE = textwrap.dedent(f"""
    import json
    hostile = {list(HOSTILE_KEYS)!r}
    values = dict(zip(hostile, [0.5, 0.6, 0.7, 0.8]))
    values["accuracy"] = float(open("quality.txt").read())
    json.dump({{"eval": values}}, open("metrics.json", "w"))
""")
DVC_YAML = textwrap.dedent("""
    stages:
      evaluate:
        cmd: python evaluate.py
        deps: [evaluate.py, quality.txt]
        metrics:
          - metrics.json:
              cache: false
""")
# a|b and tick`s fail (two annotations that carry hostile names), accuracy passes. The newline key cannot be
# addressed by --threshold (see the last test), so it is in the table and the report only.
THRESHOLDS = ("eval.accuracy>=0.5", "eval.a|b>=0.9", "eval.tick`s>=0.9")

# Workflow commands ci-helpers emits itself; any other line that starts with `::` is forged.
OWN_COMMAND = re.compile(
    r"::(group::.*|endgroup::|add-mask::.*|stop-commands::[0-9a-f]{32}|[0-9a-f]{32}::"
    r"|(error|warning|notice) title=[^:\n]*::.*)"
)


@pytest.fixture(scope="module")
def hostile_template(tmp_path_factory) -> Path:
    """main, then one branch per hostile name whose committed metrics differ from what CI computes
    (so that the summary lists the hostile keys once more, as mismatches)."""
    root = tmp_path_factory.mktemp("hostile")
    repo = root / "repo"
    repo.mkdir()
    (repo / "evaluate.py").write_text(EVALUATE)
    (repo / "dvc.yaml").write_text(DVC_YAML)
    (repo / "quality.txt").write_text("0.9\n")
    sh(["git", "init", "-q", "-b", "main"], repo)
    sh(["dvc", "init", "-q"], repo)
    sh(["dvc", "remote", "add", "-d", "store", str(root / "store")], repo)
    sh(["dvc", "repro", "-q"], repo)
    sh(["git", "add", "-A"], repo)
    sh(["git", "commit", "-qm", "main"], repo)
    for index, branch in enumerate(BRANCHES):
        sh(["git", "checkout", "-q", "-b", branch, "main"], repo)
        (repo / "quality.txt").write_text(f"0.9{index + 1}\n")
        sh(["dvc", "repro", "-q"], repo)
        recorded = json.loads((repo / "metrics.json").read_text())
        recorded["eval"][NEWLINE_KEY] = 0.55
        recorded["eval"]["a|b"] = 0.66
        (repo / "metrics.json").write_text(json.dumps(recorded))
        sh(["dvc", "commit", "-q", "-f", "evaluate"], repo)
        sh(["git", "commit", "-qam", f"{branch}: better, with hand-edited metrics"], repo)
    sh(["git", "checkout", "-q", "main"], repo)
    return root


@pytest.fixture
def hostile_repo(hostile_template, tmp_path) -> Path:
    shutil.copytree(hostile_template, tmp_path / "hostile", symlinks=True)
    repo = tmp_path / "hostile" / "repo"
    sh(["dvc", "remote", "modify", "--local", "store", "url", str(tmp_path / "hostile" / "store")], repo)
    return repo


def forged_commands(*texts: str) -> list[str]:
    """Lines that a runner would read as a workflow command ci-helpers did not emit."""
    lines = [line.lstrip() for text in texts for line in text.splitlines()]
    return [line for line in lines if line.startswith("::") and not OWN_COMMAND.fullmatch(line)]


def metrics_table(summary: str) -> tuple[str, list[str]]:
    """The metrics table's header and its body rows (the lines after the separator, up to the
    first line that is not a table line)."""
    lines = summary.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| metric | baseline |"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(line)
    return lines[start], rows


def assert_inert(outcome: Outcome, runner: Path, branch: str) -> None:
    summary = (runner / "summary").read_text()
    outputs_file = (runner / "output").read_text()

    # nothing starts a workflow command we did not emit, in any channel
    assert forged_commands(outcome.stdout, outcome.stderr) == []
    for text in (outcome.stdout, outcome.stderr, summary, outputs_file):
        assert not [line for line in text.splitlines() if line.lstrip().startswith("::error::forged")]
    assert not [line for line in summary.splitlines() if line.lstrip().startswith("::")]
    assert not [line for line in outputs_file.splitlines() if line.lstrip().startswith("::")]
    # our own annotations of the failing hostile metric are there, each on one line
    errors = [line for line in outcome.stdout.splitlines() if line.startswith("::error ")]
    assert len(errors) == 2, outcome.output
    assert "eval.a|b = 0.6" in errors[0]
    assert "eval.tick`s = 0.7 does not meet >= 0.9" in errors[1]

    # one row per metric, each with as many cells as the header, and balanced code spans
    header, rows = metrics_table(summary)
    assert len(rows) == len(METRICS), summary
    assert all(row.count("|") == header.count("|") == 7 for row in rows), rows
    assert all(row.count("`") % 2 == 0 for row in rows), rows
    assert sum("forged" in row for row in rows) == 1
    # no raw HTML from a name anywhere in the summary; the branch is escaped in the heading
    assert "<img" not in summary
    heading = summary.splitlines()[0]
    assert "&lt;img&gt;" in heading, heading
    assert ("&#96;" in heading) == ("`" in branch)

    # the step outputs and the report keep the names as they are, as data
    assert set(json.loads(read_outputs(runner / "output")["metrics"])) == METRICS
    assert set(read_report(runner / "report.json")["metrics"]) == METRICS


@pytest.mark.parametrize("branch", BRANCHES)
@pytest.mark.parametrize("command", ["gate", "pr-validate"])
def test_hostile_metric_and_branch_names_stay_inert(hostile_repo, tmp_path, branch, command):
    sh(["git", "checkout", "-q", branch], hostile_repo)
    runner = tmp_path / "runner"
    env = github_env(runner, GITHUB_REF=f"refs/heads/{branch}")
    args = [command, "--baseline-ref", "main", "--max-regression", "eval.accuracy=0.05"]
    for rule in THRESHOLDS:
        args += ["--threshold", rule]
    if command == "pr-validate":  # re-run the stage in CI, and log the hostile keys to MLflow
        args += ["--eval-stage", "evaluate", "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"]

    outcome = ci_helpers(*args, "--report-json", str(runner / "report.json"), cwd=hostile_repo, env=env)

    assert outcome.code == 1, outcome.output  # eval.a|b and eval.tick`s fail their thresholds
    assert_inert(outcome, runner, branch)
    if command == "pr-validate":
        summary = (runner / "summary").read_text()
        assert "CI's evaluation differs from the metrics committed" in summary
        differs = summary.split("CI's evaluation differs from the metrics committed", 1)[1]
        mismatches = [line for line in differs.splitlines() if line.startswith("- ")]
        assert len(mismatches) == 2, summary  # one line each, the newline key included
        assert read_report(runner / "report.json")["mlflow"]["run_id"]


def test_a_rule_naming_a_metric_with_a_newline_is_refused_on_one_line(hostile_repo, tmp_path):
    runner = tmp_path / "runner"
    for option, rule in [("--threshold", f"eval.{NEWLINE_KEY}>=0.1"), ("--max-regression", f"eval.{NEWLINE_KEY}=0.1")]:
        outcome = ci_helpers("gate", option, rule, cwd=hostile_repo, env=github_env(runner))

        assert outcome.code == 2, outcome.output
        assert forged_commands(outcome.stdout, outcome.stderr) == []
        (line,) = [line for line in outcome.output.splitlines() if "forged" in line]
        assert line.startswith("::error title=")
        assert "eval.acc%0A::error::forged" in line  # the newline is escaped inside our annotation


def test_master_build_on_a_hostile_branch_escapes_it_in_the_summary(project, mlflow_server, tmp_path):
    branch = "x<img>"
    checkout = project.checkout("main")
    sh(["git", "checkout", "-q", "-b", branch], checkout)
    sh(["git", "push", "-q", "origin", branch], checkout)
    runner = tmp_path / "runner"
    env = {
        **github_env(runner, GITHUB_REF=f"refs/heads/{branch}"),
        "GIT_COMMITTER_NAME": "CI Bot",
        "GIT_COMMITTER_EMAIL": "ci@example.invalid",
    }

    outcome = ci_helpers(
        "master-build",
        "--model-name",
        f"housing-{uuid.uuid4().hex[:8]}",
        "--experiment",
        f"hostile-{uuid.uuid4().hex[:6]}",
        "--tracking-uri",
        mlflow_server.url,
        cwd=checkout,
        env=env,
    )

    assert outcome.code == 0, outcome.output
    summary = (runner / "summary").read_text()
    heading = summary.splitlines()[0]
    assert heading.startswith("## CI build of ")
    assert "<code>x&lt;img&gt;</code>" in heading, heading
    assert "<img" not in summary
    assert forged_commands(outcome.stdout, outcome.stderr) == []
    assert not [line for line in summary.splitlines() if line.lstrip().startswith("::")]
