"""The remote matrix's contract: what every DVC remote type must do for pr-validate, master-build,
the DVC cache key and the actions' set-up, whatever server is behind it.

A per-remote module (tests/remotes/test_remote_<name>.py) gives a module-scoped `kind` fixture
returning a `RemoteKind`, and subclasses `RemoteContract`:

    @pytest.fixture(scope="module")
    def kind(ssh_server) -> RemoteKind:
        return RemoteKind(name="ssh", extra="ssh", url=..., credentials=..., ...)

    class TestSshRemote(RemoteContract):
        pass

The template (the example housing project, plus a DIRECTORY out) is built and `dvc push`ed to the
remote once per module; each test gets its own clone and its own copy of the store (`copy_store`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.project import EXAMPLE, REMOTE, lock_out_md5, set_train_params, sh
from tests.support.run import ci_helpers, github_env, offline_setup_env, read_report

ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = "data/extra"  # a directory out (`dvc add`), tracked by a .dvc file
CI_IDENTITY = {"GIT_COMMITTER_NAME": "CI Bot", "GIT_COMMITTER_EMAIL": "ci@example.invalid"}


@dataclass(frozen=True)
class RemoteKind:
    """One DVC remote type, backed by a real server on 127.0.0.1.

    A "store" is a name (letters, digits, dashes) for one independent place on the server: a folder,
    a container or bucket prefix. Everything below is what a test needs and nothing more.
    """

    name: str  # test ids and bench rows: "ssh", "webdav", "azure", "gs"
    extra: str  # the actions' `dvc-remotes` name (a DVC extra); its plugin module is `dvc_<extra>`
    url: Callable[[str], str]  # store -> the remote's URL (may carry a planted secret: see below)
    credentials: Callable[[], dict[str, str]]  # `dvc remote modify --local` settings that work
    wrong_credentials: Callable[[], dict[str, str]]  # settings the server rejects (wrong key, password)
    expected_fix_words: tuple[str, ...]  # the rejection's one line names these (a setting, a variable)
    planted_secret: str  # in the URL or the settings of every configured project; printed nowhere
    stored_objects: Callable[[str], set[str]]  # store -> the md5s (with `.dir`) the server holds
    copy_store: Callable[[str, str], None]  # (from, to): a server-side copy of a whole store
    server_down: Callable[[], AbstractContextManager[None]]  # the server refuses connections inside it
    endpoint_words: tuple[str, ...]  # the "unreachable" message names these (host:port)
    env: dict[str, str] = field(default_factory=dict)  # variables every command gets (tokens...)
    # variables the set-up's raw `dvc` commands need and ci-helpers sets for itself (so its runs do not get them)
    raw_dvc_env: dict[str, str] = field(default_factory=dict)


def configure(kind: RemoteKind, project: Path, store: str, settings: dict[str, str] | None = None) -> None:
    """Point the project's remote `storage` at `store`, with `settings` (default: the working
    credentials), all in .dvc/config.local as CI writes it from secrets; the committed config is kept."""
    sh(["dvc", "remote", "modify", "--local", REMOTE, "url", kind.url(store)], project)
    for key, value in (kind.credentials() if settings is None else settings).items():
        sh(["dvc", "remote", "modify", "--local", REMOTE, key, value], project)


@dataclass(frozen=True)
class RemoteTemplate:
    """The example project built once per module: a bare origin, a dev workspace, a pushed store.

    Branches: main (pushed), pr-better (pushed), pr-unpushed (a retrained model AND a changed
    directory out, neither pushed), pr-data (a changed directory out, pushed).
    """

    kind: RemoteKind
    base: Path
    store: str

    @property
    def origin(self) -> Path:
        return self.base / "origin.git"

    @property
    def dev(self) -> Path:
        return self.base / "dev"


def new_store(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def build_template(kind: RemoteKind, base: Path) -> RemoteTemplate:
    template = RemoteTemplate(kind, base, new_store("template"))
    origin, dev = template.origin, template.dev
    env = {**kind.env, **kind.raw_dvc_env, "MLFLOW_TRACKING_URI": f"sqlite:///{base / 'train-mlflow.db'}"}
    sh(["git", "init", "-q", "--bare", "-b", "main", str(origin)], base)
    shutil.copytree(EXAMPLE, dev, ignore=shutil.ignore_patterns("mlflow.db", "mlruns", "__pycache__"))
    sh(["git", "init", "-q", "-b", "main"], dev)
    sh(["dvc", "init", "-q"], dev)
    # the committed remote: a placeholder URL of the right type, the real one in config.local
    sh(["dvc", "remote", "add", "-d", REMOTE, kind.url("placeholder")], dev)
    configure(kind, dev, template.store)
    (dev / DATA_DIR).mkdir(parents=True)
    for index in range(3):
        (dev / DATA_DIR / f"part-{index}.csv").write_text(f"id,value\n{index},{index * 7}\n")
    sh(["dvc", "add", "-q", DATA_DIR], dev, env)
    sh(["dvc", "repro", "-q"], dev, env)
    sh(["git", "add", "-A"], dev)
    sh(["git", "commit", "-qm", "housing model"], dev)
    sh(["git", "remote", "add", "origin", str(origin)], dev)
    sh(["git", "push", "-q", "-u", "origin", "main"], dev)
    sh(["dvc", "push", "-q"], dev, env)
    for branch, params, pushed in (
        ("pr-better", {"n_estimators": 90}, True),
        ("pr-unpushed", {"n_estimators": 45}, False),
    ):
        sh(["git", "checkout", "-q", "-b", branch, "main"], dev)
        set_train_params(dev, **params)
        sh(["dvc", "repro", "-q"], dev, env)
        if not pushed:
            (dev / DATA_DIR / "part-new.csv").write_text("id,value\n9,63\n")
            sh(["dvc", "add", "-q", DATA_DIR], dev, env)
        sh(["git", "add", "-A"], dev)
        sh(["git", "commit", "-qm", f"{branch}: retrain with {params}"], dev)
        sh(["git", "push", "-q", "origin", branch], dev)
        if pushed:
            sh(["dvc", "push", "-q"], dev, env)
    sh(["git", "checkout", "-q", "main"], dev)
    sh(["dvc", "checkout", "-q", "--force"], dev, env)
    return template


@dataclass(frozen=True)
class RemoteProject:
    """One test's copy of the template: its own origin and its own copy of the store."""

    kind: RemoteKind
    root: Path
    store: str

    @property
    def origin(self) -> Path:
        return self.root / "origin.git"

    @classmethod
    def copy_of(cls, template: RemoteTemplate, root: Path) -> RemoteProject:
        shutil.copytree(template.origin, root / "origin.git")
        store = new_store("t")
        template.kind.copy_store(template.store, store)
        return cls(template.kind, root, store)

    def checkout(self, branch: str, settings: dict[str, str] | None = None) -> Path:
        """A CI-style fresh clone of `branch` (empty DVC cache), its remote configured from "secrets"."""
        target = self.root / f"ci-{branch}-{uuid.uuid4().hex[:6]}"
        sh(["git", "clone", "-q", "--branch", branch, str(self.origin), str(target)], self.root)
        configure(self.kind, target, self.store, settings)
        return target

    def head(self, ref: str) -> str:
        return sh(["git", "rev-parse", ref], self.origin).stdout.strip()

    def run(self, *args: str, cwd: Path, env: dict[str, str] | None = None):
        return ci_helpers(*args, cwd=cwd, env={**self.kind.env, **(env or {})})


