"""`ci-helpers trace`: from a model version back to its PR, data, CI run and alias moves.

Real parts: git with a bare origin and real merge commits on main, dvc with the moto S3 remote,
versions built by `ci-helpers master-build` on an `mlflow server` (and registered on the embedded
sqlite default), a rollback by `ci-helpers rollback`. GitHub's API is the one thing faked
(tests/support/fake_github.py): nothing else can stand in for it offline.
"""

from __future__ import annotations

import json
import os
import re
import shutil
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
    for line, run in zip(moves, ("771", "772", "771"), strict=True):  # from which build: the version's CI run
        assert f"https://github.example/acme/housing/actions/runs/{run}" in line
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

    # planted secrets that travel here (the tracking URI's password, through a proxy that sees it
    # used; the AWS key the remote check signs with) never shown; the GitHub token and origin's
    # password: test_the_pull_request_comes_from_the_github_api_when_no_message_names_one
    with FlakyProxy(uri) as proxy:
        tracking = proxy.url.replace("http://", f"http://ci-user:{TRACKING_PASSWORD}@", 1)
        env = {"AWS_SECRET_ACCESS_KEY": AWS_SECRET}
        runs = [
            _trace(clone, f"{name}@staging", "--tracking-uri", tracking, *extra, env=env) for extra in ((), ("--json",))
        ]
    assert proxy.exchanges, "the tracking URI with the password was not used"
    for run in runs:
        assert run.code == 0, run.output
        assert "pull request" in run.stdout or '"pull_request"' in run.stdout
        assert "held" in run.stdout
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

    # origin's URL carries a password and names the repository: trace reads it, never shows it
    sh(
        ["git", "remote", "set-url", "origin", f"https://x-access-token:{GIT_PASSWORD}@github.com/acme/housing.git"],
        clone,
    )
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
        env = {"GITHUB_TOKEN": GITHUB_TOKEN, "GITHUB_API_URL": fake.url}
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
    ("spec", "says", "extra"),
    [
        ("no-such-model@staging", "model 'no-such-model' is not registered", ()),
        ("{model}@prod", "has no alias 'prod' (its aliases: staging)", ()),
        ("{model}/9", "has no version 9", ()),
        ("{model}@", "malformed model spec", ()),
        ("{model}/x", "malformed model spec", ()),
        ("@staging", "malformed model spec", ()),
        ("bad name@staging", "invalid model name", ()),
        ("{model}@staging", "DVC remote 'nosuch' is not configured", ("--remote", "nosuch")),
        ("{model}@staging", "--no-remote-check checks none", ("--remote", "storage", "--no-remote-check")),
    ],
)
def test_bad_input_is_exit_2_in_one_line(mlflow_server, tmp_path, spec, says, extra):
    from ci_helpers.adapters.registry import register_version, set_alias

    model = f"trace-{uuid.uuid4().hex[:8]}"
    version = register_version(mlflow_server.url, model, "s3://nowhere/model", None, {})
    set_alias(mlflow_server.url, model, "staging", version.version, None, "test")
    sh(["git", "init", "-q"], tmp_path)

    result = _trace(tmp_path, spec.format(model=model), "--tracking-uri", mlflow_server.url, *extra)

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


def test_a_token_is_taken_from_the_environment_only(tmp_path):
    """A token on the command line shows in `ps`: there is no --github-token."""
    sh(["git", "init", "-q"], tmp_path)
    result = _trace(tmp_path, "housing@production", "--github-token", GITHUB_TOKEN)
    assert result.code == 2, result.output
    assert "No such option '--github-token'" in result.stderr


def test_a_fresh_clone_without_mlflow_db_is_refused_before_anything_is_created(project):
    clone = project.checkout("main", name="fresh")

    result = _trace(clone, "housing@production")

    assert result.code == 2, result.output
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert f"no MLflow registry at sqlite:///{clone}/mlflow.db; pass --tracking-uri" in result.stderr
    assert result.stdout == ""
    assert not (clone / "mlflow.db").exists()


