"""`ci-helpers trace`: from a model version back to its PR, data, CI run and alias moves.

Real parts: git with a bare origin and real merge commits on main, dvc with the moto S3 remote,
versions built by `ci-helpers master-build` on an `mlflow server` (and registered on the embedded
sqlite default), a rollback by `ci-helpers rollback`. GitHub's API is the one thing faked
(tests/support/fake_github.py): nothing else can stand in for it offline.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest

from tests.support.fake_github import FakeGitHub
from tests.support.project import Project, lock_out_md5, set_train_params, sh, write_local_remote
from tests.support.proxy import FlakyProxy
from tests.support.run import Outcome, ci_helpers
from tests.support.servers import refused_port, s3_client

pytestmark = pytest.mark.integration

CI_IDENTITY = {"GIT_COMMITTER_NAME": "CI Bot", "GIT_COMMITTER_EMAIL": "ci@example.invalid"}
TRACKING_PASSWORD = "PLANTED-TRACE-PW-1"
GIT_PASSWORD = "PLANTED-TRACE-GIT-2"
AWS_SECRET = "PLANTED-TRACE-AWS-4"
GITHUB_TOKEN = "PLANTED-TRACE-GH-5"
PLANTED = (TRACKING_PASSWORD, GIT_PASSWORD, AWS_SECRET, GITHUB_TOKEN)


def _build_main(project: Project, name: str, tracking_uri: str, label: str) -> None:
    checkout = project.checkout("main", name=f"ci-main-{label}")
    built = ci_helpers(
        "master-build",
        "--model-name",
        name,
        "--tracking-uri",
        tracking_uri,
        cwd=checkout,
        env={
            **CI_IDENTITY,
            "GITHUB_SERVER_URL": "https://github.example",
            "GITHUB_REPOSITORY": "acme/housing",
            "GITHUB_RUN_ID": f"77{label}",
        },
    )
    assert built.code == 0, built.output


def _merge_pr_11(project: Project) -> str:
    """A real merge commit on main, as GitHub's merge button writes it."""
    dev = project.dev
    sh(["git", "checkout", "-q", "main"], dev)
    message = "Merge pull request #11 from acme/pr-better\n\nMore trees"
    sh(["git", "merge", "-q", "--no-ff", "pr-better", "-m", message], dev)
    sh(["git", "push", "-q", "origin", "main"], dev)
    return sh(["git", "rev-parse", "HEAD"], dev).stdout.strip()


def _squash_pr_12(project: Project) -> str:
    """A squash merge on main: one commit whose subject ends in (#12). Its params changed without
    `dvc repro`, so CI's build differs from the lock and master-build commits dvc.lock back."""
    dev = project.dev
    sh(["git", "fetch", "-q", "origin"], dev)
    sh(["git", "checkout", "-q", "-B", "main", "origin/main"], dev)
    set_train_params(dev, max_depth=7)
    sh(["git", "commit", "-qam", "Deeper trees (#12)"], dev)
    sh(["git", "push", "-q", "origin", "main"], dev)
    return sh(["git", "rev-parse", "HEAD"], dev).stdout.strip()


def _trace(clone: Path, *args: str, env: dict | None = None) -> Outcome:
    return ci_helpers("trace", *args, cwd=clone, env=env)


def _lines_with_a_secret(*texts: str) -> list[str]:
    return [line for text in texts for line in text.splitlines() if any(secret in line for secret in PLANTED)]


