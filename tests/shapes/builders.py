"""Tiny DVC projects of different shapes (foreach, matrix, vars, wdir, several dvc.yaml, a project in
a subfolder, a directory out, top-level metrics, DVC-cached metrics, a project modelled on DVC's
get-started example), built for real with git and dvc.

`build_shape(name, dest)` needs no S3: without `remote_url` nothing is pushed; with a folder path as
`remote_url` the remote is a local folder; with an `s3://` URL pass `endpoint` too.

Every shape has the same history:

1. main: the pipeline, its raw data `dvc add`-ed, `dvc repro`, committed;
2. branch `feature`: more rows of raw data and `train.scale: 3`, `dvc repro`; then the developer
   sets `train.scale: 4` and runs `dvc commit -f` instead of `dvc repro`. So the feature's dvc.lock
   records `scale: 4` with outputs built with `scale: 3`;
3. main: `git merge --no-ff feature`. main stays there: its tip is that merge;
4. three pull-request branches (`PR_BRANCHES`), each one commit on top of main's tip:
   - `pr-regress`: `train.scale: 1`, `dvc repro --all-pipelines`: every shape's gated metric
     (`Shape.metric`) is clearly lower than main's (built with scale 3);
   - `pr-harmless`: `train.scale: 5`, `dvc repro --all-pipelines`: the metric is higher;
   - `pr-stale`: `train.scale: 5`, then only the training stage is re-run (`dvc repro
     --single-item` of `Shape.item_stage`, else of `Shape.stage`): its lock entry is fresh, the
     evaluate stage downstream is stale (its lock records the old model's md5) and the metrics
     file is main's. (A foreach/matrix shape re-runs one item: its sibling items are stale too.)

Then main is checked out again (`dvc checkout` too), and everything is pushed at once: `dvc push
--all-commits` when there is a remote (it holds the objects of every commit, as if each had been
pushed when made), `git push` of main, feature and the PR branches when there is an origin.

A forced CI rebuild of the training stage on main therefore produces outputs (and metrics)
different from those the merged dvc.lock records, deterministically. Every metric grows with
`train.scale`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tests.support.project import REMOTE, sh, write_local_remote

DEV_IDENTITY = {
    "GIT_AUTHOR_NAME": "Shape Dev",
    "GIT_AUTHOR_EMAIL": "shape-dev@example.invalid",
    "GIT_COMMITTER_NAME": "Shape Dev",
    "GIT_COMMITTER_EMAIL": "shape-dev@example.invalid",
}
FEATURE_BRANCH = "feature"
# the pull-request branches built on top of main's tip, and the train.scale each sets
PR_BRANCHES = {"regress": "pr-regress", "harmless": "pr-harmless", "stale": "pr-stale"}
PR_SCALES = {"regress": 1, "harmless": 5, "stale": 5}
REPO_ROOT = Path(__file__).resolve().parents[2]

# --- the project files --------------------------------------------------------------------------

RAW_CSV = "x,y\n1,2\n3,4\n-1,5\n2,7\n"
FEATURE_ROWS = "5,1\n4,4\n"
PARAMS_YAML = "train:\n  scale: 2\n"

PREP_PY = '''\
"""Drop the rows with a negative x; add their product."""
import csv
import sys
from pathlib import Path

source, target = sys.argv[1], Path(sys.argv[2])
rows = [row for row in csv.DictReader(open(source)) if int(row["x"]) >= 0]
target.parent.mkdir(parents=True, exist_ok=True)
target.write_text("x,y,xy\\n" + "".join(f"{r['x']},{r['y']},{int(r['x']) * int(r['y'])}\\n" for r in rows))
'''

TRAIN_PY = '''\
"""A "model" is a JSON of numbers, deterministic in the data, the scale and the options."""
import argparse
import csv
import json
from pathlib import Path

import yaml

parser = argparse.ArgumentParser()
parser.add_argument("data")
parser.add_argument("out")
parser.add_argument("--params", default="params.yaml")
parser.add_argument("--scale", type=float)
parser.add_argument("--name", default="model")
parser.add_argument("--n", type=int, default=1)
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--dir", action="store_true", help="write the model as a directory of files")
args = parser.parse_args()

scale = args.scale if args.scale is not None else yaml.safe_load(open(args.params))["train"]["scale"]
rows = list(csv.DictReader(open(args.data)))
weight = sum(int(r["x"]) * int(r["y"]) for r in rows) * scale * args.n + args.seed
model = json.dumps({"name": args.name, "n": args.n, "seed": args.seed, "scale": scale, "weight": weight},
                   sort_keys=True) + "\\n"
out = Path(args.out)
if args.dir:
    out.mkdir(parents=True, exist_ok=True)
    (out / "model.json").write_text(model)
    (out / "rows.txt").write_text(f"{len(rows)}\\n")
    (out / "vocab").mkdir(exist_ok=True)
    (out / "vocab" / "x.txt").write_text("".join(f"{r['x']}\\n" for r in rows))
else:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(model)
'''

EVALUATE_PY = '''\
"""Score the models (JSON files, or directories holding model.json) into a metrics file."""
import json
import sys
from pathlib import Path

target, *models = sys.argv[1:]
weights = []
for path in map(Path, models):
    weights.append(json.loads((path / "model.json" if path.is_dir() else path).read_text())["weight"])
Path(target).write_text(json.dumps({"score": round(sum(weights), 6), "models": len(weights)}, sort_keys=True) + "\\n")
'''

SCRIPTS = {"src/prep.py": PREP_PY, "src/train.py": TRAIN_PY, "src/evaluate.py": EVALUATE_PY}
BASE_FILES = {**SCRIPTS, "params.yaml": PARAMS_YAML, "data/raw.csv": RAW_CSV}

PREP_STAGE = """\
  prep:
    cmd: python src/prep.py data/raw.csv data/prepared.csv
    deps: [src/prep.py, data/raw.csv]
    outs: [data/prepared.csv]