def test_a_run_mlflow_cannot_read_is_exit_3_not_a_trace_without_it(mlflow_server, tmp_path):
    """Only a run that does not exist is left out; a server error reading it stops the trace."""
    from mlflow import MlflowClient

    from ci_helpers.adapters.registry import register_version

    model = f"trace-{uuid.uuid4().hex[:8]}"
    run = MlflowClient(mlflow_server.url).create_run("0")
    register_version(mlflow_server.url, model, "s3://nowhere/model", run.info.run_id, {})
    sh(["git", "init", "-q"], tmp_path)

    with FlakyProxy(mlflow_server.url, fail_paths=("/runs/get",)) as proxy:
        result = _trace(tmp_path, f"{model}/1", "--tracking-uri", proxy.url, "--no-remote-check")

    assert proxy.failed_requests, "the run was never asked for"
    assert result.code == 3, result.output
    assert proxy.url.removeprefix("http://") in result.stderr


def _git(repo: Path, *args: str) -> str:
    return sh(["git", *args], repo).stdout.strip()


def _commit(repo: Path, message: str) -> str:
    _git(repo, "commit", "-q", "--allow-empty", "-m", message)
    return _git(repo, "rev-parse", "HEAD")


def _register(uri: str, model: str, commit: str, **tags: str) -> str:
    from ci_helpers.adapters.registry import register_version

    recorded = {"mlops.git_commit": commit, "mlops.branch": "main", **tags}
    return register_version(uri, model, "s3://nowhere/model", None, recorded).version


def test_a_subfolder_project_shows_only_the_data_its_build_used(tmp_path):
    """A monorepo: the DVC project in ml/ (`dvc init --subdir`), with a .dvc file and a directory
    the build read, and an unrelated .dvc file and stage it did not."""
    repo, remote = tmp_path / "mono", tmp_path / "remote"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    before = _commit(repo, "before the ML project")
    proj = repo / "ml"
    (proj / "data").mkdir(parents=True)
    (proj / "images").mkdir()
    (proj / "data" / "raw.txt").write_text("raw\n")
    for number in range(25):
        (proj / "images" / f"{number}.txt").write_text(f"image {number}\n")
    (proj / "notes.txt").write_text("unrelated\n")
    sh(["dvc", "init", "-q", "--subdir"], proj)
    sh(["dvc", "remote", "add", "-q", "-d", "local", str(remote)], proj)
    sh(["dvc", "add", "-q", "data/raw.txt", "images", "notes.txt"], proj)
    stages = [
        ("prepare", ["-d", "data/raw.txt", "-d", "images", "-o", "features.txt"], "cat data/raw.txt > features.txt"),
        ("train", ["-d", "features.txt", "-o", "model.bin"], "cp features.txt model.bin"),
        ("summary", ["-d", "notes.txt", "-o", "summary.txt"], "cp notes.txt summary.txt"),
    ]
    for name, args, cmd in stages:
        sh(["dvc", "stage", "add", "-q", "-n", name, *args, cmd], proj)
    sh(["dvc", "repro", "-q"], proj)
    sh(["dvc", "push", "-q"], proj)
    _git(repo, "add", "-A")
    built = _commit(repo, "the ML project")
    model_md5 = lock_out_md5((proj / "dvc.lock").read_text(), "model.bin")
    uri = f"sqlite:///{proj / 'mlflow.db'}"
    _register(uri, "mono", built, **{"mlops.ci_md5.model.bin": model_md5})
    _register(uri, "mono", before, **{"mlops.ci_md5.model.bin": model_md5})

    traced = _trace(proj, "mono/1", "--json")

    assert traced.code == 0, traced.output
    facts = json.loads(traced.stdout)
    data = {item["path"]: item for item in facts["data"]}
    assert set(data) == {"data/raw.txt", "images", "features.txt", "model.bin"}  # not notes.txt, summary.txt
    assert "2 other cached outs of the project, not used by this build, left out" in facts["data_note"]
    assert data["data/raw.txt"]["recorded_in"] == f"data/raw.txt.dvc@{built[:12]}"
    assert data["data/raw.txt"]["produced_by"] == "data/raw.txt.dvc"
    assert data["model.bin"]["recorded_in"] == f"dvc.lock@{built[:12]}"
    assert (data["model.bin"]["produced_by"], data["features.txt"]["used_by"]) == ("train", ["train"])
    assert data["images"]["held"] == "held (manifest and 20 of 25 files asked)"
    assert {data[path]["held"] for path in ("data/raw.txt", "features.txt", "model.bin")} == {"held"}

    # one of the sampled files gone from the remote: the directory is not held
    manifest = json.loads(
        (remote / "files" / "md5" / data["images"]["md5"][:2] / data["images"]["md5"][2:]).read_text()
    )
    first = min(entry["md5"] for entry in manifest)
    (remote / "files" / "md5" / first[:2] / first[2:]).unlink()
    gone = _trace(proj, "mono/1", "--json")
    assert gone.code == 0, gone.output
    assert {item["path"]: item["held"] for item in json.loads(gone.stdout)["data"]}["images"] == "not held"

    # built before `dvc init`: the project cannot be read there, the rest of the trace stands
    early = _trace(proj, "mono/2", "--json")
    assert early.code == 0, early.output
    facts = json.loads(early.stdout)
    assert facts["commit"] == before
    assert f"DVC cannot read the project in ml/ at commit {before[:12]}" in facts["data_note"]
    assert [(item["path"], item["recorded_in"]) for item in facts["data"]] == [
        ("model.bin", "tag mlops.ci_md5.model.bin")
    ]


