"""A pinned commit, checked out fresh per task: real git over a smart-HTTP server with a token
(tests/support/git_http_server.py), over a plain bare repo path, and over a real sshd, on 127.0.0.1.

What a user of a worker with no shared disk notices: the checkout is at the pinned commit, it is
gone when the task ends, a push from inside it reaches the server with the same credentials, the
DVC cache can be the worker's, and every bad input is one line, never retried, with no secret."""

from __future__ import annotations

import logging
import os
import socket
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from ci_helpers.adapters.git import git
from ci_helpers.adapters.git_checkout import (
    SECRET_ENV_NAMES,
    GitCredentials,
    RepoSource,
    fresh_checkout,
    git_credentials_in_env,
    pin_commit,
)
from ci_helpers.errors import ConfigError, InfrastructureError
from tests.support.git_http_server import git_http_server
from tests.support.project import sh
from tests.support.servers import refused_port

DVC_YAML = "stages:\n  hello:\n    cmd: echo hello > out.txt\n    outs:\n      - out.txt\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with git_http_server(tmp_path_factory.mktemp("git-http") / "repos") as running:
        yield running


_counter = iter(range(10_000))


@pytest.fixture
def repo(server, tmp_path):
    """A repo on the server: a DVC project in sub/, a docs/ folder without one, branches main and dev."""
    name = f"project{next(_counter)}"
    bare = server.bare_repo(name)
    work = tmp_path / "dev-clone"
    work.mkdir()
    sh(["git", "init", "-q", "-b", "main"], work)
    (work / "docs").mkdir()
    (work / "docs" / "README.md").write_text("docs\n")
    (work / "sub").mkdir()
    sh(["dvc", "init", "-q", "--subdir"], work / "sub")
    (work / "sub" / "dvc.yaml").write_text(DVC_YAML)
    sh(["git", "add", "-A"], work)
    sh(["git", "commit", "-qm", "project"], work)
    sh(["git", "branch", "dev"], work)
    sh(["git", "push", "-q", str(bare), "main", "dev"], work)
    return SimpleNamespace(
        name=name,
        bare=bare,
        work=work,
        url=server.repo_url(name),
        credentials=GitCredentials(username=server.username, password=server.token),
        head=sh(["git", "rev-parse", "HEAD"], work).stdout.strip(),
    )


@pytest.fixture
def work_root(tmp_path):
    root = tmp_path / "worker-tmp"
    root.mkdir()
    return root


def _commit_and_push(work: Path, bare: Path, message: str, force: bool = False) -> str:
    (work / "sub" / "params.txt").write_text(f"{message}\n")
    sh(["git", "add", "-A"], work)
    sh(["git", "commit", "-qm", message], work)
    sh(["git", "push", "-q", *(["-f"] if force else []), str(bare), "main"], work)
    return sh(["git", "rev-parse", "HEAD"], work).stdout.strip()


def _git_out(cwd: Path, *args: str) -> str:
    return sh(["git", *args], cwd).stdout.strip()


def test_pin_and_checkout_over_http_with_a_token(server, repo, work_root):
    source = RepoSource(repo.url, "main", "sub")
    before = dict(os.environ)

    commit = pin_commit(source, repo.credentials)

    assert commit == repo.head
    with fresh_checkout(source, commit, repo.credentials, work_root=work_root) as project:
        checkout = project.parent
        assert project.name == "sub"
        assert (project / "dvc.yaml").is_file()
        assert _git_out(project, "rev-parse", "HEAD") == commit
        assert _git_out(project, "rev-parse", "--abbrev-ref", "HEAD") == "main"
        assert _git_out(project, "rev-parse", "--abbrev-ref", "main@{upstream}") == "origin/main"
        assert _git_out(project, "remote", "get-url", "origin") == repo.url
        assert server.token not in (checkout / ".git" / "config").read_text()
        assert "dev" not in _git_out(project, "branch", "-a")  # only the branch was fetched
        assert _git_out(project, "tag") == ""
    assert not checkout.exists()
    assert list(work_root.iterdir()) == []
    assert dict(os.environ) == before  # the credentials' environment is gone with the block


def test_the_token_is_never_in_a_command_line(server, repo, work_root):
    """While git talks to the server, no process's argv (what `ps` shows) holds the token."""
    seen: list[str] = []

    def look_at_processes() -> None:
        for entry in Path("/proc").iterdir():
            try:
                argv = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
            except OSError:
                continue
            if "git" in argv:
                seen.append(argv)

    server.on_request = look_at_processes
    try:
        source = RepoSource(repo.url, "main", "sub")
        with fresh_checkout(source, pin_commit(source, repo.credentials), repo.credentials, work_root=work_root):
            pass
    finally:
        server.on_request = None
    assert any("git-remote-http" in argv or "git clone" in argv for argv in seen), seen  # it looked while git ran
    assert not [argv for argv in seen if server.token in argv]


