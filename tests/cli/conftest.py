"""A small real git + DVC project (local-folder remote), built once and copied per test."""

from __future__ import annotations

import pickle
import shutil
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

EVALUATE = textwrap.dedent("""
    import json, pickle
    import pandas as pd
    model = pickle.load(open("model.pkl", "rb"))
    frame = pd.read_csv("data.csv")
    accuracy = float((model.predict(frame[["x1", "x2"]]) == frame["label"]).mean())
    json.dump({"eval": {"accuracy": accuracy}}, open("metrics.json", "w"))
""")
DVC_YAML = textwrap.dedent("""
    stages:
      evaluate:
        cmd: python evaluate.py
        deps: [evaluate.py, model.pkl, data.csv]
        metrics:
          - metrics.json:
              cache: false
""")


def _sh(*args: str, cwd: Path) -> None:
    subprocess.run(args, cwd=cwd, check=True, capture_output=True)


def classification_data(rows: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 2))
    noisy = x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=0.3, size=rows)
    return pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1], "label": (noisy > 0).astype(int)})


@pytest.fixture(scope="session")
def mini_template(tmp_path_factory) -> Path:
    from sklearn.linear_model import LogisticRegression

    root = tmp_path_factory.mktemp("mini")
    repo = root / "repo"
    repo.mkdir()
    frame = classification_data()
    frame.to_csv(repo / "data.csv", index=False)
    model = LogisticRegression().fit(frame[["x1", "x2"]], frame["label"])
    (repo / "model.pkl").write_bytes(pickle.dumps(model))
    (repo / "evaluate.py").write_text(EVALUATE)
    (repo / "dvc.yaml").write_text(DVC_YAML)
    _sh("git", "init", "-q", "-b", "main", cwd=repo)
    _sh("dvc", "init", "-q", cwd=repo)
    _sh("dvc", "remote", "add", "-d", "store", str(root / "store"), cwd=repo)
    _sh("dvc", "repro", "-q", cwd=repo)
    _sh("git", "add", "-A", cwd=repo)
    _sh("git", "commit", "-qm", "mini", cwd=repo)
    return root


@pytest.fixture
def mini_repo(mini_template, tmp_path) -> Path:
    shutil.copytree(mini_template, tmp_path / "mini", symlinks=True)
    repo = tmp_path / "mini" / "repo"
    _sh("dvc", "remote", "modify", "store", "url", str(tmp_path / "mini" / "store"), cwd=repo)
    _sh("git", "commit", "-qam", "point at this copy's store", cwd=repo)
    return repo