def _feature_merged_as_pr_9(repo: Path) -> tuple[str, str, str]:
    """main: base, then "Merge pull request #9" bringing in a feature commit whose own subject
    names #3 (a request into the feature branch)."""
    _git(repo, "init", "-q", "-b", "main")
    base = _commit(repo, "base")
    _git(repo, "checkout", "-q", "-b", "feature")
    work = _commit(repo, "feature work (#3)")
    _git(repo, "checkout", "-q", "main")
    _commit(repo, "meanwhile on main")
    _git(repo, "merge", "-q", "--no-ff", "feature", "-m", "Merge pull request #9 from acme/feature\n\nThe feature")
    return base, work, _git(repo, "rev-parse", "HEAD")


def test_the_merge_commit_names_the_pull_request_and_a_move_by_hand_is_shown(tmp_path):
    from mlflow import MlflowClient

    from ci_helpers.adapters.registry import set_alias

    base, work, merge = _feature_merged_as_pr_9(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    _register(uri, "feat", work, **{"mlops.ci_run_url": "https://ci.example/runs/1"})
    _register(uri, "feat", base)
    set_alias(uri, "feat", "production", "1", work, "register-model")
    MlflowClient(uri).set_registered_model_alias("feat", "production", "2")  # by hand, not recorded

    text = _trace(tmp_path, "feat/1", "--no-remote-check")
    as_json = _trace(tmp_path, "feat/1", "--no-remote-check", "--json")

    assert text.code == 0, text.output
    assert "pull request #9 The feature" in text.stdout
    assert f"from the merge commit message of {merge[:12]}" in text.stdout
    moves = text.stdout.split("Alias moves (oldest first)")[1].splitlines()[3:]
    assert len(moves) == 2
    assert "unset -> 1" in moves[0]
    assert "https://ci.example/runs/1" in moves[0]
    assert "#9" in moves[0]
    assert "1 -> 2" in moves[1]
    assert moves[1].endswith("moved outside mlops-actions (not recorded)")
    facts = json.loads(as_json.stdout)
    assert facts["pull_request"]["number"] == 9
    assert [(m["version"], m["previous"], m["recorded"], m["commit"]) for m in facts["moves"]] == [
        ("1", None, True, work),
        ("2", "1", False, base),
    ]


def test_a_github_api_failure_stops_its_questions_and_exits_after_the_output(tmp_path):
    """Two commits whose messages name no request: the API is asked once, then not again."""
    from ci_helpers.adapters.registry import set_alias

    _git(tmp_path, "init", "-q", "-b", "main")
    first, second = _commit(tmp_path, "first model"), _commit(tmp_path, "second model")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    for commit in (first, second):
        set_alias(uri, "api", "production", _register(uri, "api", commit), commit, "register-model")
    fake = FakeGitHub(GITHUB_TOKEN).start()
    try:
        env = {"GITHUB_TOKEN": "PLANTED-WRONG-TOKEN", "GITHUB_API_URL": fake.url, "GITHUB_REPOSITORY": "acme/housing"}
        refused = _trace(tmp_path, "api@production", "--no-remote-check", env=env)
        refused_asks = len(fake.requests)
        fake.fail_next = 100
        down = _trace(tmp_path, "api@production", "--no-remote-check", env={**env, "GITHUB_TOKEN": GITHUB_TOKEN})
        down_asks = len(fake.requests) - refused_asks
    finally:
        fake.stop()
    assert refused.code == 2, refused.output
    assert "Trace of api@production" in refused.stdout
    assert "unknown: the GitHub API could not say (GET /repos/acme/housing/commits/" in refused.stdout
    assert len(refused.stderr.strip().splitlines()) == 1
    assert "GITHUB_TOKEN" in refused.stderr
    assert "PLANTED-WRONG-TOKEN" not in refused.output
    assert refused_asks == 1
    assert down.code == 3, down.output
    assert "Trace of api@production" in down.stdout
    assert fake.url in down.stderr
    assert down_asks == 3  # one commit, its retries; never the second commit


def test_a_long_history_is_read_once_per_branch(tmp_path):
    """2,000 commits on main, 30 merges each bringing in a side commit, 30 alias moves: git is run
    a handful of times, not once or more per move."""
    from ci_helpers.adapters.registry import set_alias

    _git(tmp_path, "init", "-q", "-b", "main")
    stream, mark = [], 0
    sides = []
    for number in range(2000):
        mark += 1
        parent = [f"from :{mark - 1}"] if mark > 1 else []
        stream += ["commit refs/heads/main", f"mark :{mark}", "committer T <t@example.invalid> 1700000000 +0000"]
        stream += ["data 9", "commit  .", *parent]
        if number % 60 == 59:  # a side commit, then its merge on main
            side = mark + 1
            stream += [
                f"commit refs/heads/side{number}",
                f"mark :{side}",
                "committer T <t@example.invalid> 1700000000 +0000",
            ]
            stream += ["data 11", "side  work.", f"from :{mark}"]
            message = f"Merge pull request #{number} from acme/side{number}"
            stream += [
                "commit refs/heads/main",
                f"mark :{side + 1}",
                "committer T <t@example.invalid> 1700000000 +0000",
            ]
            stream += [f"data {len(message)}", message, f"from :{mark}", f"merge :{side}"]
            sides.append(number)
            mark = side + 1
    sh(["git", "fast-import", "--quiet"], tmp_path, input="\n".join(stream) + "\n")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    for number in sides:
        commit = _git(tmp_path, "rev-parse", f"side{number}")
        set_alias(uri, "long", "staging", _register(uri, "long", commit), commit, "master-build")
    shim = tmp_path / "bin"
    shim.mkdir()
    log = tmp_path / "git-calls"
    (shim / "git").write_text(f'#!/bin/sh\necho "$1" >> {log}\nexec {shutil.which("git")} "$@"\n')
    (shim / "git").chmod(0o755)

    result = _trace(
        tmp_path, "long@staging", "--no-remote-check", "--json", env={"PATH": f"{shim}:{os.environ['PATH']}"}
    )

    assert result.code == 0, result.output
    moves = json.loads(result.stdout)["moves"]
    assert [m["pull_request"]["number"] for m in moves] == sides
    calls = log.read_text().split()
    assert len(calls) <= 12, calls