def test_a_push_from_inside_the_checkout_reaches_the_server(server, repo, work_root):
    source = RepoSource(repo.url, "main", "sub")
    with fresh_checkout(source, pin_commit(source, repo.credentials), repo.credentials, work_root=work_root) as project:
        (project / "dvc.lock").write_text("schema: '2.0'\nstages: {}\n")
        sh(["git", "add", "dvc.lock"], project)
        sh(["git", "commit", "-qm", "dvc.lock [skip ci]"], project)
        new = _git_out(project, "rev-parse", "HEAD")
        # the checkout's own processes (the project's stages) hold no credential
        leaked = {name for name in ("GIT_ASKPASS", "GIT_SSH_COMMAND", *SECRET_ENV_NAMES) if name in os.environ}
        assert leaked == set()
        assert server.token not in "\n".join(os.environ.values())
        # the lock commit-back's push: the same adapter, in a credentials block of its own
        with git_credentials_in_env(repo.credentials):
            git(project, "fetch", "origin", "main", retry=True)
            git(project, "push", "origin", "HEAD:refs/heads/main", retry=True)
        assert server.token not in (project.parent / ".git" / "config").read_text()
    assert _git_out(repo.bare, "rev-parse", "main") == new
    pushes = [request for request in server.requests if "git-receive-pack" in request.path and request.status == 200]
    assert pushes


def test_a_local_bare_repo_path_needs_no_credentials(repo, work_root):
    source = RepoSource(str(repo.bare), "main", "sub")

    commit = pin_commit(source)

    assert commit == repo.head
    with fresh_checkout(source, commit, work_root=work_root) as project:
        assert _git_out(project, "rev-parse", "HEAD") == commit
        assert _git_out(project, "remote", "get-url", "origin") == str(repo.bare)
    assert list(work_root.iterdir()) == []


@pytest.mark.parametrize("error", [RuntimeError("the task failed"), KeyboardInterrupt(), SystemExit(1)])
def test_the_checkout_is_removed_when_the_block_fails(repo, work_root, error):
    source = RepoSource(repo.url, "main", "sub")
    seen: list[Path] = []

    def task() -> None:
        with fresh_checkout(source, repo.head, repo.credentials, work_root=work_root) as project:
            seen.append(project)
            (project / "data.txt").write_text("x")
            sh(["dvc", "add", "-q", "data.txt"], project)  # read-only cache files to remove too
            raise error

    with pytest.raises(type(error)):
        task()
    assert seen
    assert not seen[0].exists()
    assert list(work_root.iterdir()) == []


def test_a_branch_moved_after_the_pin_does_not_move_the_checkout(repo, work_root):
    source = RepoSource(repo.url, "main", "sub")
    pinned = pin_commit(source, repo.credentials)
    moved = _commit_and_push(repo.work, repo.bare, "pushed mid-run")

    with fresh_checkout(source, pinned, repo.credentials, work_root=work_root) as project:
        assert _git_out(project, "rev-parse", "HEAD") == pinned
        assert _git_out(project, "rev-parse", "main") == pinned
        # the branch's history is there, for a commit-back that rebases onto the moved tip
        assert _git_out(project, "rev-parse", "origin/main") == moved
        sh(["git", "merge-base", "--is-ancestor", pinned, "origin/main"], project)


def test_a_force_pushed_away_commit_is_still_checked_out_when_the_server_serves_it(repo, work_root):
    source = RepoSource(repo.url, "main", "sub")
    pinned = pin_commit(source, repo.credentials)
    sh(["git", "reset", "-q", "--hard", "HEAD"], repo.work)
    sh(["git", "commit", "-q", "--amend", "-m", "rewritten"], repo.work)
    sh(["git", "push", "-q", "-f", str(repo.bare), "main"], repo.work)
    assert pin_commit(source, repo.credentials) != pinned

    with fresh_checkout(source, pinned, repo.credentials, work_root=work_root) as project:
        assert _git_out(project, "rev-parse", "HEAD") == pinned
        assert _git_out(project, "rev-parse", "--abbrev-ref", "HEAD") == "main"


