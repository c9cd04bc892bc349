"""Cancel a real `ci-helpers` run in the middle of a step, as a runner does: SIGTERM (a cancelled
job, `timeout-minutes`) or SIGINT, sent to the process once the step is under way."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from . import sweep
from .run import Outcome


def cancel_during(
    args: list[str],
    cwd: Path,
    env: dict[str, str],
    step_started: Callable[[str], bool],
    step_under_way: Callable[[], bool] = lambda: True,
    signum: int = signal.SIGTERM,
    on_step: Callable[[], None] = lambda: None,
    timeout: float = 600,
) -> Outcome:
    """Run `ci-helpers ARGS`; when a line makes `step_started` true, call `on_step`, wait until
    `step_under_way()` (e.g. a slowed request arrived), then send `signum`."""
    process = subprocess.Popen(
        [shutil.which("ci-helpers") or "ci-helpers", *args],
        cwd=cwd,
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    started = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if not started.is_set() and step_started(line):
                started.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    while not started.wait(0.05):
        if process.poll() is not None or time.monotonic() > deadline:
            reader.join(5)
            raise AssertionError(f"the step never started:\n{''.join(lines)[-4000:]}")
    on_step()
    while not step_under_way():
        if process.poll() is not None or time.monotonic() > deadline:
            reader.join(5)
            raise AssertionError(f"the step ended before the signal:\n{''.join(lines)[-4000:]}")
        time.sleep(0.05)
    process.send_signal(signum)
    code = process.wait(timeout=120)
    reader.join(10)
    sweep.record(code, "".join(lines), f"cancelled ci-helpers {' '.join(args)[:200]}")
    return Outcome(code, "".join(lines), "")


def process_alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, which only waits to be reaped, does not count)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return False
