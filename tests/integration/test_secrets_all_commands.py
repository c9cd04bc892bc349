"""Passwords planted in the URLs a command is given (the tracking URI, the git remote) and in the
AWS secret key appear in no channel, for every command that can touch them:
stdout, stderr, the job summary, the step outputs, the JSON reports, MLflow (runs, logged models,
the registry, artifacts) and the lock commit on origin. The servers are real and the commands
succeed through the credentialed URLs (the git remote is git's own smart-HTTP backend behind basic
auth). Then the tracking server, or the git remote, is down: they fail (exit 3) just as quietly.

Only `::add-mask::<secret>` may carry a secret: it is how the runner learns what to hide.

Not planted: credentials in the DVC remote's `endpointurl` (http://user:pass@host). DVC cannot use
them at all: aiohttp refuses the request ("Cannot combine AUTHORIZATION header with AUTH argument or
credentials encoded in URL"), so no command gets far enough to print them.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.support.project import Project, sh
from tests.support.proxy import FlakyProxy
from tests.support.run import Outcome, ci_helpers, github_env, read_outputs
from tests.support.servers import refused_port

pytestmark = pytest.mark.integration

TRACKING_PASSWORD = "PLANTED-PW-1"
GIT_PASSWORD = "PLANTED-GIT-2"
AWS_SECRET = "PLANTED-AWS-4"
PLANTED = (TRACKING_PASSWORD, GIT_PASSWORD, AWS_SECRET)
GIT_USER = "x-access-token"

CI_IDENTITY = {"GIT_COMMITTER_NAME": "CI Bot", "GIT_COMMITTER_EMAIL": "ci@example.invalid"}


class GitHttpServer:
    """git's own smart-HTTP backend (`git http-backend`) on 127.0.0.1, serving the repositories
    under `root` to a client that sends the right basic-auth credentials, and 401 to any other, as a
    git host does. Push is allowed once authenticated."""

    def __init__(self, root: Path, user: str, password: str) -> None:
        self.requests: list[str] = []
        self.unauthenticated = 0
        expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            self.rfile.readline()
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _serve(self) -> None:
                body = self._body()
                if self.headers.get("Authorization") != expected:
                    server.unauthenticated += 1
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="git"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                server.requests.append(f"{self.command} {self.path}")
                path, _, query = self.path.partition("?")
                env = {
                    **os.environ,
                    "GIT_PROJECT_ROOT": str(root),
                    "GIT_HTTP_EXPORT_ALL": "1",
                    "PATH_INFO": path,
                    "QUERY_STRING": query,
                    "REQUEST_METHOD": self.command,
                    "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                    "CONTENT_LENGTH": str(len(body)),
                    "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
                    "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
                    "REMOTE_USER": user,
                    "REMOTE_ADDR": "127.0.0.1",
                }
                done = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True, check=False)
                separator = b"\r\n\r\n" if b"\r\n\r\n" in done.stdout else b"\n\n"
                head, _, payload = done.stdout.partition(separator)
                status, headers = 200, []
                for line in head.decode("latin-1").splitlines():
                    key, _, value = line.partition(":")
                    if key.lower() == "status":
                        status = int(value.split()[0])
                    elif key:
                        headers.append((key, value.strip()))
                self.send_response(status)
                for key, value in headers:
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> GitHttpServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def credentialed(url: str, user: str, password: str) -> str:
    return url.replace("http://", f"http://{user}:{password}@", 1)


def plant_remotes(checkout: Path, project: Project, git_server: GitHttpServer) -> str:
    """Point the checkout's git origin at the HTTP git server, with a password in the URL."""
    origin = f"http://{GIT_USER}:{GIT_PASSWORD}@127.0.0.1:{git_server.port}/{project.origin.name}"
    sh(["git", "remote", "set-url", "origin", origin], checkout)
    assert sh(["git", "ls-remote", "origin", "main"], checkout).stdout.strip()  # git really talks to it
    return origin


def command_lines_with_a_secret(outcome: Outcome) -> list[str]:
    """Lines of stdout and stderr that hold a planted secret, other than the runner's mask commands."""
    lines = (outcome.stdout + "\n" + outcome.stderr).splitlines()
    return [
        line for line in lines if any(s in line for s in PLANTED) and line not in {f"::add-mask::{s}" for s in PLANTED}
    ]


