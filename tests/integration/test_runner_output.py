"""The runner with real processes: a stage that prints a lot is shown redacted and leaves only a
bounded tail in its failure message; stop_children stops a command with all its descendants."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ci_helpers.adapters import dvc
from ci_helpers.adapters.runner import run
from ci_helpers.errors import StageFailed

pytestmark = pytest.mark.integration

SECRET = "PLANTED-secret-5150xyz"

NOISY_STAGE = """\
import os, sys
out = sys.stdout
for i in range(250_000):
    out.write(f"line {i:07d}: epoch 3 loss=0.12345 acc=0.98765 some padding to make it a log line\\n")
    if i == 125_000:
        out.write("the key is " + os.environ["AWS_SECRET_ACCESS_KEY"] + " in the middle\\n")
out.write("the key again " + os.environ["AWS_SECRET_ACCESS_KEY"] + "\\nlast words of the stage\\n")
sys.exit(3)
"""


def test_a_stage_printing_20_mb_fails_with_only_its_tail_and_never_shows_the_secret(tmp_path, capfd, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    (tmp_path / "noisy.py").write_text(NOISY_STAGE)
    subprocess.run([dvc.dvc_executable(), "init", "--no-scm", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "dvc.yaml").write_text(f"stages:\n  noisy:\n    cmd: {sys.executable} noisy.py\n")

    with pytest.raises(StageFailed) as failed:
        dvc.repro(tmp_path, ["noisy"], [])

    message = str(failed.value)
    shown = capfd.readouterr()
    assert (failed.value.stage, failed.value.status) == ("noisy", 3)
    assert "last words of the stage" in message
    assert "line 0000000" not in message
    assert len(message) < 8_000, message[:500]
    assert len(shown.err) > 20_000_000  # all of it was shown live
    assert "line 0249999:" in shown.err
    assert "the key is *** in the middle" in shown.err
    assert SECRET not in shown.err + shown.out + message


def test_a_secret_split_across_two_writes_or_in_an_endless_line_is_never_shown(tmp_path, capfd, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    half = len(SECRET) // 2
    # a secret written in two halves with a pause (two reads), then 3 MB without a newline or a
    # blank, dense with secrets and URL credentials, then a line of its own
    script = textwrap.dedent(f"""\
        import sys, time
        out = sys.stdout
        out.write("before {SECRET[:half]}"); out.flush(); time.sleep(0.3)
        out.write("{SECRET[half:]} after\\n"); out.flush()
        out.write(("xxxxxxx{SECRET}" + "yyhttps://bob:pw-{SECRET[:6]}@host/") * 70_000)
        out.write("\\nthe end\\n")
        """)

    result = run([sys.executable, "-c", script], stream=True)

    shown = capfd.readouterr().err
    assert "before *** after\n" in shown
    assert shown.count("***") >= 2 * 70_000
    assert "\nthe end\n" in shown
    assert SECRET not in shown
    assert f"pw-{SECRET[:6]}" not in shown
    assert result.stdout.endswith("the end\n")
    assert len(result.stdout) <= 64 * 1024


CANCELLED = """\
import signal, sys
from ci_helpers.adapters.runner import run, stop_children
from ci_helpers.errors import Cancelled

stopped = []
signal.signal(signal.SIGTERM, lambda signum, frame: stopped.extend(stop_children(signum, grace_seconds=5)))
try:
    run(["sh", "-c", "sleep 60 & echo $! > pids; echo $$ >> pids; sleep 60; echo unreachable >&2"],
        stream=sys.argv[1] == "stream", retry=True)
except Cancelled as error:
    print(error.exit_code, error.signum, stopped, error, sep="|")
    sys.exit(error.exit_code)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("mode", ["stream", "capture"])
def test_sigterm_stops_the_command_and_its_children_and_run_raises_cancelled(tmp_path, mode):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")]))}
    ours = subprocess.Popen(
        [sys.executable, "-c", CANCELLED, mode],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    pids_file = tmp_path / "pids"
    deadline = time.monotonic() + 30
    while len(pids_file.read_text().split() if pids_file.exists() else []) < 2:
        assert ours.poll() is None, ours.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    grandchild, child = map(int, pids_file.read_text().split())
    assert [_alive(child), _alive(grandchild)] == [True, True]

    started = time.monotonic()
    ours.send_signal(signal.SIGTERM)
    stdout, stderr = ours.communicate(timeout=20)

    assert ours.returncode == 143, stdout + stderr
    assert time.monotonic() - started < 5
    exit_code, signum, stopped, message = stdout.strip().split("|")
    assert (exit_code, signum) == ("143", "15")
    assert "sleep 60 &" in stopped
    assert message.startswith("`sh -c ")
    assert message.endswith("was stopped by SIGTERM")
    assert "retrying" not in stderr
    assert "unreachable" not in stderr
    assert [_alive(child), _alive(grandchild)] == [False, False]