def _outs_md5(checkout: Path, path: str) -> str:
    return lock_out_md5((checkout / "dvc.lock").read_text(), path)


def _dir_md5(checkout: Path) -> str:
    import yaml

    return yaml.safe_load((checkout / f"{DATA_DIR}.dvc").read_text())["outs"][0]["md5"]


class RemoteContract:
    """The tests every remote type passes. A subclass in a test module, with a module-scoped
    `kind` fixture, runs them all against that remote."""

    @pytest.fixture(scope="class")
    def remote_template(self, kind, tmp_path_factory) -> RemoteTemplate:
        return build_template(kind, tmp_path_factory.mktemp(f"template-{kind.name}"))

    @pytest.fixture
    def remote_project(self, remote_template, tmp_path) -> RemoteProject:
        return RemoteProject.copy_of(remote_template, tmp_path)

    # --- pr-validate ---------------------------------------------------------------------------

    def test_an_unpushed_pr_fails_naming_the_model_and_the_directory_out(self, remote_project, tmp_path):
        checkout = remote_project.checkout("pr-unpushed")

        result = remote_project.run(
            "pr-validate", "--no-track", "--report-json", str(tmp_path / "r.json"), cwd=checkout
        )

        assert result.code == 1, result.output
        assert f"models/model.pkl is not on remote '{REMOTE}'" in result.output
        assert f"{DATA_DIR} is not on remote '{REMOTE}'" in result.output
        assert "dvc push" in result.output
        assert read_report(tmp_path / "r.json")["verdict"] == "not-pushed"

    def test_a_pushed_pr_pulls_only_what_evaluation_needs_and_passes(self, remote_project, tmp_path):
        checkout = remote_project.checkout("pr-better")

        result = remote_project.run(
            "pr-validate", "--no-track", "--report-json", str(tmp_path / "r.json"), cwd=checkout
        )

        assert result.code == 0, result.output
        assert read_report(tmp_path / "r.json")["verdict"] == "passed"
        assert (checkout / "models" / "model.pkl").is_file()
        assert (checkout / "data" / "features" / "test.csv").is_file()
        # what evaluation does not read stays on the remote
        assert not (checkout / "data" / "raw" / "housing.csv").exists()
        assert not (checkout / "data" / "features" / "train.csv").exists()
        assert not (checkout / DATA_DIR).exists()

    # --- preflight -----------------------------------------------------------------------------

    def test_a_server_that_is_down_is_exit_3_naming_the_endpoint_and_no_secret(self, remote_project):
        checkout = remote_project.checkout("pr-better")
        # an S3 endpoint in the environment (MLflow's artifacts) is not this remote's endpoint
        env = {"AWS_ENDPOINT_URL_S3": "http://s3-endpoint.invalid:9000"}

        with remote_project.kind.server_down():
            result = remote_project.run("check-remote", cwd=checkout, env=env)

        assert result.code == 3, result.output
        last = result.output.strip().splitlines()[-1]
        for word in remote_project.kind.endpoint_words:
            assert word in last, last
        assert "s3-endpoint.invalid" not in result.output
        assert remote_project.kind.planted_secret not in result.output
        assert "Traceback" not in result.output

    def test_rejected_credentials_are_exit_2_in_one_line_naming_the_fix(self, remote_project, tmp_path):
        kind = remote_project.kind
        checkout = remote_project.checkout("pr-better", settings=kind.wrong_credentials())

        result = remote_project.run(
            "pr-validate", "--no-track", "--report-json", str(tmp_path / "r.json"), cwd=checkout
        )

        assert result.code == 2, result.output
        errors = [line for line in result.output.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, result.output
        for word in kind.expected_fix_words:
            assert word in errors[0], errors[0]
        assert kind.planted_secret not in result.output
        assert "Traceback" not in result.output
        assert not (checkout / "models" / "model.pkl").exists()  # nothing was pulled

    # --- master-build --------------------------------------------------------------------------

    def test_master_build_pushes_the_ci_model_onto_the_server(self, remote_project, tmp_path):
        """A merge that changed the training params: the model CI rebuilds is on no remote yet, and
        lies on the server after the build."""
        checkout = remote_project.checkout("main")
        set_train_params(checkout, n_estimators=75)
        sh(["git", "commit", "-qam", "main: retrain with n_estimators=75"], checkout)
        sh(["git", "push", "-q", "origin", "main"], checkout)
        before = remote_project.kind.stored_objects(remote_project.store)
        gh = github_env(tmp_path / "gh", GITHUB_REF="refs/heads/main")

        result = remote_project.run(
            "master-build",
            "--model-name",
            f"housing-{uuid.uuid4().hex[:8]}",
            "--tracking-uri",
            f"sqlite:///{tmp_path / 'mlflow.db'}",
            "--report-json",
            str(tmp_path / "build.json"),
            cwd=checkout,
            env={**gh, **CI_IDENTITY},
        )

        assert result.code == 0, result.output
        pushed = sh(["git", "show", f"{remote_project.head('main')}:dvc.lock"], remote_project.origin).stdout
        model_md5 = lock_out_md5(pushed, "models/model.pkl")
        after = remote_project.kind.stored_objects(remote_project.store)
        assert model_md5 not in before  # a model no one pushed: only this build can have put it there
        assert model_md5 in after
        assert lock_out_md5(pushed, "data/features/test.csv") in after
        assert before <= after

    # --- the DVC cache key ---------------------------------------------------------------------

    def test_the_dvc_cache_key_is_stable_and_follows_the_data(self, remote_project):
        main_a, main_b = remote_project.checkout("main"), remote_project.checkout("main")
        better = remote_project.checkout("pr-better")

        def key(checkout: Path) -> dict:
            result = remote_project.run("dvc-cache-key", "--eval-stage", "evaluate", cwd=checkout)
            assert result.code == 0, result.output
            return _cache_key_lines(result.stdout)

        first, second, other = key(main_a), key(main_b), key(better)

        assert first["key"] == second["key"]
        assert first["key"] != other["key"]
        assert first["key"].startswith("mlops-dvc-")
        assert Path(first["path"]) == main_a / ".dvc" / "cache"

    # --- secrets -------------------------------------------------------------------------------

    def test_the_planted_secret_is_printed_nowhere(self, remote_project, tmp_path):
        kind = remote_project.kind
        checkout = remote_project.checkout("pr-better")
        assert kind.planted_secret in (checkout / ".dvc" / "config.local").read_text()  # it is there to leak
        gh = github_env(tmp_path / "gh", GITHUB_REF="refs/pull/5/merge", GITHUB_BASE_REF="main")
        report = tmp_path / "report.json"

        passed = remote_project.run("pr-validate", "--no-track", "--report-json", str(report), cwd=checkout, env=gh)
        down_checkout = remote_project.checkout("pr-better")
        with kind.server_down():
            down = remote_project.run(
                "pr-validate", "--no-track", cwd=down_checkout, env={"CI_HELPERS_RETRY_WAIT": "0.05"}
            )

        assert passed.code == 0, passed.output
        assert down.code == 3, down.output
        channels = {
            "stdout": passed.stdout,
            "stderr": passed.stderr,
            "summary": (tmp_path / "gh" / "summary").read_text(),
            "outputs": (tmp_path / "gh" / "output").read_text(),
            "report.json": report.read_text(),
            "down: stdout": down.stdout,
            "down: stderr": down.stderr,
        }
        assert [name for name, text in channels.items() if kind.planted_secret in text] == []

    # --- the actions' venv ---------------------------------------------------------------------

    def test_the_actions_venv_with_this_dvc_remotes_extra_has_the_remote_type(self, kind, tmp_path):
        env = {**os.environ, "MLOPS_ACTIONS_HOME": str(tmp_path / "home"), "MLOPS_DVC_REMOTES": kind.extra}
        env.pop("VIRTUAL_ENV", None)
        key_output = tmp_path / "key-output"
        key_output.write_text("")
        keyed = subprocess.run(
            ["bash", str(ROOT / "actions/setup/key.sh")],
            env={**env, "GITHUB_OUTPUT": str(key_output)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert keyed.returncode == 0, keyed.stderr
        key = dict(line.split("=", 1) for line in key_output.read_text().splitlines() if line)
        assert kind.extra in key["extras"].split(",")
        setup_output = tmp_path / "setup-output"
        setup_output.write_text("")

        built = subprocess.run(
            ["bash", str(ROOT / "actions/setup/setup.sh")],
            env={**env, **offline_setup_env(key), "GITHUB_OUTPUT": str(setup_output)},
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

        log = built.stdout + built.stderr
        if built.returncode != 0 and ("offline" in log.lower() or "not found in the cache" in log.lower()):
            pytest.fail(f"the uv cache lacks the wheels of dvc[{kind.extra}] (scripts/setup.sh warms it): {log[-800:]}")
        assert built.returncode == 0, log[-3000:]
        python = Path(key["venv"]) / "bin" / "python"
        plugin = subprocess.run(
            [str(python), "-c", f"import dvc_{kind.extra}, json; print(json.dumps('ok'))"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert plugin.returncode == 0, plugin.stderr[-2000:]
        assert json.loads(plugin.stdout) == "ok"
        version = subprocess.run(
            [str(Path(key["venv"]) / "bin" / "dvc"), "version"], capture_output=True, text=True, check=False
        )
        supports = next(line for line in version.stdout.splitlines() if "Supports" in line or line.startswith("\t"))
        assert kind.extra in version.stdout.split("Supports:", 1)[-1], (supports, version.stdout)


def _cache_key_lines(stdout: str) -> dict[str, str]:
    """`ci-helpers dvc-cache-key` prints `key=...`, `path=...` (its step outputs)."""
    found = {}
    for line in stdout.splitlines():
        name, sep, value = line.partition("=")
        if sep:
            found[name.strip()] = value.strip()
    return found
