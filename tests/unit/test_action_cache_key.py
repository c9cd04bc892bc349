"""The cache key of the actions' private venv (actions/setup/key.py): a venv restored under a key
runs on the runner that computed it, and two runners that can share a venv share its key."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import replace
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("action_cache_key", ROOT / "actions" / "setup" / "key.py")
assert _spec
assert _spec.loader
key = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = key  # dataclasses resolve their module by name
_spec.loader.exec_module(key)

RUNNER = key.Interpreter(
    system="Linux",
    machine="x86_64",
    libc="glibc-2.39",
    implementation="cpython",
    version=(3, 11, 9),
    executable="/opt/hostedtoolcache/Python/3.11.9/x64/bin/python3.11",
)
LOCK = b"click==8.5.1 \\\n    --hash=sha256:8bb5\n"
S3 = ("s3",)


def test_same_inputs_give_the_same_key():
    assert key.cache_key(RUNNER, LOCK, S3) == key.cache_key(replace(RUNNER), bytes(LOCK), ("s3",))


def test_the_key_names_os_arch_and_python_readably():
    assert key.cache_key(RUNNER, LOCK, S3).startswith("mlops-actions-venv-Linux-x86_64-cpython3.11-")
    mac = replace(RUNNER, system="Darwin", machine="arm64", libc="macos-14", implementation="pypy", version=(3, 10, 14))
    assert key.cache_key(mac, LOCK, S3).startswith("mlops-actions-venv-Darwin-arm64-pypy3.10-")


@pytest.mark.parametrize(
    "change",
    [
        {"system": "Darwin"},
        {"machine": "aarch64"},
        {"libc": "glibc-2.35"},  # ubuntu-22.04 against 24.04: same OS and arch, other wheels
        {"implementation": "pypy"},
        {"version": (3, 12, 4)},
        # a setup-python patch upgrade moves the interpreter: the old venv would be dead
        {"version": (3, 11, 10)},
        {"executable": "/opt/hostedtoolcache/Python/3.11.10/x64/bin/python3.11"},
    ],
    ids=lambda change: next(iter(change)) + "=" + str(next(iter(change.values()))),
)
def test_a_change_of_the_interpreter_or_machine_changes_the_key(change):
    assert key.cache_key(replace(RUNNER, **change), LOCK, S3) != key.cache_key(RUNNER, LOCK, S3)


def test_a_change_of_the_lock_changes_the_key():
    assert key.cache_key(RUNNER, LOCK + b"pyyaml==6.0.3\n", S3) != key.cache_key(RUNNER, LOCK, S3)


def test_a_change_of_the_remote_extras_changes_the_key():
    assert key.cache_key(RUNNER, LOCK, ("gs", "s3")) != key.cache_key(RUNNER, LOCK, S3)


def test_the_same_remotes_however_written_give_the_same_key():
    spellings = ["gs,s3", "s3, gs", "GS S3", "gs", "  gs ,, s3\n"]
    keys = {key.cache_key(RUNNER, LOCK, key.parse_remotes(text)) for text in spellings}
    assert len(keys) == 1


def test_s3_is_always_installed():
    assert key.parse_remotes("") == ("s3",)
    assert key.parse_remotes("azure ssh") == ("azure", "s3", "ssh")


def test_an_unknown_remote_is_refused_with_the_names_to_use():
    with pytest.raises(key.InputError) as raised:
        key.parse_remotes("s3, ftp, gcs")
    message = str(raised.value)
    assert "unknown dvc-remotes value(s) 'ftp', 'gcs'" in message
    assert "azure, gdrive, gs, hdfs, oss, s3, ssh, webdav, webhdfs" in message


def test_the_venv_lives_under_the_tool_cache_in_a_folder_of_its_key():
    outputs = key.step_outputs({"RUNNER_TOOL_CACHE": "/opt/hostedtoolcache", "MLOPS_DVC_REMOTES": "gs"}, RUNNER, LOCK)
    digest = outputs["key"].rsplit("-", 1)[1]
    assert outputs["venv"] == f"/opt/hostedtoolcache/mlops-actions/venv-{digest}"
    assert outputs["python"] == RUNNER.executable
    assert outputs["extras"] == "gs,s3"
    assert key.step_outputs({"MLOPS_ACTIONS_HOME": "/srv/ci"}, RUNNER, LOCK)["venv"].startswith("/srv/ci/venv-")


def test_every_remote_is_an_extra_of_pyproject_wrapping_the_dvc_extra_of_its_name():
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for remote in key.REMOTES:
        assert remote in extras, f"pyproject.toml has no extra {remote!r} for dvc-remotes"
        assert any(req.replace(" ", "").startswith(f"dvc[{remote}]") for req in extras[remote]), extras[remote]