"""


def _evaluate_stage(*models: str) -> str:
    return f"""\
  evaluate:
    cmd: python src/evaluate.py metrics.json {" ".join(models)}
    deps: [src/evaluate.py, {", ".join(models)}]
    metrics:
      - metrics.json:
          cache: false
"""


FOREACH_LIST_YAML = (
    "stages:\n"
    + PREP_STAGE
    + """\
  train:
    foreach: [small, large]
    do:
      cmd: python src/train.py data/prepared.csv models/${item}.json --name ${item}
      deps:
        - src/train.py
        - data/prepared.csv
      params:
        - train.scale
      outs:
        - models/${item}.json
"""
    + _evaluate_stage("models/small.json", "models/large.json")
)

FOREACH_DICT_YAML = (
    "stages:\n"
    + PREP_STAGE
    + """\
  train:
    foreach:
      small:
        n: 1
      large:
        n: 3
    do:
      cmd: python src/train.py data/prepared.csv models/${key}.json --name ${key} --n ${item.n}
      deps:
        - src/train.py
        - data/prepared.csv
      params:
        - train.scale
      outs:
        - models/${key}.json
"""
    + _evaluate_stage("models/small.json", "models/large.json")
)

MATRIX_YAML = (
    "stages:\n"
    + PREP_STAGE
    + """\
  train:
    matrix:
      model: [a, b]
      seed: [1, 2]
    cmd: python src/train.py data/prepared.csv models/${item.model}-${item.seed}.json --name ${item.model} --seed ${item.seed}
    deps:
      - src/train.py
      - data/prepared.csv
    params:
      - train.scale
    outs:
      - models/${item.model}-${item.seed}.json
"""
    + _evaluate_stage("models/a-1.json", "models/a-2.json", "models/b-1.json", "models/b-2.json")
)

# params.yaml is always loaded as vars; config/paths.yaml and the inline dict come on top of it.
# `${train.scale}` used from params.yaml makes DVC track train.scale as a parameter of the stage.
VARS_YAML = """\
vars:
  - config/paths.yaml
  - model:
      path: models/model.json
stages:
  prep:
    cmd: python src/prep.py ${data.raw} ${data.path}
    deps:
      - src/prep.py
      - ${data.raw}
    outs:
      - ${data.path}
  train:
    cmd: python src/train.py ${data.path} ${model.path} --scale ${train.scale}
    deps:
      - src/train.py
      - ${data.path}
    outs:
      - ${model.path}
  evaluate:
    cmd: python src/evaluate.py ${metrics.path} ${model.path}
    deps:
      - src/evaluate.py
      - ${model.path}
    metrics:
      - ${metrics.path}:
          cache: false