def leaks_in(channels: dict[str, str]) -> dict[str, list[str]]:
    """For each channel that holds a planted secret, the lines that hold it."""
    found = {}
    for name, content in channels.items():
        lines = [line for line in content.splitlines() if any(s in line for s in PLANTED)]
        if lines:
            found[name] = lines[:5]
    return found


class Job:
    """Steps of one Actions job: each command gets its own runner files, all channels are kept."""

    def __init__(self, tmp: Path, env: dict[str, str]) -> None:
        self.tmp, self.env = tmp, env
        self.channels: dict[str, str] = {}
        self.outcomes: dict[str, Outcome] = {}

    def run(self, step: str, *args: str, cwd: Path, report: bool = True, extra_env: dict | None = None) -> Outcome:
        files = self.tmp / step
        gh = github_env(files)
        report_args = ("--report-json", str(files / "report.json")) if report else ()
        outcome = ci_helpers(*args, *report_args, cwd=cwd, env={**self.env, **gh, **(extra_env or {})})
        self.outcomes[step] = outcome
        (files / "stdout").write_text(outcome.stdout)  # kept for whoever debugs a failure
        (files / "stderr").write_text(outcome.stderr)
        self.channels[f"{step}: stdout/stderr"] = "\n".join(command_lines_with_a_secret(outcome))
        self.channels[f"{step}: step summary"] = (files / "summary").read_text()
        self.channels[f"{step}: step outputs"] = (files / "output").read_text()
        if report:
            path = files / "report.json"
            self.channels[f"{step}: report.json"] = path.read_text() if path.exists() else ""
        return outcome


def every_page(search, **kwargs) -> list:
    """All results of an MLflow search, page after page."""
    found, token = [], None
    while True:
        page = search(**kwargs, max_results=1000, page_token=token)
        found += page
        token = page.token
        if not token:
            return found


def mlflow_channels(uri: str, experiments: list[str], tmp: Path) -> dict[str, str]:
    """Everything MLflow keeps: every experiment, every run (tags, params, info), every registered
    model and version (tags, aliases, descriptions); the artifacts of our runs and logged models."""
    import mlflow.artifacts
    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri, registry_uri=uri)
    channels: dict[str, str] = {}
    every = every_page(client.search_experiments, view_type=ViewType.ALL)
    channels["mlflow: experiments"] = "\n".join(repr(e) for e in every)
    runs = every_page(client.search_runs, experiment_ids=[e.experiment_id for e in every], run_view_type=ViewType.ALL)
    channels["mlflow: runs (info, tags, params)"] = "\n".join(repr(r) for r in runs)
    channels["mlflow: registered models"] = "\n".join(repr(m) for m in every_page(client.search_registered_models))
    channels["mlflow: model versions"] = "\n".join(repr(v) for v in every_page(client.search_model_versions))

    ours = [client.get_experiment_by_name(name).experiment_id for name in experiments]
    for run in client.search_runs(ours, run_view_type=ViewType.ALL):
        target = tmp / "artifacts" / run.info.run_id
        target.mkdir(parents=True)
        client.download_artifacts(run.info.run_id, "", str(target))
        for path in sorted(p for p in target.rglob("*") if p.is_file()):
            channels[f"mlflow artifact {run.info.run_id}/{path.relative_to(target)}"] = path.read_bytes().decode(
                "utf-8", "replace"
            )
    for model in client.search_logged_models(ours):
        channels[f"mlflow logged model {model.model_id}"] = json.dumps(model.to_dictionary(), default=str)
        target = tmp / "logged-models" / model.model_id
        mlflow.artifacts.download_artifacts(
            artifact_uri=model.artifact_location, dst_path=str(target), tracking_uri=uri
        )
        for path in sorted(p for p in target.rglob("*") if p.is_file()):
            channels[f"mlflow logged model {model.model_id}/{path.relative_to(target)}"] = path.read_bytes().decode(
                "utf-8", "replace"
            )
    return channels


