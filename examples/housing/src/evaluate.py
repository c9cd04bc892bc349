"""Evaluate the trained model on the held-out test set into metrics.json."""

import json
import math
import pickle
from pathlib import Path

import pandas as pd
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

TARGET = "median_house_value"

with open("models/model.pkl", "rb") as handle:
    model = pickle.load(handle)
test = pd.read_csv("data/features/test.csv")
predictions = model.predict(test.drop(columns=[TARGET]))

metrics = {
    "metrics": {
        "r2_score": round(r2_score(test[TARGET], predictions), 6),
        "rmse": round(math.sqrt(mean_squared_error(test[TARGET], predictions)), 6),
        "mae": round(mean_absolute_error(test[TARGET], predictions), 6),
    }
}
Path("metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
print(json.dumps(metrics))
