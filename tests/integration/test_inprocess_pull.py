"""The targeted pull runs inside ci-helpers (no `dvc pull` process), and keeps what the `dvc pull`
subprocess gave: DVC's summary on stderr, transient failures retried, rejected credentials exit 2,
a full disk exit 5, a signal ending the command at once. Real dvc, git and moto S3."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

from ci_helpers.adapters import dvc
from ci_helpers.errors import InfrastructureError
from tests.support.project import REMOTE, write_local_remote
from tests.support.proxy import FlakyProxy
from tests.support.run import ci_helpers

pytestmark = pytest.mark.integration

MODEL = "models/model.pkl"
_started: list[str] = []  # what the audit hook saw while _watching is set
_watching = threading.Event()


def _audit(event: str, args: tuple) -> None:
    if _watching.is_set() and event in ("subprocess.Popen", "os.posix_spawn", "os.exec", "os.fork"):
        _started.append(f"{event} {args[:2]!r}")


sys.addaudithook(_audit)  # a hook stays for the process: it records only while a test watches


@pytest.fixture
def quick(monkeypatch):
    monkeypatch.setenv("CI_HELPERS_RETRY_ATTEMPTS", "3")
    monkeypatch.setenv("CI_HELPERS_RETRY_WAIT", "0.1")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # botocore's own retries would hide the failure


def test_the_pull_starts_no_process_and_says_what_it_checked_out(project, capfd):
    checkout = project.checkout("pr-better")
    endpoint = dvc.remote_endpoint(checkout, REMOTE)
    _started.clear()
    _watching.set()
    try:
        dvc.pull(checkout, [MODEL], REMOTE, endpoint)
    finally:
        _watching.clear()

    assert _started == []  # no `dvc pull` (nor any other process) was started
    assert (checkout / MODEL).is_file()
    err = capfd.readouterr().err
    assert f"A\t{MODEL}" in err  # as `dvc pull` says it
    assert "1 file fetched and 1 file added" in err


def test_a_transient_failure_of_the_transfer_is_retried(project, quick, capfd):
    checkout = project.checkout("pr-better")
    with FlakyProxy(project.s3_endpoint, fail_paths=("/dvc/files/md5/",)) as proxy:
        write_local_remote(checkout, project.remote_url, endpoint=proxy.url)
        endpoint = dvc.remote_endpoint(checkout, REMOTE)

        def recover() -> None:  # the objects answer again once one request has failed
            deadline = time.monotonic() + 60
            while not proxy.failed_requests and time.monotonic() < deadline:
                time.sleep(0.01)
            proxy.fail_paths = ()

        healer = threading.Thread(target=recover, daemon=True)
        healer.start()
        dvc.pull(checkout, [MODEL], REMOTE, endpoint)
        healer.join(5)

    assert proxy.failed_requests
    assert (checkout / MODEL).is_file()
    err = capfd.readouterr().err
    assert f"retrying the pull from {endpoint} (attempt 2/3)" in err
    assert "Traceback" not in err


def test_a_transfer_that_keeps_failing_is_exit_3_naming_the_endpoint(project, quick, capfd, monkeypatch):
    monkeypatch.setenv("CI_HELPERS_RETRY_ATTEMPTS", "2")
    checkout = project.checkout("pr-better")
    with FlakyProxy(project.s3_endpoint, fail_paths=("/dvc/files/md5/",)) as proxy:
        write_local_remote(checkout, project.remote_url, endpoint=proxy.url)
        endpoint = dvc.remote_endpoint(checkout, REMOTE)
        with pytest.raises(InfrastructureError) as raised:
            dvc.pull(checkout, [MODEL], REMOTE, endpoint)

    message = str(raised.value)
    assert raised.value.exit_code == 3
    assert message.startswith(f"could not pull from {endpoint}: ")
    assert "Service Unavailable" in message  # the moto proxy's 503
    assert "\n" not in message
    assert "testing-secret-key" not in message
    err = capfd.readouterr().err
    assert "attempt 2/2" in err
    assert "Traceback" not in err
    assert not (checkout / MODEL).exists()


def test_an_object_missing_on_the_remote_is_exit_3_naming_it(project, tmp_path):
    """The remote holds none of the project's objects (an empty prefix of the same bucket)."""
    checkout = project.checkout("pr-better")
    write_local_remote(checkout, f"s3://{project.bucket}/empty", endpoint=project.s3_endpoint)

    result = ci_helpers("pull", "--eval-stage", "evaluate", cwd=checkout)

    assert result.code == 3, result.output
    line = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(line) == 1, result.output
    assert f"s3://{project.bucket}/empty" in line[0]
    assert "Checkout failed for following targets:" in line[0], line[0]  # DVC's words, as `dvc pull` said them
    assert MODEL in line[0], line[0]
    assert "Traceback" not in result.output
    assert not (checkout / MODEL).exists()


def test_a_full_disk_under_the_pull_is_exit_5_naming_it(project, full_disk):
    checkout = project.checkout("pr-better")
    (checkout / ".dvc" / "config.local").write_text(
        (checkout / ".dvc" / "config.local").read_text() + f"[cache]\n    dir = {full_disk / 'cache'}\n"
        if (checkout / ".dvc" / "config.local").exists()
        else f"[cache]\n    dir = {full_disk / 'cache'}\n"
    )

    result = ci_helpers("pull", "--eval-stage", "evaluate", cwd=checkout)

    assert result.code == 5, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    assert errors[0].startswith("error: the runner's disk is full: no space left on ")
    assert str(full_disk) in errors[0]
    assert "Traceback" not in result.output


def test_sigterm_during_the_pull_ends_the_command_at_once(project):
    """The objects' GETs are held for two minutes: SIGTERM ends `ci-helpers pull` in seconds (DVC's
    thread pool, busy with the held requests, does not hold the exit)."""
    checkout = project.checkout("pr-better")
    with FlakyProxy(project.s3_endpoint, slow=("GET", "/dvc/files/md5/", 120)) as proxy:
        write_local_remote(checkout, project.remote_url, endpoint=proxy.url)
        process = subprocess.Popen(
            [shutil.which("ci-helpers") or "ci-helpers", "pull", "--eval-stage", "evaluate"],
            cwd=checkout,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 60
        while not proxy.slowed_requests and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proxy.slowed_requests, "the pull never asked for an object"
        process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        output, _ = process.communicate(timeout=110)  # the held request would take 120 s
        took = time.monotonic() - signalled

    assert process.returncode == 128 + signal.SIGTERM, output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: cancelled by SIGTERM: done: nothing that a re-run would not redo; not done: the command's work: re-run it"
    ], output
    assert "Traceback" not in output
    assert took < 15, took
    assert not (checkout / MODEL).exists()
