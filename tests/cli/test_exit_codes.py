"""Exit codes a crash must not blur: 4 when the project's own stage fails, 70 for a bug in ci-helpers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner

from ci_helpers.cli import cli
from tests.support import sweep


def _ci_helpers(*args: str, cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}"}
    env.pop("CI_HELPERS_DEBUG", None)
    done = subprocess.run(
        [shutil.which("ci-helpers", path=env["PATH"]) or "ci-helpers", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    sweep.record(done.returncode, done.stdout + done.stderr, f"ci-helpers {' '.join(args)}")
    return done


def test_a_failing_stage_command_is_exit_4_naming_the_stage_and_its_status(mini_repo):
    (mini_repo / "evaluate.py").write_text(
        "import sys\nprint('loading the model...')\nprint('ValueError: bad shape', file=sys.stderr)\nsys.exit(3)\n"
    )
    done = _ci_helpers("evaluate", "--repo", str(mini_repo), "--eval-stage", "evaluate", cwd=mini_repo)

    assert done.returncode == 4, done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    assert "stage 'evaluate' exited with 3" in errors[0]
    assert "ValueError: bad shape" in done.stderr  # its last lines
    assert "Traceback" not in done.stderr


@pytest.mark.internal_error_expected
def test_an_internal_error_is_exit_70_with_one_line_and_the_traceback_only_with_debug(mini_repo, monkeypatch):
    from ci_helpers.flows import pr

    def broken(repo):
        raise KeyError("unexpected")

    monkeypatch.setattr(pr, "load_project", broken)  # stands in for a bug anywhere below the CLI
    monkeypatch.delenv("CI_HELPERS_DEBUG", raising=False)
    plain = CliRunner().invoke(cli, ["check-lock", "--repo", str(mini_repo)])
    debug = CliRunner().invoke(cli, ["--debug", "check-lock", "--repo", str(mini_repo)])

    assert plain.exit_code == 70, plain.output
    errors = [line for line in plain.output.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: internal error in ci-helpers (KeyError: 'unexpected'); "
        "re-run with `--debug` for the traceback, and report it"
    ]
    assert "Traceback" not in plain.output
    assert isinstance(debug.exception, KeyError)  # --debug lets it through, with its traceback