"""
VARS_PATHS_YAML = "data:\n  raw: data/raw.csv\n  path: data/prepared.csv\nmetrics:\n  path: metrics.json\n"

WDIR_YAML = (
    "stages:\n"
    + PREP_STAGE
    + """\
  train:
    wdir: src
    cmd: python train.py ../data/prepared.csv ../models/model.json --params ../params.yaml
    deps:
      - train.py
      - ../data/prepared.csv
    params:
      - ../params.yaml:
          - train.scale
    outs:
      - ../models/model.json
"""
    + _evaluate_stage("models/model.json")
)

ROOT_OF_TWO_YAML = """\
stages:
  train:
    cmd: python src/train.py data/raw.csv models/root.json --name root
    deps: [src/train.py, data/raw.csv]
    params: [train.scale]
    outs: [models/root.json]
"""
SUB_OF_TWO_YAML = """\
stages:
  train:
    cmd: python ../src/train.py data/raw.csv models/model.json --name sub
    deps: [../src/train.py, data/raw.csv]
    params: [train.scale]
    outs: [models/model.json]
  evaluate:
    cmd: python ../src/evaluate.py metrics.json models/model.json
    deps: [../src/evaluate.py, models/model.json]
    metrics:
      - metrics.json:
          cache: false
"""

PLAIN_TRAIN_STAGE = """\
  train:
    cmd: python src/train.py data/prepared.csv models/model.json
    deps: [src/train.py, data/prepared.csv]
    params: [train.scale]
    outs: [models/model.json]
"""
PLAIN_YAML = "stages:\n" + PREP_STAGE + PLAIN_TRAIN_STAGE + _evaluate_stage("models/model.json")

DIR_OUT_YAML = (
    "stages:\n"
    + PREP_STAGE
    + """\
  train:
    cmd: python src/train.py data/prepared.csv models --dir
    deps: [src/train.py, data/prepared.csv]
    params: [train.scale]
    outs:
      - models/
"""
    + _evaluate_stage("models/")
)


_PLAIN_HEAD = "stages:\n" + PREP_STAGE + PLAIN_TRAIN_STAGE
_EVALUATE_MODEL = """\
  evaluate:
    cmd: python src/evaluate.py metrics.json models/model.json
    deps: [src/evaluate.py, models/model.json]
"""
# metrics.json is a plain `cache: false` out of evaluate, declared a metric by the top-level block
TOP_METRICS_YAML = (
    _PLAIN_HEAD
    + _EVALUATE_MODEL
    + "    outs:\n      - metrics.json:\n          cache: false\nmetrics:\n  - metrics.json\n"
)
# DVC's default: a `metrics:` out is cached, so metrics.json is gitignored and only on the remote
CACHED_METRICS_YAML = _PLAIN_HEAD + _EVALUATE_MODEL + "    metrics: [metrics.json]\n"

# --- get_started: modelled on DVC's get-started example (prepare, featurize, train, evaluate) ---------

GS_PREPARE_PY = '''\
"""Split the raw rows into data/prepared/{train,test}.csv: every second row goes to test."""
import csv
import sys
from pathlib import Path

source, target = sys.argv[1], Path(sys.argv[2])
rows = list(csv.DictReader(open(source)))
target.mkdir(parents=True, exist_ok=True)
for split, part in (("train", rows[0::2]), ("test", rows[1::2])):
    (target / f"{split}.csv").write_text("x,y\\n" + "".join(f"{r['x']},{r['y']}\\n" for r in part))
'''

GS_FEATURIZE_PY = '''\
"""Features of each split: x, y, their product, and the label (is the product positive)."""
import csv
import json
import sys
from pathlib import Path

source, target = Path(sys.argv[1]), Path(sys.argv[2])
target.mkdir(parents=True, exist_ok=True)
for split in ("train", "test"):
    rows = [(int(r["x"]), int(r["y"])) for r in csv.DictReader(open(source / f"{split}.csv"))]
    features = [{"x": x, "y": y, "xy": x * y, "label": int(x * y > 0)} for x, y in rows]
    (target / f"{split}.json").write_text(json.dumps(features, sort_keys=True) + "\\n")
'''

GS_TRAIN_PY = '''\
"""The "model" is a JSON of numbers, deterministic in the training features and train.scale."""
import json
import sys
from pathlib import Path

import yaml

features, out = Path(sys.argv[1]), Path(sys.argv[2])
scale = yaml.safe_load(open("params.yaml"))["train"]["scale"]
rows = json.loads((features / "train.json").read_text())
model = {"scale": scale, "rows": len(rows), "weight": sum(r["xy"] for r in rows) * scale}
out.parent.mkdir(parents=True, exist_ok=True)
out.write_text(json.dumps(model, sort_keys=True) + "\\n")
'''

GS_EVALUATE_PY = '''\
"""eval/: metrics.json nested like get-started's, and precision-recall and ROC curves per split.

