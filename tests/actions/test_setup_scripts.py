"""The actions' set-up scripts run as the actions run them (actions/setup/key.sh, then setup.sh
with key.sh's outputs): Windows is refused before anything, a bad dvc-remotes value is refused
with the names to use, and a restored venv whose interpreter is gone is rebuilt, not run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.run import offline_setup_env

ROOT = Path(__file__).resolve().parents[2]
KEY_SH = ROOT / "actions" / "setup" / "key.sh"
SETUP_SH = ROOT / "actions" / "setup" / "setup.sh"
EMBEDDED_STORE = """
from mlflow.tracking import MlflowClient
client = MlflowClient()
run = client.create_run(client.create_experiment("housing"))
client.log_metric(run.info.run_id, "r2_score", 0.9)
client.set_terminated(run.info.run_id)
client.create_registered_model("housing")
version = client.create_model_version("housing", f"runs:/{run.info.run_id}/model", run.info.run_id)
client.set_registered_model_alias("housing", "staging", version.version)
print(f"models:/housing@staging={client.get_model_version_by_alias('housing', 'staging').version}")
"""
WINDOWS = "::error title=mlops-actions::Windows runners are not supported (Linux and macOS are)"


def _outputs(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if line)


def _run(args: list[str], tmp: Path, **env: str) -> tuple[subprocess.CompletedProcess, dict[str, str]]:
    output = tmp / "github-output"
    output.write_text("")
    process_env = {**os.environ, "GITHUB_OUTPUT": str(output), "MLOPS_ACTIONS_HOME": str(tmp / "home"), **env}
    result = subprocess.run(args, env=process_env, capture_output=True, text=True, timeout=600, check=False)
    return result, _outputs(output)


def test_key_sh_refuses_a_windows_runner_first(tmp_path):
    result, outputs = _run(["bash", str(KEY_SH)], tmp_path, RUNNER_OS="Windows", PATH="/usr/bin:/bin")

    assert result.returncode == 2
    assert WINDOWS in result.stdout
    assert outputs == {}


def test_key_py_refuses_a_windows_runner(tmp_path):
    result, outputs = _run([sys.executable, str(ROOT / "actions" / "setup" / "key.py")], tmp_path, RUNNER_OS="Windows")

    assert result.returncode == 2
    assert WINDOWS in result.stdout
    assert outputs == {}


def test_key_sh_names_the_venv_of_the_remotes_picked(tmp_path):
    result, outputs = _run(["bash", str(KEY_SH)], tmp_path, MLOPS_DVC_REMOTES="gs, ssh")

    assert result.returncode == 0, result.stdout + result.stderr
    assert set(outputs) == {"key", "venv", "python", "extras"}
    assert outputs["extras"] == "gs,s3,ssh"
    assert outputs["key"].startswith(f"mlops-actions-venv-{os.uname().sysname}-")
    assert outputs["venv"] == str(tmp_path / "home" / f"venv-{outputs['key'].rsplit('-', 1)[1]}")
    assert Path(outputs["python"]).is_absolute()


def test_key_sh_refuses_an_unknown_remote_with_the_names_to_use(tmp_path):
    result, outputs = _run(["bash", str(KEY_SH)], tmp_path, MLOPS_DVC_REMOTES="s3 gcs")

    assert result.returncode == 2
    assert (
        "::error title=mlops-actions::unknown dvc-remotes value(s) 'gcs': use any of azure, gdrive, gs" in result.stdout
    )
    assert outputs == {}


@pytest.mark.integration
def test_a_restored_venv_whose_interpreter_is_gone_is_rebuilt(tmp_path):
    """What a setup-python upgrade leaves: the cached venv's bin/python points at a removed
    interpreter. Today's exit 127 is a rebuild, said in one line."""
    _, key = _run(["bash", str(KEY_SH)], tmp_path)
    venv = Path(key["venv"])
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to("/opt/hostedtoolcache/Python/3.11.8/x64/bin/python3.11")
    (venv / ".mlops-actions-key").write_text(key["key"] + "\n")  # the set-up had finished
    setup_env = offline_setup_env(key)

    rebuilt, outputs = _run(["bash", str(SETUP_SH)], tmp_path, **setup_env)

    log = rebuilt.stdout + rebuilt.stderr
    assert rebuilt.returncode == 0, log
    assert (
        f"ci_helpers: the venv in {venv} is dead: its interpreter "
        "/opt/hostedtoolcache/Python/3.11.8/x64/bin/python3.11 no longer exists; rebuilding it"
    ) in log
    assert outputs == {"bin": str(venv / "bin" / "ci-helpers")}
    help_text = subprocess.run([outputs["bin"], "--help"], capture_output=True, text=True, check=False)
    assert help_text.returncode == 0, help_text.stderr
    assert "pr-validate" in help_text.stdout
    version = subprocess.run([outputs["bin"], "--version"], capture_output=True, text=True, check=False)
    pyproject_version = re.search(r'^version = "([^"]+)"$', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
    assert version.stdout == f"ci-helpers, version {pyproject_version}\n", version.stderr

    reused, _ = _run(["bash", str(SETUP_SH)], tmp_path, **setup_env)

    assert reused.returncode == 0, reused.stdout + reused.stderr
    assert f"ci_helpers: reusing the venv in {venv}" in reused.stderr

    # mlflow-skinny, plus what the venv adds to it, runs the embedded default store: a run, a
    # registered version and an alias on sqlite:///mlflow.db, as ci_helpers' adapters make them
    store = subprocess.run(
        [str(venv / "bin" / "python"), "-c", EMBEDDED_STORE],
        cwd=tmp_path,
        env={**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert store.returncode == 0, store.stderr[-3000:]
    assert store.stdout.split()[-1] == "models:/housing@staging=1"
