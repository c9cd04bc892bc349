"""What a raised exception stands for at a command's edge (ci_helpers/failures.py): pure, no I/O
beyond measuring free space."""

from __future__ import annotations

import errno
import signal

from ci_helpers.adapters.runner import CommandError
from ci_helpers.adapters.tracking import TrackedRun
from ci_helpers.build_progress import BuildProgress, reworded
from ci_helpers.cancellation import SignalReceived
from ci_helpers.errors import Cancelled, ConfigError, InfrastructureError, RunnerResourceExhausted, StageFailed
from ci_helpers.failures import domain_error


def test_an_oserror_of_a_full_disk_names_its_path_and_free_space(tmp_path):
    error = domain_error(OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "report.json")))

    assert isinstance(error, RunnerResourceExhausted)
    assert error.exit_code == 5
    assert f"no space left on {tmp_path / 'report.json'} (" in str(error)
    assert " free)" in str(error)


def test_a_quota_and_a_full_sqlite_store_are_a_full_disk_too(tmp_path):
    quota = domain_error(OSError(errno.EDQUOT, "Disk quota exceeded"), tmp_path)
    sqlite = domain_error(InfrastructureError("MLflow: (sqlite3.OperationalError) database or disk is full"), tmp_path)

    assert isinstance(quota, RunnerResourceExhausted)
    assert isinstance(sqlite, RunnerResourceExhausted)


def test_a_command_that_ran_out_of_space_is_exit_5_not_its_own_code(tmp_path):
    pull = CommandError(["dvc", "pull"], 255, f"ERROR: [Errno 28] No space left on device: '{tmp_path}/cache/ab'")
    wrapped = InfrastructureError("`dvc pull` failed")
    wrapped.__cause__ = pull
    stage = StageFailed("stage 'train' exited with 1; its last lines:\nOSError: [Errno 28] No space left on device")

    assert domain_error(wrapped).path == f"{tmp_path}/cache/ab"
    assert domain_error(stage).exit_code == 5


def test_other_errors_keep_their_class_and_a_bug_stays_a_bug():
    config = ConfigError("bad threshold")

    assert domain_error(config) is config
    assert domain_error(KeyError("x")) is None
    assert domain_error(OSError(errno.EACCES, "Permission denied")) is None


def test_a_signal_becomes_a_cancellation_with_exit_128_plus_n():
    error = domain_error(SignalReceived(signal.SIGTERM, ("dvc repro --force train",)))

    assert isinstance(error, Cancelled)
    assert error.exit_code == 143
    assert str(error).startswith("cancelled by SIGTERM (stopped dvc repro --force train)")


def test_a_reworded_command_error_keeps_its_class_and_attributes():
    """copy.copy() called CommandError(message) and failed: the 'merged without dvc push' exit 70."""
    error = CommandError(["dvc", "pull", "data"], 1, "missing cache files")

    twin = reworded(error, "dvc pull failed. Build state: nothing was changed")

    assert type(twin) is CommandError
    assert str(twin) == "dvc pull failed. Build state: nothing was changed"
    assert twin.returncode == 1
    assert twin.command == "dvc pull data"


def test_a_cancelled_build_says_what_was_done_and_what_was_not():
    progress = BuildProgress()
    progress.plan(True, "commit", "staging", None)
    progress.run = TrackedRun("sqlite:///m.db", "1", "abc123")
    progress.run_status = "KILLED"
    progress.steps["push"] = "pushed to 'storage'"

    line = str(progress.explained(Cancelled("cancelled by SIGTERM", signal.SIGTERM)))

    assert line == (
        "cancelled by SIGTERM: done: pushed to 'storage'; not done: model not registered, dvc.lock not committed, "
        "alias 'staging' not moved: re-run the build to finish (MLflow run abc123 ended KILLED)"
    )


def test_a_signal_inside_a_deferred_block_is_raised_right_after_it():
    """`deferred`: a run created but not yet recorded is never cut in two by a signal."""
    import os

    import pytest

    from ci_helpers.cancellation import cancellable, deferred

    finished = []

    def create_and_record() -> None:
        with deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            finished.append("the whole block ran")
        finished.append("never: the signal is raised here")

    with cancellable(), pytest.raises(SignalReceived) as raised:
        create_and_record()

    assert finished == ["the whole block ran"]
    assert raised.value.signum == signal.SIGTERM