def test_trace_shows_both_prs_the_data_and_every_alias_move_in_order(project, mlflow_server, tmp_path):
    name = f"housing-{uuid.uuid4().hex[:8]}"
    uri = mlflow_server.url
    merge = _merge_pr_11(project)
    _build_main(project, name, uri, "1")
    squash = _squash_pr_12(project)
    _build_main(project, name, uri, "2")
    rolled = ci_helpers("rollback", "--model-name", name, "--alias", "staging", "--tracking-uri", uri, cwd=tmp_path)
    assert rolled.code == 0, rolled.output
    clone = project.checkout("main", name="reader")
    lock_tip = project.head("main")  # CI's lock commit of the second build
    assert lock_tip != squash
    model_md5 = lock_out_md5(sh(["git", "show", f"{lock_tip}:dvc.lock"], project.origin).stdout, "models/model.pkl")

    text = _trace(clone, f"{name}@staging", "--tracking-uri", uri)
    assert text.code == 0, text.output
    out = text.stdout
    assert f"models:/{name}/1 (asked: {name}@staging)" in out
    assert re.search(rf"^commit +{merge}$", out, re.MULTILINE)
    assert "pull request #11 More trees" in out
    assert f"from the merge commit message of {merge[:12]}" in out
    assert "https://github.example/acme/housing/actions/runs/771" in out
    moves = out.split("Alias moves (oldest first)")[1].splitlines()[3:]
    assert [line.split()[:6] for line in moves] == [
        ["1", moves[0].split()[1], "staging", "unset", "->", "1"],
        ["2", moves[1].split()[1], "staging", "1", "->", "2"],
        ["3", moves[2].split()[1], "staging", "2", "->", "1"],
    ]
    assert "#11" in moves[0]
    assert merge[:12] in moves[0]
    assert "#12 Deeper trees" in moves[1]
    assert squash[:12] in moves[1]
    assert "(rollback)" in moves[2]
    assert "#11" in moves[2]
    assert "rollback" in moves[2].split()[-1]

    as_json = _trace(clone, f"{name}/2", "--tracking-uri", uri, "--json")
    assert as_json.code == 0, as_json.output
    facts = json.loads(as_json.stdout)
    assert facts["version"] == "2"
    assert facts["commit"] == squash
    assert facts["branch"] == "main"
    assert facts["lock_commit"] == lock_tip
    assert facts["pull_request"]["number"] == 12
    assert facts["pull_request"]["source"] == "squash commit message"
    assert facts["ci_run_url"] == "https://github.example/acme/housing/actions/runs/772"
    data = {item["path"]: item for item in facts["data"]}
    assert set(data) == {
        "data/raw/housing.csv",
        "data/features/train.csv",
        "data/features/test.csv",
        "models/model.pkl",
    }
    assert data["models/model.pkl"]["md5"] == model_md5
    assert data["models/model.pkl"]["produced_by"] == "train"
    assert data["data/features/train.csv"]["used_by"] == ["train"]
    assert data["models/model.pkl"]["recorded_in"] == f"dvc.lock@{lock_tip[:12]}"
    assert {item["held"] for item in facts["data"]} == {"held"}
    assert [(m["alias"], m["previous"], m["version"], m["rolled_back"]) for m in facts["moves"]] == [
        ("staging", None, "1", False),
        ("staging", "1", "2", False),
        ("staging", "2", "1", True),
    ]
    assert [m["pull_request"]["number"] for m in facts["moves"]] == [11, 12, 11]
    assert [m["commit"] for m in facts["moves"]] == [merge, squash, merge]

    # the model object of v2 is gone from the remote: said, never "held"
    s3_client(project.s3_endpoint).delete_object(
        Bucket=project.bucket, Key=f"dvc/files/md5/{model_md5[:2]}/{model_md5[2:]}"
    )
    gone = _trace(clone, f"{name}/2", "--tracking-uri", uri, "--json")
    assert gone.code == 0, gone.output
    held = {item["path"]: item["held"] for item in json.loads(gone.stdout)["data"]}
    assert held.pop("models/model.pkl") == "not held"
    assert set(held.values()) == {"held"}

    # the remote cannot be reached: everything else shown, its objects "unknown", exit 3 naming it
    port = refused_port()
    write_local_remote(clone, project.remote_url, f"http://127.0.0.1:{port}")
    down = _trace(clone, f"{name}/2", "--tracking-uri", uri)
    assert down.code == 3, down.output
    assert "pull request #12" in down.stdout
    assert "held" not in down.stdout.replace("unknown (remote unreachable)", "")
    assert f"127.0.0.1:{port}" in down.stderr
    write_local_remote(clone, project.remote_url, project.s3_endpoint)

    # planted secrets (the tracking URI's password, origin's, the AWS key, a GitHub token) never shown
    sh(["git", "remote", "set-url", "origin", f"http://x-access-token:{GIT_PASSWORD}@127.0.0.1:9/origin.git"], clone)
    with FlakyProxy(uri) as proxy:
        tracking = proxy.url.replace("http://", f"http://ci-user:{TRACKING_PASSWORD}@", 1)
        env = {"AWS_SECRET_ACCESS_KEY": AWS_SECRET, "GITHUB_TOKEN": GITHUB_TOKEN}
        runs = [
            _trace(clone, f"{name}@staging", "--tracking-uri", tracking, *extra, env=env) for extra in ((), ("--json",))
        ]
    for run in runs:
        assert run.code == 0, run.output
        assert "pull request" in run.stdout or '"pull_request"' in run.stdout
        assert _lines_with_a_secret(run.stdout, run.stderr) == []


