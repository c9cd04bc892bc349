"""The built-in evaluator runs in the project's Python (the one its dvc.yaml stages use), not in
ci_helpers' own: the model is unpickled by the scikit-learn it was built with, and the actions'
private venv holds no pandas or scikit-learn at all."""

from __future__ import annotations

import json
import os
import pickle
import stat
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest

from ci_helpers.errors import ConfigError
from ci_helpers.evaluation import EVAL_PYTHON_ENV, PRIVATE_VENV_STAMP, evaluator_python
from tests.support.run import BUILTIN_CLASSIFICATION, ci_helpers, offline_setup_env

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
KEY_SH = ROOT / "actions" / "setup" / "key.sh"
SETUP_SH = ROOT / "actions" / "setup" / "setup.sh"
DVC_YAML = """\
stages:
  prepare:
    cmd: python -c "print('nothing to prepare')"
"""


def _sh(*args: str, cwd: Path) -> None:
    subprocess.run(args, cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A git + DVC project with a committed sklearn pickle and CSV test set."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    repo = tmp_path_factory.mktemp("builtin") / "repo"
    repo.mkdir()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 2))
    label = ((x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=0.3, size=200)) > 0).astype(int)
    frame = pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1], "label": label})
    frame.to_csv(repo / "data.csv", index=False)
    (repo / "model.pkl").write_bytes(pickle.dumps(LogisticRegression().fit(frame[["x1", "x2"]], label)))
    (repo / "dvc.yaml").write_text(DVC_YAML)
    _sh("git", "init", "-q", "-b", "main", cwd=repo)
    _sh("dvc", "init", "-q", cwd=repo)
    _sh("dvc", "remote", "add", "-d", "store", str(repo.parent / "store"), cwd=repo)
    _sh("dvc", "repro", "-q", cwd=repo)
    _sh("git", "add", "-A", cwd=repo)
    _sh("git", "commit", "-qm", "model and test set", cwd=repo)
    return repo


EVALUATE = ("evaluate", "--model", "model.pkl", *BUILTIN_CLASSIFICATION)


def _executable(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_the_worker_runs_in_the_python_the_variable_names_without_the_runners_tokens(template, tmp_path):
    log = tmp_path / "used.log"
    project_python = _executable(
        tmp_path / "bin" / "project-python",
        f'#!/bin/sh\necho "token=${{GITHUB_TOKEN:-unset}} env=${{GITHUB_ENV:-unset}} $*" >> {log}\n'
        f'exec {sys.executable} "$@"\n',
    )
    out = tmp_path / "metrics.json"

    result = ci_helpers(
        *EVALUATE,
        "--output",
        str(out),
        cwd=template,
        env={EVAL_PYTHON_ENV: str(project_python), "GITHUB_TOKEN": "ghs_secret", "GITHUB_ENV": str(tmp_path / "e")},
    )

    assert result.code == 0, result.output
    assert set(json.loads(out.read_text())) == {"accuracy", "precision", "recall", "f1", "roc_auc"}
    (used,) = log.read_text().splitlines()
    assert "builtin_evaluator_worker.py evaluate --model" in used
    assert used.startswith("token=unset env=unset ")  # the PR's pickle never sees the runner's tokens


def test_a_python_without_pandas_or_sklearn_is_exit_2_naming_it_and_the_fix(template, tmp_path):
    bare = tmp_path / "bare-env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True, capture_output=True)
    python = bare / "bin" / "python"

    result = ci_helpers(*EVALUATE, cwd=template, env={EVAL_PYTHON_ENV: str(python)})

    assert result.code == 2, result.output
    (line,) = [line for line in result.stderr.splitlines() if "built-in evaluator" in line]
    assert f"runs in {python}" in line
    assert "cannot import pandas" in line
    assert "`pip install pandas scikit-learn` in the environment your stages use" in line
    assert "Traceback" not in result.output


def test_an_eval_python_that_does_not_exist_is_exit_2(template, tmp_path):
    result = ci_helpers(*EVALUATE, cwd=template, env={EVAL_PYTHON_ENV: str(tmp_path / "no-python")})

    assert result.code == 2, result.output
    assert f"{EVAL_PYTHON_ENV}={tmp_path / 'no-python'} is not an executable Python" in result.stderr


def test_the_private_venvs_own_bin_folder_is_skipped_on_path(tmp_path, monkeypatch):
    private = tmp_path / "private-venv"
    own = _executable(private / "bin" / "python3", "#!/bin/sh\n")
    project = _executable(tmp_path / "project-env" / "bin" / "python3", "#!/bin/sh\n")
    monkeypatch.delenv(EVAL_PYTHON_ENV, raising=False)
    monkeypatch.setattr(sys, "prefix", str(private))
    monkeypatch.setenv("PATH", f"{own.parent}{os.pathsep}{project.parent}")

    assert evaluator_python() == str(own)  # ci_helpers installed in the project's own env: use it
    (private / PRIVATE_VENV_STAMP).write_text("key\n")  # what actions/setup/setup.sh writes last
    assert evaluator_python() == str(project)
    monkeypatch.setenv(EVAL_PYTHON_ENV, str(own))
    assert evaluator_python() == str(own)
    monkeypatch.delenv(EVAL_PYTHON_ENV)
    monkeypatch.setenv("PATH", str(own.parent))
    with pytest.raises(ConfigError, match="found no python3 on PATH"):
        evaluator_python()


def _outputs(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if line)


@pytest.mark.slow
def test_the_action_venv_has_no_sklearn_and_pr_validate_still_evaluates(template, tmp_path):
    env = {**os.environ, "MLOPS_ACTIONS_HOME": str(tmp_path / "home"), "GITHUB_OUTPUT": str(tmp_path / "key-out")}
    (tmp_path / "key-out").write_text("")
    subprocess.run(["bash", str(KEY_SH)], env=env, check=True, capture_output=True, timeout=120)
    key = _outputs(tmp_path / "key-out")
    (tmp_path / "setup-out").write_text("")
    setup = subprocess.run(
        ["bash", str(SETUP_SH)],
        env={**env, "GITHUB_OUTPUT": str(tmp_path / "setup-out"), **offline_setup_env(key)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert setup.returncode == 0, setup.stdout + setup.stderr
    venv = Path(key["venv"])
    probe = "from importlib.util import find_spec; print([m for m in ('sklearn', 'pandas', 'numpy', 'scipy') if find_spec(m)])"
    held = subprocess.run([str(venv / "bin" / "python"), "-c", probe], capture_output=True, text=True, check=True)
    assert held.stdout.strip() == "[]"
    assert find_spec("sklearn") is not None  # the project's Python (this suite's, first on PATH) has it

    report = tmp_path / "r.json"
    result = subprocess.run(
        [
            _outputs(tmp_path / "setup-out")["bin"],
            "pr-validate",
            "--no-track",
            *EVALUATE[1:],
            "--threshold",
            "accuracy>=0.8",
            "--allow-missing-baseline",
            "--report-json",
            str(report),
        ],
        cwd=template,
        env={k: v for k, v in os.environ.items() if k != EVAL_PYTHON_ENV},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(report.read_text())
    assert data["evaluation"]["method"] == "builtin"
    assert 0.8 < data["metrics"]["accuracy"] < 1
    assert data["metrics"]["roc_auc"] > 0.9