Each metric is (a factor growing with the model's scale) x (a data factor in (0, 1))."""
import json
import sys
from pathlib import Path

model, features, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
scale = json.loads(model.read_text())["scale"]
metrics = {"avg_prec": {}, "roc_auc": {}}
for split in ("train", "test"):
    rows = json.loads((features / f"{split}.json").read_text())
    quality = (1 + sum(r["label"] for r in rows)) / (2 + len(rows))
    avg_prec = round(scale / (scale + 1) * quality, 6)
    roc_auc = round((scale + 1) / (scale + 2) * quality, 6)
    metrics["avg_prec"][split], metrics["roc_auc"][split] = avg_prec, roc_auc
    # curves whose areas are avg_prec and roc_auc: precision = 1 - recall^k, tpr = fpr^k
    points = [0, 0.25, 0.5, 0.75, 1]
    prc = [{"recall": r, "precision": round(1 - r ** (avg_prec / (1 - avg_prec)), 6)} for r in points]
    roc = [{"fpr": f, "tpr": round(f ** ((1 - roc_auc) / roc_auc), 6)} for f in points]
    for kind, curve in (("prc", prc), ("roc", roc)):
        path = out / "plots" / "sklearn" / kind / f"{split}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({kind: curve}, sort_keys=True) + "\\n")
(out / "metrics.json").write_text(json.dumps(metrics, sort_keys=True) + "\\n")
'''

GET_STARTED_YAML = """\
stages:
  prepare:
    cmd: python src/prepare.py data/raw.csv data/prepared
    deps:
      - src/prepare.py
      - data/raw.csv
    outs:
      - data/prepared
  featurize:
    cmd: python src/featurize.py data/prepared data/features
    deps:
      - src/featurize.py
      - data/prepared
    outs:
      - data/features
  train:
    cmd: python src/train.py data/features models/model.json
    deps:
      - src/train.py
      - data/features
    params:
      - train.scale
    outs:
      - models/model.json
  evaluate:
    cmd: python src/evaluate.py models/model.json data/features eval
    deps:
      - src/evaluate.py
      - models/model.json
      - data/features
    outs:
      - eval
metrics:
  - eval/metrics.json
plots:
  - Precision-Recall:
      template: simple
      x: recall
      y:
        eval/plots/sklearn/prc/train.json: precision
        eval/plots/sklearn/prc/test.json: precision
  - ROC:
      template: simple
      x: fpr
      y:
        eval/plots/sklearn/roc/train.json: tpr
        eval/plots/sklearn/roc/test.json: tpr
artifacts:
  model:
    path: models/model.json
    type: model
"""
GET_STARTED_FILES = {
    "src/prepare.py": GS_PREPARE_PY,
    "src/featurize.py": GS_FEATURIZE_PY,
    "src/train.py": GS_TRAIN_PY,
    "src/evaluate.py": GS_EVALUATE_PY,
    "params.yaml": PARAMS_YAML,
    "data/raw.csv": RAW_CSV,
    "dvc.yaml": GET_STARTED_YAML,
}


def _under(prefix: str, files: Mapping[str, str]) -> dict[str, str]:
    return {f"{prefix}/{path}": text for path, text in files.items()}


# --- the registry ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """One project shape. Paths are relative to the DVC project (`project`) unless said otherwise."""

    name: str
    files: Mapping[str, str]  # relative to the git root
    # as `dvc stage list --all --name-only` prints them in the project, .dvc files included
    stages: tuple[str, ...]
    # --stage value -> the dvc.lock entries whose outputs a forced rebuild from it changes
    rebuilt: Mapping[str, tuple[str, ...]]
    project: str = ""  # the DVC project's folder inside the git repo ("" = the git root)
    stage: str = "train"  # the --stage value that forces the training stage (or its foreach group)
    item_stage: str | None = None  # one foreach/matrix item of it, as DVC spells it
    dvcyaml: str = "dvc.yaml"  # the dvc.yaml holding the training stage
    tracked_data: tuple[str, ...] = ("data/raw.csv",)  # `dvc add`-ed: only on the remote
    feature_data: tuple[str, ...] = ("data/raw.csv",)  # rows appended on the feature branch
    feature_params: str = "params.yaml"  # train.scale changed on the feature branch
    git_tracked_outs: tuple[str, ...] = ("metrics.json",)  # `cache: false` outs the rebuild changes
    metric: str = "score"  # the metric a gate checks, as `dvc metrics show` prints its key
    metrics_file: str = "metrics.json"  # the file holding `metric`
    notes: str = ""

    @property
    def lock(self) -> str:
        """The dvc.lock of the training stage, relative to the project."""
        return str(PurePosixPath(self.dvcyaml).with_name("dvc.lock"))

    def in_git(self, path: str) -> str:
        """A project-relative path as git spells it (relative to the git root)."""
        return str(PurePosixPath(self.project, path)) if self.project else path

    @property
    def pipeline_stages(self) -> tuple[str, ...]:
        """The dvc.yaml stages (no .dvc files)."""
        return tuple(name for name in self.stages if not name.endswith(".dvc"))

    @property
    def stage_args(self) -> tuple[str, ...]:
        return (self.stage,) + ((self.item_stage,) if self.item_stage else ())


_FOREACH_STAGES = ("prep", "train@small", "train@large", "evaluate", "data/raw.csv.dvc")
_FOREACH_REBUILT = {"train": ("train@small", "train@large", "evaluate"), "train@small": ("train@small", "evaluate")}
_PLAIN_STAGES = ("prep", "train", "evaluate", "data/raw.csv.dvc")
_PLAIN_REBUILT = {"train": ("train", "evaluate")}

SHAPES: dict[str, Shape] = {
    shape.name: shape
    for shape in (
        Shape(
            "foreach_list",
            {**BASE_FILES, "dvc.yaml": FOREACH_LIST_YAML},
            _FOREACH_STAGES,
            _FOREACH_REBUILT,
            item_stage="train@small",
        ),
        Shape(
            "foreach_dict",
            {**BASE_FILES, "dvc.yaml": FOREACH_DICT_YAML},
            _FOREACH_STAGES,
            _FOREACH_REBUILT,
            item_stage="train@small",
        ),
        Shape(
            "matrix",
            {**BASE_FILES, "dvc.yaml": MATRIX_YAML},
            ("prep", "train@a-1", "train@a-2", "train@b-1", "train@b-2", "evaluate", "data/raw.csv.dvc"),
            {
                "train": ("train@a-1", "train@a-2", "train@b-1", "train@b-2", "evaluate"),
                "train@a-1": ("train@a-1", "evaluate"),
            },
            item_stage="train@a-1",
        ),
        Shape(
            "vars",
            {**BASE_FILES, "dvc.yaml": VARS_YAML, "config/paths.yaml": VARS_PATHS_YAML},
            _PLAIN_STAGES,
            _PLAIN_REBUILT,
            notes="vars: a vars file, an inline dict and params.yaml; ${...} in cmd, deps and outs",
        ),
        Shape(
            "wdir",
            {**BASE_FILES, "dvc.yaml": WDIR_YAML},
            _PLAIN_STAGES,
            _PLAIN_REBUILT,
            notes="train has wdir: src; its deps, params and outs are written relative to src/",
        ),
        Shape(
            "two_dvcyaml",
            {
                **SCRIPTS,
                "params.yaml": PARAMS_YAML,
                "data/raw.csv": RAW_CSV,
                "dvc.yaml": ROOT_OF_TWO_YAML,
                **_under("sub", {"params.yaml": PARAMS_YAML, "data/raw.csv": RAW_CSV, "dvc.yaml": SUB_OF_TWO_YAML}),
            },
            ("train", "data/raw.csv.dvc", "sub/dvc.yaml:train", "sub/dvc.yaml:evaluate", "sub/data/raw.csv.dvc"),
            {"sub/dvc.yaml:train": ("train", "evaluate")},  # entries of sub/dvc.lock
            stage="sub/dvc.yaml:train",
            dvcyaml="sub/dvc.yaml",
            tracked_data=("data/raw.csv", "sub/data/raw.csv"),
            feature_data=("sub/data/raw.csv",),
            feature_params="sub/params.yaml",
            git_tracked_outs=("sub/metrics.json",),
            metrics_file="sub/metrics.json",
            notes="the root dvc.yaml and sub/dvc.yaml both have a stage named train; only sub's changes",
        ),
        Shape(
            "subdir",
            {
                "README.md": "# An app with its ML project in ml/\n",
                "app/main.py": "print('not part of the pipeline')\n",
                **_under("ml", {**BASE_FILES, "dvc.yaml": PLAIN_YAML}),
            },
            _PLAIN_STAGES,
            _PLAIN_REBUILT,
            project="ml",
            notes="git root at the top, `dvc init --subdir` in ml/",
        ),
        Shape(
            "dir_out",
            {**BASE_FILES, "dvc.yaml": DIR_OUT_YAML},
            _PLAIN_STAGES,
            _PLAIN_REBUILT,
            notes="train's out is the directory models/ (model.json, rows.txt, vocab/x.txt)",
        ),
        Shape(
            "top_metrics",
            {**BASE_FILES, "dvc.yaml": TOP_METRICS_YAML},
            _PLAIN_STAGES,
            _PLAIN_REBUILT,
            notes="metrics.json is a plain `cache: false` out of evaluate; a top-level `metrics:` names it",
        ),
        Shape(
            "cached_metrics",
            {**BASE_FILES, "dvc.yaml": CACHED_METRICS_YAML},
            _PLAIN_STAGES,
            _PLAIN_REBUILT,
            git_tracked_outs=(),
            notes="evaluate's `metrics: [metrics.json]` is cached (DVC's default): gitignored, only on the remote",
        ),
        Shape(
            "get_started",
            GET_STARTED_FILES,
            ("prepare", "featurize", "train", "evaluate", "data/raw.csv.dvc"),
            _PLAIN_REBUILT,
            git_tracked_outs=(),
            metric="avg_prec.test",
            metrics_file="eval/metrics.json",
            notes="like DVC's get-started: directory outs data/prepared and data/features; evaluate's only "
            "out is the cached directory eval/ (metrics.json, plots); top-level metrics, plots and artifacts",
        ),
    )
}


# --- building ----------------------------------------------------------------------------------------


def tool_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of the build's git and dvc: this interpreter's bin first (stage commands run
    `python`), no analytics, the developer's git identity."""
    bindir = str(Path(sys.executable).parent)
    return {
        "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
        "DVC_NO_ANALYTICS": "1",
        **DEV_IDENTITY,
        **(extra or {}),
    }


def _set_scale(path: Path, value: int) -> None:
    text, count = re.subn(r"(?m)^(\s+scale:) .*$", rf"\g<1> {value}", path.read_text())
    assert count == 1, path
    path.write_text(text)


def build_shape(
    name: str,
    dest: Path,
    remote_url: str | os.PathLike | None = None,
    *,
    endpoint: str | None = None,
    origin: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Path:
    """Create shape `name` as a git repo in `dest` (main: pipeline, then a merged feature branch; the
    PR branches on top of main), with main checked out.

    remote_url: None -> no DVC remote, nothing pushed; a folder path -> a local-folder remote;
    an s3:// URL -> an S3 remote, its `endpoint` (if any) in .dvc/config.local.
    origin: a bare git repo to create (if absent) and push main, feature and the PR branches to.
    env: extra environment for git, dvc and the stages.
    Returns `dest`, the git root; the DVC project is `dest / SHAPES[name].project`.

    The build runs in a child Python process that calls DVC's CLI entry point in-process (one
    interpreter start instead of one per dvc command: about 4x faster here); it never changes this
    process's working directory, so it is safe to call from several threads at once.
    """
    if name not in SHAPES:
        raise KeyError(f"unknown shape {name!r} (shapes: {', '.join(SHAPES)})")
    if remote_url is not None and "://" not in str(remote_url):
        remote_url = str(Path(remote_url).resolve())
    request = {
        "name": name,
        "dest": str(Path(dest).resolve()),
        "remote_url": None if remote_url is None else str(remote_url),
        "endpoint": endpoint,
        "origin": None if origin is None else str(Path(origin).resolve()),
    }
    environment = {**os.environ, **tool_env(env)}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), environment.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-m", "tests.shapes.builders", json.dumps(request)],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"building shape {name} in {dest} failed:\n{proc.stdout}\n{proc.stderr}")
    return Path(dest)


def _dvc_here(project: Path, *args: str) -> None:
    """`dvc ARGS` in `project`, in this (child) process."""
    from dvc.cli import main

    os.chdir(project)
    code = main(list(args))
    if code != 0:
        raise RuntimeError(f"dvc {' '.join(args)} failed ({code}) in {project}")


def _build_here(name: str, dest: str, remote_url: str | None, endpoint: str | None, origin: str | None) -> None:
    shape = SHAPES[name]
    root = Path(dest)
    project = root / shape.project

    def git(*args: str) -> str:
        return sh(["git", *args], root).stdout

    def dvc(*args: str) -> None:
        _dvc_here(project, *args)

    root.mkdir(parents=True, exist_ok=True)
    for path, text in shape.files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    git("init", "-q", "-b", "main")
    dvc("init", "-q", *(["--subdir"] if shape.project else []))
    if remote_url is not None:
        dvc("remote", "add", "-d", REMOTE, remote_url)
        if endpoint:
            write_local_remote(project, remote_url, endpoint)
    dvc("add", "-q", *shape.tracked_data)
    dvc("repro", "-q", "--all-pipelines")
    git("add", "-A")
    git("commit", "-q", "-m", f"{name}: initial pipeline")

    git("checkout", "-q", "-b", FEATURE_BRANCH)
    for path in shape.feature_data:
        with (project / path).open("a") as handle:
            handle.write(FEATURE_ROWS)
    dvc("add", "-q", *shape.feature_data)
    _set_scale(project / shape.feature_params, 3)
    dvc("repro", "-q", "--all-pipelines")
    _set_scale(project / shape.feature_params, 4)  # changed after repro: the lock records stale outputs
    dvc("commit", "-q", "-f")
    git("add", "-A")
    git("commit", "-q", "-m", f"{name}: more data, train.scale 4")
    git("checkout", "-q", "main")
    git("merge", "-q", "--no-ff", FEATURE_BRANCH, "-m", f"Merge branch '{FEATURE_BRANCH}'")

    for kind, branch in PR_BRANCHES.items():
        git("checkout", "-q", "-b", branch, "main")
        dvc("checkout", "-q", "--force")  # main's outputs, not the previous branch's
        _set_scale(project / shape.feature_params, PR_SCALES[kind])
        if kind == "stale":  # the training stage only: evaluate, downstream of it, stays stale
            dvc("repro", "-q", "--single-item", shape.item_stage or shape.stage)
        else:
            dvc("repro", "-q", "--all-pipelines")
        git("add", "-A")
        git("commit", "-q", "-m", f"{name}: {branch}, train.scale {PR_SCALES[kind]}")
    git("checkout", "-q", "main")
    dvc("checkout", "-q", "--force")

    # Everything is pushed at the end, once: the remote then holds the objects of every commit, as
    # if each had been pushed when it was made, for less than half the cost of one push per commit.
    if remote_url is not None:
        dvc("push", "-q", "--all-commits")
    if origin is not None:
        if not Path(origin).exists():
            git("init", "-q", "--bare", "-b", "main", origin)
        git("remote", "add", "origin", origin)
        git("push", "-q", "-u", "origin", "main", FEATURE_BRANCH, *PR_BRANCHES.values())


def head(repo: Path, ref: str = "HEAD") -> str:
    return subprocess.run(
        ["git", "rev-parse", ref], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()


if __name__ == "__main__":  # the child process of build_shape
    _build_here(**json.loads(sys.argv[1]))