def test_the_pull_request_comes_from_the_github_api_when_no_message_names_one(project, tmp_path):
    """On the embedded sqlite default: a version registered for a commit whose message names no PR."""
    import mlflow
    from sklearn.dummy import DummyRegressor

    from ci_helpers.adapters.tracking import process_default_tracking_uri

    clone = project.checkout("main", name="reader")
    commit = project.head("main")  # "housing model": no PR in its message
    uri = f"sqlite:///{clone / 'mlflow.db'}"
    with process_default_tracking_uri(uri):
        experiment = mlflow.create_experiment("trace", artifact_location=(tmp_path / "artifacts").as_uri())
        with mlflow.start_run(experiment_id=experiment) as run:
            mlflow.sklearn.log_model(
                DummyRegressor().fit([[0], [1]], [0, 1]),
                name="model",
                pip_requirements=["scikit-learn"],
                serialization_format="cloudpickle",
            )
    name = "housing-api"
    registered = ci_helpers(
        "register-model",
        "--model-name",
        name,
        "--run-id",
        run.info.run_id,
        "--tag",
        f"mlops.git_commit={commit}",
        "--tag",
        "mlops.branch=main",
        "--alias",
        "production",
        cwd=clone,
    )
    assert registered.code == 0, registered.output

    offline = _trace(clone, f"{name}@production", "--json")
    assert offline.code == 0, offline.output
    facts = json.loads(offline.stdout)
    assert facts["pull_request"] is None
    assert facts["pull_request_note"].startswith("unknown: no merge or squash commit message names one")
    assert {item["held"] for item in facts["data"]} == {"held"}  # main's data, pushed by the template

    fake = FakeGitHub(GITHUB_TOKEN).start()
    try:
        fake.commit_pulls[("acme/housing", commit)] = [
            {"number": 20, "title": "Open one", "merged_at": None, "base": {"ref": "main"}},
            {
                "number": 21,
                "title": "First housing model",
                "html_url": "https://github.example/acme/housing/pull/21",
                "merged_at": "2026-11-20T10:00:00Z",
                "base": {"ref": "main"},
            },
        ]
        env = {"GITHUB_TOKEN": GITHUB_TOKEN, "GITHUB_API_URL": fake.url, "GITHUB_REPOSITORY": "acme/housing"}
        text = _trace(clone, f"{name}@production", env=env)
        as_json = _trace(clone, f"{name}@production", "--json", env=env)
    finally:
        fake.stop()
    assert text.code == 0, text.output
    assert "pull request #21 First housing model https://github.example/acme/housing/pull/21" in text.stdout
    assert "from the GitHub API" in text.stdout
    pull = json.loads(as_json.stdout)["pull_request"]
    assert (pull["number"], pull["source"], pull["commit"]) == (21, "GitHub API", commit)
    assert [r.path for r in fake.requests] == [f"/repos/acme/housing/commits/{commit}/pulls?per_page=100"] * 2
    assert all(r.headers["Authorization"] == f"Bearer {GITHUB_TOKEN}" for r in fake.requests)
    assert _lines_with_a_secret(text.stdout, text.stderr, as_json.stdout, as_json.stderr) == []


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("no-such-model@staging", "model 'no-such-model' is not registered"),
        ("{model}@prod", "has no alias 'prod' (its aliases: staging)"),
        ("{model}/9", "has no version 9"),
        ("{model}@", "malformed model spec"),
        ("{model}/x", "malformed model spec"),
        ("@staging", "malformed model spec"),
        ("bad name@staging", "invalid model name"),
    ],
)
def test_bad_input_is_exit_2_in_one_line(mlflow_server, tmp_path, spec, says):
    from ci_helpers.adapters.registry import register_version, set_alias

    model = f"trace-{uuid.uuid4().hex[:8]}"
    version = register_version(mlflow_server.url, model, "s3://nowhere/model", None, {})
    set_alias(mlflow_server.url, model, "staging", version.version, None, "test")
    sh(["git", "init", "-q"], tmp_path)

    result = _trace(tmp_path, spec.format(model=model), "--tracking-uri", mlflow_server.url)

    assert result.code == 2, result.output
    assert says in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


def test_mlflow_down_is_exit_3_naming_the_endpoint(tmp_path):
    sh(["git", "init", "-q"], tmp_path)
    port = refused_port()
    result = _trace(
        tmp_path, "housing@production", "--tracking-uri", f"http://ci-user:{TRACKING_PASSWORD}@127.0.0.1:{port}"
    )
    assert result.code == 3, result.output
    assert f"127.0.0.1:{port}" in result.stderr
    assert _lines_with_a_secret(result.stdout, result.stderr) == []
