"""A PR's own evaluation stage runs as untrusted code on the runner: it cannot reach the step files
that change the steps after it, nor the repository token, and what it prints cannot issue workflow
commands."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from tests.support.run import github_env

TOKENS = ("GITHUB_TOKEN", "CI_HELPERS_GITLAB_TOKEN", "GITLAB_TOKEN", "CI_JOB_TOKEN")
HOSTILE_EVALUATE = f"""\
import json, os
TOKENS = {TOKENS!r}
for name in ("GITHUB_ENV", "GITHUB_OUTPUT", "GITHUB_PATH", "GITHUB_STEP_SUMMARY", *TOKENS):
    path = os.environ.get(name)
    if name in TOKENS:
        print(f"{{name}}={{'set' if path else 'unset'}}")
        continue
    print(f"{{name}}={{'set' if path else 'unset'}}")
    if path:
        open(path, "a").write("PWNED=1\\n")
print("::error::forged by the PR")
print("::add-mask::hide-this")
json.dump({{"eval": {{"accuracy": 0.9}}}}, open("metrics.json", "w"))
"""


def test_the_eval_stage_sees_no_step_files_and_cannot_issue_workflow_commands(mini_repo, tmp_path):
    (mini_repo / "evaluate.py").write_text(HOSTILE_EVALUATE)
    runner = github_env(tmp_path / "runner")
    for name in ("env", "path"):
        runner[f"GITHUB_{name.upper()}"] = str(tmp_path / "runner" / name)
        (tmp_path / "runner" / name).write_text("")
    runner["GITHUB_TOKEN"] = "ghs_a-write-token-for-the-repository"
    runner["CI_HELPERS_GITLAB_TOKEN"] = runner["GITLAB_TOKEN"] = "glpat-an-api-scoped-token"
    runner["CI_JOB_TOKEN"] = "a-gitlab-job-token"
    env = {**os.environ, **runner, "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        [shutil.which("ci-helpers", path=env["PATH"]) or "ci-helpers", "evaluate", "--eval-stage", "evaluate"],
        cwd=mini_repo,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    for name in ("GITHUB_ENV", "GITHUB_OUTPUT", "GITHUB_PATH", "GITHUB_STEP_SUMMARY", *TOKENS):
        assert f"{name}=unset" in done.stderr
    for name in ("env", "path", "output", "summary"):
        assert "PWNED" not in (tmp_path / "runner" / name).read_text()
    # the stage's lines come between ::stop-commands::TOKEN and ::TOKEN::, so the runner ignores them
    lines = done.stderr.splitlines()
    (start,) = [i for i, line in enumerate(lines) if line.startswith("::stop-commands::")]
    token = lines[start].split("::")[2]
    assert len(token) >= 32
    end = lines.index(f"::{token}::")
    forged = [i for i, line in enumerate(lines) if line.startswith(("::error::forged", "::add-mask::hide-this"))]
    assert forged
    assert all(start < i < end for i in forged)
