"""Add derived features and split into train and held-out test sets."""

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

params = yaml.safe_load(Path("params.yaml").read_text())["data"]
frame = pd.read_csv("data/raw/housing.csv")

frame["rooms_per_bedroom"] = frame["avg_rooms"] / frame["avg_bedrooms"]
frame["log_population"] = np.log1p(frame["population"])
frame = frame.round(5)

rng = np.random.default_rng(params["seed"])
is_test = rng.random(len(frame)) < params["test_size"]

out = Path("data/features")
out.mkdir(parents=True, exist_ok=True)
frame[~is_test].to_csv(out / "train.csv", index=False)
frame[is_test].to_csv(out / "test.csv", index=False)
print(f"train rows: {(~is_test).sum()}, test rows: {is_test.sum()}")