def origin_channels(project: Project) -> dict[str, str]:
    """What the build left on origin: commit messages and identities, refs, the committed dvc.lock."""
    log = sh(["git", "log", "--all", "--format=%H %D%n%an <%ae> %cn <%ce>%n%B"], project.origin).stdout
    refs = sh(["git", "for-each-ref", "--format=%(refname) %(contents)"], project.origin).stdout
    lock = sh(["git", "show", "dev-model:dvc.lock"], project.origin).stdout
    return {"origin: git log": log, "origin: refs": refs, "origin: dvc.lock": lock}


def test_planted_passwords_appear_in_no_channel_of_any_command(project, mlflow_server, tmp_path):
    from mlflow.tracking import MlflowClient

    name = f"housing-{uuid.uuid4().hex[:8]}"
    pr_experiment, build_experiment = f"secrets-pr-{uuid.uuid4().hex[:6]}", f"secrets-build-{uuid.uuid4().hex[:6]}"
    client = MlflowClient(mlflow_server.url, registry_uri=mlflow_server.url)
    with FlakyProxy(mlflow_server.url) as proxy, GitHttpServer(project.root, GIT_USER, GIT_PASSWORD) as git_server:
        tracking = credentialed(proxy.url, "ci-user", TRACKING_PASSWORD)
        job = Job(
            tmp_path / "job",
            {"MLFLOW_TRACKING_URI": tracking, "AWS_SECRET_ACCESS_KEY": AWS_SECRET, **CI_IDENTITY},
        )
        # --- the pull request: a shallow checkout, so the baseline is fetched through the credentialed origin
        pr = project.checkout("pr-better", shallow=True)
        plant_remotes(pr, project, git_server)
        requests_before = len(git_server.requests)
        pr_env = {"GITHUB_REF": "refs/pull/7/merge", "GITHUB_BASE_REF": "main", "GITHUB_HEAD_REF": "pr-better"}
        steps = [
            ("pr-validate", ("pr-validate", "--tracking-uri", tracking, "--experiment", pr_experiment), True),
            ("gate", ("gate",), True),
            ("check-remote", ("check-remote",), False),
            ("check-lock", ("check-lock",), False),
            ("pull", ("pull",), False),
            ("evaluate", ("evaluate", "--output", str(tmp_path / "evaluated.json")), False),
        ]
        for step, args, report in steps:
            outcome = job.run(step, *args, cwd=pr, report=report, extra_env=pr_env)
            assert outcome.code == 0, (step, outcome.output)
        job.channels["evaluate: --output file"] = (tmp_path / "evaluated.json").read_text()
        assert len(git_server.requests) > requests_before  # the baseline came through the credentialed origin
        port = proxy.url.rsplit(":", 1)[1]
        assert f"http://***@127.0.0.1:{port}" in job.channels["pr-validate: report.json"]  # used, and masked
        assert f"::add-mask::{AWS_SECRET}" in job.outcomes["pr-validate"].stdout.splitlines()

        # --- the build on merge: commits dvc.lock through the credentialed origin, registers, moves the alias
        built = project.head("dev-model")
        build = project.checkout("dev-model")
        plant_remotes(build, project, git_server)
        pushes_before = len([r for r in git_server.requests if "git-receive-pack" in r and r.startswith("POST")])
        outcome = job.run(
            "master-build",
            "master-build",
            "--model-name",
            name,
            "--tracking-uri",
            tracking,
            "--experiment",
            build_experiment,
            cwd=build,
            extra_env={"GITHUB_REF": "refs/heads/dev-model", "GITHUB_REPOSITORY": "acme/housing", "GITHUB_RUN_ID": "7"},
        )
        assert outcome.code == 0, outcome.output
        outputs = read_outputs(tmp_path / "job" / "master-build" / "output")
        assert project.head("dev-model") == outputs["lock-commit"] != built  # pushed through the HTTP git server
        assert len([r for r in git_server.requests if "git-receive-pack" in r and r.startswith("POST")]) > pushes_before
        assert git_server.unauthenticated > 0  # git was asked for the credentials, and sent the planted ones
        run_id = outputs["run-id"]

        # --- the registry: a second version, promote it, promote again, roll back
        registry = [
            ("register-model", "--model-name", name, "--run-id", run_id, "--alias", "candidate", "--tag", "by=secrets"),
            ("promote", "--model-name", name, "--from-alias", "staging", "--to-alias", "production"),
            ("promote", "--model-name", name, "--from-alias", "candidate", "--to-alias", "production"),
            ("rollback", "--model-name", name, "--alias", "production"),
        ]
        for index, args in enumerate(registry):
            outcome = job.run(f"{index}-{args[0]}", *args, "--tracking-uri", tracking, cwd=tmp_path)
            assert outcome.code == 0, (args, outcome.output)
        assert client.get_model_version_by_alias(name, "production").version == outputs["model-version"]
        # the deploy job's check: the version against its provenance statement (the statement is
        # an artifact of the build's run, so the artifact sweep below greps it too)
        verified = job.run(
            "verify", "verify", f"{name}@production", "--tracking-uri", tracking, cwd=tmp_path, report=False
        )
        assert verified.code == 0, verified.output
        job.channels["master-build: statement file"] = Path(outputs["statement-path"]).read_text()
        assert proxy.failed_requests == []

    channels = {**job.channels, **origin_channels(project)}
    channels.update(mlflow_channels(mlflow_server.url, [pr_experiment, build_experiment], tmp_path / "mlflow"))
    assert any(name.startswith("mlflow artifact") for name in channels)  # the runs' artifacts were read
    assert any(name.startswith("mlflow logged model") for name in channels)  # and the build's logged model
    assert leaks_in(channels) == {}