def test_a_commit_the_server_does_not_have_is_one_line(repo, work_root, caplog):
    source = RepoSource(repo.url, "main", "sub")
    gone = "0123456789abcdef0123456789abcdef01234567"
    with pytest.raises(ConfigError) as raised, fresh_checkout(source, gone, repo.credentials, work_root=work_root):
        pytest.fail("no checkout of a commit that does not exist")
    _assert_one_line(raised.value, "commit 0123456789ab is no longer on branch 'main'", "re-run the DAG")
    assert list(work_root.iterdir()) == []


def test_two_checkouts_share_the_workers_dvc_cache(repo, work_root, tmp_path):
    source = RepoSource(repo.url, "main", "sub")
    cache = tmp_path / "worker-dvc-cache"  # created by the first checkout
    with fresh_checkout(source, repo.head, repo.credentials, cache_dir=cache, work_root=work_root) as project:
        (project / "data.txt").write_text("shared bytes\n")
        sh(["dvc", "add", "-q", "data.txt"], project)
        sh(["git", "add", "data.txt.dvc", ".gitignore"], project)
        sh(["git", "commit", "-qm", "data"], project)
        with git_credentials_in_env(repo.credentials):
            sh(["git", "push", "-q", "origin", "HEAD:refs/heads/main"], project)
        assert not (project / ".dvc" / "cache").exists()
        assert "cache" not in _git_out(project, "status", "--porcelain")  # config.local is git-ignored
    objects = [path for path in (cache / "files" / "md5").rglob("*") if path.is_file()]
    assert len(objects) == 1
    assert objects[0].read_text() == "shared bytes\n"

    second = pin_commit(source, repo.credentials)
    with fresh_checkout(source, second, repo.credentials, cache_dir=cache, work_root=work_root) as project:
        assert not (project / "data.txt").exists()
        sh(["dvc", "checkout", "-q", "data.txt.dvc"], project)  # no remote: only the worker's cache has it
        assert (project / "data.txt").read_text() == "shared bytes\n"
    assert list(work_root.iterdir()) == []


def test_without_cache_dir_the_cache_dies_with_the_checkout(repo, work_root):
    source = RepoSource(repo.url, "main", "sub")
    with fresh_checkout(source, repo.head, repo.credentials, work_root=work_root) as project:
        (project / "data.txt").write_text("scratch\n")
        sh(["dvc", "add", "-q", "data.txt"], project)
        assert any((project / ".dvc" / "cache").rglob("*"))
    assert list(work_root.iterdir()) == []


# Bad input: ConfigError, one line naming the problem and the fix, no secret anywhere, fast.


def _assert_one_line(error: Exception, *fragments: str, secrets: tuple[str, ...] = ()) -> None:
    message = str(error)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, message
    for secret in secrets:
        assert secret not in message


def _assert_nowhere(secret: str, caplog, capfd) -> None:
    out, err = capfd.readouterr()
    assert secret not in caplog.text
    assert secret not in out + err


@pytest.fixture
def slow_retries(monkeypatch):
    """A retry, were there one, would wait 5 s first: a fast failure shows there is none."""
    monkeypatch.setenv("CI_HELPERS_RETRY_WAIT", "5")


