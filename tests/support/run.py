"""Run the real `ci-helpers` executable as CI would."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from . import sweep


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


# The built-in evaluator on the small classification projects the CLI and integration tests build
# (a `label` column in data.csv); each test adds its own --model.
BUILTIN_CLASSIFICATION = ("--test-data", "data.csv", "--target", "label", "--task", "classification")


def ci_helpers(*args: str, cwd: Path, env: dict | None = None, timeout: float = 300) -> Outcome:
    proc = subprocess.run(
        [shutil.which("ci-helpers") or "ci-helpers", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    outcome = Outcome(proc.returncode, proc.stdout, proc.stderr)
    sweep.record(outcome.code, outcome.output, f"ci-helpers {' '.join(args)[:200]}")
    return outcome


def tracked_pr_validate(
    cwd: Path, tracking_uri: str, experiment: str, report: Path, env: dict | None = None
) -> Outcome:
    """`ci-helpers pr-validate` logging to `experiment` on `tracking_uri`, its report written to `report`."""
    return ci_helpers(
        "pr-validate",
        "--tracking-uri",
        tracking_uri,
        "--experiment",
        experiment,
        "--report-json",
        str(report),
        cwd=cwd,
        env=env,
    )


def offline_setup_env(key: dict[str, str]) -> dict[str, str]:
    """What actions/setup/setup.sh takes from key.sh's outputs `key`, offline."""
    uv_cache = subprocess.run(["uv", "cache", "dir"], capture_output=True, text=True, check=True).stdout.strip()
    return {
        "MLOPS_VENV": key["venv"],
        "MLOPS_KEY": key["key"],
        "MLOPS_PYTHON": key["python"],
        "MLOPS_EXTRAS": key["extras"],
        "UV_CACHE_DIR": uv_cache,  # the cache scripts/setup.sh warmed: the tests are offline
        "UV_OFFLINE": "1",
    }


def github_env(tmp: Path, **extra: str) -> dict[str, str]:
    """The files and variables an Actions runner gives a step."""
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "output").write_text("")
    (tmp / "summary").write_text("")
    return {
        "GITHUB_ACTIONS": "true",
        "GITHUB_OUTPUT": str(tmp / "output"),
        "GITHUB_STEP_SUMMARY": str(tmp / "summary"),
        **extra,
    }


def read_outputs(path: Path) -> dict[str, str]:
    """Parse a $GITHUB_OUTPUT file (name=value and heredoc name<<DELIM forms)."""
    outputs, lines, i = {}, path.read_text().splitlines(), 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            i += 1
            value = []
            while lines[i] != delimiter:
                value.append(lines[i])
                i += 1
            outputs[name] = "\n".join(value)
        elif "=" in line:
            name, value = line.split("=", 1)
            outputs[name] = value
        i += 1
    return outputs


def read_report(path: Path) -> dict:
    return json.loads(path.read_text())