def test_with_the_tracking_server_or_the_git_remote_down_commands_fail_with_exit_3_and_print_no_secret(
    project, tmp_path
):
    tracking_port, git_port = refused_port(), refused_port()
    tracking = f"http://ci-user:{TRACKING_PASSWORD}@127.0.0.1:{tracking_port}"
    endpoints = {}  # step -> the endpoint its message must name
    job = Job(
        tmp_path / "job",
        {
            "MLFLOW_TRACKING_URI": tracking,
            "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
            "CI_HELPERS_RETRY_ATTEMPTS": "2",
            **CI_IDENTITY,
        },
    )
    pr_env = {"GITHUB_REF": "refs/pull/7/merge", "GITHUB_BASE_REF": "main"}
    with GitHttpServer(project.root, GIT_USER, GIT_PASSWORD) as git_server:
        pr = project.checkout("pr-better", shallow=True)
        plant_remotes(pr, project, git_server)
        outcome = job.run("pr-validate", "pr-validate", "--tracking-uri", tracking, cwd=pr, extra_env=pr_env)
        assert outcome.code == 3, outcome.output
        endpoints["pr-validate"] = f"127.0.0.1:{tracking_port}"

        before = project.head("dev-model")
        build = project.checkout("dev-model")
        plant_remotes(build, project, git_server)
        outcome = job.run(
            "master-build",
            "master-build",
            "--model-name",
            "housing",
            "--tracking-uri",
            tracking,
            cwd=build,
            extra_env={"GITHUB_REF": "refs/heads/dev-model"},
        )
        assert outcome.code == 3, outcome.output
        assert project.head("dev-model") == before
        endpoints["master-build"] = f"127.0.0.1:{tracking_port}"

        for args in [
            ("register-model", "--model-name", "housing", "--run-id", "0" * 32, "--alias", "staging"),
            ("promote", "--model-name", "housing"),
            ("rollback", "--model-name", "housing"),
        ]:
            outcome = job.run(args[0], *args, "--tracking-uri", tracking, cwd=tmp_path)
            assert outcome.code == 3, (args, outcome.output)
            endpoints[args[0]] = f"127.0.0.1:{tracking_port}"

    # the git remote down: a shallow PR checkout must fetch its baseline through the credentialed URL
    shallow = project.checkout("pr-better", name="ci-git-down", shallow=True)
    sh(
        ["git", "remote", "set-url", "origin", f"http://{GIT_USER}:{GIT_PASSWORD}@127.0.0.1:{git_port}/origin.git"],
        shallow,
    )
    outcome = job.run("pr-validate-git-down", "pr-validate", "--no-track", cwd=shallow, extra_env=pr_env)
    assert outcome.code == 3, outcome.output
    endpoints["pr-validate-git-down"] = f"127.0.0.1:{git_port}"

    for step, endpoint in endpoints.items():
        assert endpoint in job.outcomes[step].output, (step, job.outcomes[step].output)  # the endpoint is named
    assert leaks_in({**job.channels, **origin_channels(project)}) == {}