def test_an_unreachable_repo_url_fails_fast_and_is_not_retried(slow_retries, repo, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    source = RepoSource(f"http://127.0.0.1:{refused_port()}/org/{repo.name}.git")
    started = time.monotonic()
    with pytest.raises(ConfigError) as raised:
        pin_commit(source, repo.credentials)
    elapsed = time.monotonic() - started
    assert elapsed < 3, f"took {elapsed:.1f} s"
    _assert_one_line(raised.value, "cannot reach git repository http://127.0.0.1:", "fix repo_url=")
    _assert_nowhere(repo.credentials.password, caplog, capfd)


def test_a_missing_branch_names_the_branches_there(server, repo, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ConfigError) as raised:
        pin_commit(RepoSource(repo.url, "mian", "sub"), repo.credentials)
    _assert_one_line(raised.value, f"branch 'mian' does not exist on {repo.url} (it has: main, dev); fix branch=")
    _assert_nowhere(server.token, caplog, capfd)


def test_a_branch_deleted_mid_run_is_one_line_at_checkout(repo, work_root):
    source = RepoSource(repo.url, "dev", "sub")
    pinned = pin_commit(source, repo.credentials)
    sh(["git", "push", "-q", str(repo.bare), "--delete", "dev"], repo.work)
    with pytest.raises(ConfigError) as raised, fresh_checkout(source, pinned, repo.credentials, work_root=work_root):
        pytest.fail("no branch to check out")
    _assert_one_line(raised.value, f"branch 'dev' does not exist on {repo.url} (it has: main); fix branch=")
    assert list(work_root.iterdir()) == []


def test_a_missing_repository_is_one_line(server, repo):
    with pytest.raises(ConfigError) as raised:
        pin_commit(RepoSource(server.repo_url("no-such-repo")), repo.credentials)
    _assert_one_line(raised.value, f"no git repository at {server.repo_url('no-such-repo')}", "fix repo_url=")


@pytest.mark.parametrize(
    ("subdir", "what"), [("docs", "subdir 'docs' of"), ("nope", "subdir 'nope' of"), ("", "the repository root of")]
)
def test_a_subdir_without_dvc_yaml_is_one_line(server, repo, work_root, caplog, capfd, subdir, what):
    caplog.set_level(logging.DEBUG)
    source = RepoSource(repo.url, "main", subdir)
    commit = pin_commit(source, repo.credentials)
    with pytest.raises(ConfigError) as raised, fresh_checkout(source, commit, repo.credentials, work_root=work_root):
        pytest.fail("no project to yield")
    _assert_one_line(raised.value, what, "(folders with one: 'sub')", "fix subdir=")
    assert list(work_root.iterdir()) == []
    _assert_nowhere(server.token, caplog, capfd)


def test_rejected_credentials_are_one_line_never_retried_and_never_printed(
    slow_retries, server, repo, work_root, caplog, capfd
):
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-token-" + "7" * 20
    source = RepoSource(repo.url, "main", "sub")
    for attempt in (
        lambda: pin_commit(source, GitCredentials(username=server.username, password=wrong)),
        lambda: fresh_checkout(
            source, repo.head, GitCredentials(username=server.username, password=wrong), work_root=work_root
        ).__enter__(),
    ):
        sent_before = len([request for request in server.requests if request.authorization])
        started = time.monotonic()
        with pytest.raises(ConfigError) as raised:
            attempt()
        assert time.monotonic() - started < 3  # no prompt waited for, no retry
        _assert_one_line(
            raised.value, f"git repository {repo.url} rejected the credentials", "git_conn_id=", secrets=(wrong,)
        )
        # git asked its askpass once: one request with the wrong token, not a loop of prompts
        tried = [request for request in server.requests if request.authorization][sent_before:]
        assert len(tried) == 1
        assert all(request.status == 401 for request in tried)
    assert list(work_root.iterdir()) == []
    _assert_nowhere(wrong, caplog, capfd)


def test_no_credentials_for_a_private_repo_is_one_line(repo):
    with pytest.raises(ConfigError) as raised:
        pin_commit(RepoSource(repo.url))
    _assert_one_line(raised.value, "rejected the credentials (no credentials", "pass git_conn_id=")


def test_a_password_in_the_url_is_refused_without_echoing_it():
    secret = "s3cr/t@pass"
    with pytest.raises(ConfigError) as raised:
        RepoSource(f"https://bot:{secret}@git.example.invalid/org/repo.git")
    _assert_one_line(raised.value, "holds a password", "git_conn_id=", secrets=(secret, "s3cr", "pass@"))
    assert "git.example.invalid/org/repo.git" in str(raised.value)


def test_credentials_never_show_their_secrets():
    credentials = GitCredentials(username="bot", password="tok-abcdef", private_key="-----BEGIN KEY-----x")
    for shown in (repr(credentials), str(credentials), f"{credentials}"):
        assert "tok-abcdef" not in shown
        assert "BEGIN" not in shown
        assert "bot" in shown
    assert GitCredentials().empty
    assert not credentials.empty
    assert RepoSource("ssh://bot@host/org/r.git", "dev", "a/b").describe() == "ssh://***@host/org/r.git@dev:a/b"
    with pytest.raises(ConfigError) as raised:  # a bare token as the user name: refused, and never shown
        RepoSource("https://tok-abcdef@host/org/r.git", "dev", "a/b")
    assert "tok-abcdef" not in str(raised.value)
    assert "git_conn_id" in str(raised.value)


def test_a_hanging_remote_is_bounded_by_the_timeout(repo):
    """A server that accepts the connection and never answers: git is stopped at the bound."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)  # the kernel completes the handshakes; nobody ever reads or answers
        source = RepoSource(f"http://127.0.0.1:{listener.getsockname()[1]}/org/repo.git")
        started = time.monotonic()
        with pytest.raises(InfrastructureError) as raised:
            pin_commit(source, repo.credentials, timeout=2)
        elapsed = time.monotonic() - started
    assert elapsed < 10, f"took {elapsed:.1f} s"
    _assert_one_line(raised.value, "did not finish within 2 s", "CI_HELPERS_GIT_TIMEOUT")


def test_the_environment_is_restored_after_a_failure_inside_the_block(repo):
    before = dict(os.environ)
    seen: list[Path] = []

    def task() -> None:
        with git_credentials_in_env(repo.credentials):
            assert os.environ["GIT_TERMINAL_PROMPT"] == "0"
            seen.append(Path(os.environ["GIT_ASKPASS"]))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        task()
    askpass = seen[0]
    assert dict(os.environ) == before
    assert not askpass.parent.exists()


def test_the_secret_files_are_private_and_the_script_holds_no_secret(repo):
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----"
    credentials = GitCredentials(username="bot", password=repo.credentials.password, private_key=key)
    with git_credentials_in_env(credentials):
        askpass = Path(os.environ["GIT_ASKPASS"])
        ssh_command = os.environ["GIT_SSH_COMMAND"]
        key_file = Path(ssh_command.split(" -i ")[1].split()[0])
        modes = [oct(path.stat().st_mode & 0o777) for path in (askpass.parent, askpass, key_file)]
        script = askpass.read_text()
        answers = [sh([str(askpass), prompt], askpass.parent).stdout for prompt in ("Username for 'x': ", "Password: ")]
        key_text = key_file.read_text()
    assert modes == ["0o700", "0o700", "0o600"]
    assert repo.credentials.password not in script + ssh_command
    assert answers == ["bot\n", f"{repo.credentials.password}\n"]
    assert key_text == key + "\n"  # ssh refuses a key without its final newline
    assert "StrictHostKeyChecking=accept-new" in ssh_command  # no known_hosts given
    assert not askpass.parent.exists()


# SSH: a real sshd on 127.0.0.1, key auth only.


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    from tests.support.remote_servers import start_sshd

    try:
        server = start_sshd(tmp_path_factory.mktemp("sshd"))
    except RuntimeError as error:
        pytest.skip(str(error))
    yield server
    server.stop()


def test_pin_checkout_and_push_over_ssh_with_a_key(sshd, repo, work_root):
    host_key = Path(f"{sshd.host_key}.pub").read_text().split()
    known_hosts = f"[127.0.0.1]:{sshd.port} {host_key[0]} {host_key[1]}"
    credentials = GitCredentials(private_key=sshd.keyfile.read_text(), known_hosts=known_hosts)
    source = RepoSource(sshd.url(str(repo.bare)), "main", "sub")

    commit = pin_commit(source, credentials)

    assert commit == repo.head
    with fresh_checkout(source, commit, credentials, work_root=work_root) as project:
        (project / "dvc.lock").write_text("schema: '2.0'\nstages: {}\n")
        sh(["git", "add", "dvc.lock"], project)
        sh(["git", "commit", "-qm", "lock"], project)
        assert "GIT_SSH_COMMAND" not in os.environ  # the key is not the stages' to use
        with git_credentials_in_env(credentials):
            git(project, "push", "origin", "HEAD:refs/heads/main", retry=True)
        new = _git_out(project, "rev-parse", "HEAD")
    assert _git_out(repo.bare, "rev-parse", "main") == new
    assert list(work_root.iterdir()) == []


def test_a_rejected_ssh_key_and_a_wrong_host_key_are_one_line(sshd, repo, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    host_key = Path(f"{sshd.host_key}.pub").read_text().split()
    wrong_key = sshd.wrong_keyfile.read_text()
    source = RepoSource(sshd.url(str(repo.bare)))
    with pytest.raises(ConfigError) as raised:
        pin_commit(
            source,
            GitCredentials(private_key=wrong_key, known_hosts=f"[127.0.0.1]:{sshd.port} {host_key[0]} {host_key[1]}"),
        )
    _assert_one_line(raised.value, "rejected the credentials (Permission denied (publickey)", "git_conn_id=")
    other_host_key = Path(f"{sshd.keyfile}.pub").read_text().split()  # a valid key, not the host's
    with pytest.raises(ConfigError) as raised:
        pin_commit(
            source,
            GitCredentials(
                private_key=sshd.keyfile.read_text(),
                known_hosts=f"[127.0.0.1]:{sshd.port} {other_host_key[0]} {other_host_key[1]}",
            ),
        )
    _assert_one_line(raised.value, "ssh host key", "known_hosts")
    _assert_nowhere(wrong_key.strip().splitlines()[1], caplog, capfd)
