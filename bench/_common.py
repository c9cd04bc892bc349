"""The environment the benches run their tools in: no telemetry, the loopback servers reached without
a proxy, a fixed commit identity, and this interpreter's bin first on PATH (stage commands run
`python`). A bench runs as `python bench/<name>.py`, so this folder is on sys.path."""

from __future__ import annotations

import os
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def bench_env(**extra: str) -> dict[str, str]:
    return {
        "DVC_NO_ANALYTICS": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
        "NO_PROXY": "127.0.0.1,localhost",
        "GIT_AUTHOR_NAME": "Bench",
        "GIT_AUTHOR_EMAIL": "bench@example.invalid",
        "GIT_COMMITTER_NAME": "Bench",
        "GIT_COMMITTER_EMAIL": "bench@example.invalid",
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        **extra,
    }
