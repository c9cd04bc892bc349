"""Train a gradient-boosted regressor; log params, metrics and the model to MLflow.

MLflow is configured the standard way: MLFLOW_TRACKING_URI (default sqlite:///mlflow.db)
and, when ci-helpers owns the run, MLFLOW_RUN_ID, which mlflow.start_run() resumes.
"""

import os
import pickle
from pathlib import Path

import mlflow
import pandas as pd
import sklearn
import yaml
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.metrics import r2_score

TARGET = "median_house_value"

params = yaml.safe_load(Path("params.yaml").read_text())["train"]
train = pd.read_csv("data/features/train.csv")
features, target = train.drop(columns=[TARGET]), train[TARGET]

model = GradientBoostingRegressor(
    n_estimators=params["n_estimators"],
    max_depth=params["max_depth"],
    learning_rate=params["learning_rate"],
    random_state=params["seed"],
)
model.fit(features, target)

out = Path("models/model.pkl")
out.parent.mkdir(parents=True, exist_ok=True)
with out.open("wb") as handle:
    pickle.dump(model, handle)

if not os.environ.get("MLFLOW_RUN_ID"):
    mlflow.set_experiment(os.environ.get("MLFLOW_EXPERIMENT_NAME", "housing-train"))
with mlflow.start_run():
    mlflow.log_params({f"train.{key}": value for key, value in params.items()})
    mlflow.log_metric("train_r2", r2_score(target, model.predict(features)))
    mlflow.sklearn.log_model(
        model,
        name="model",
        # explicit requirements keep log_model fast; cloudpickle because MLflow 3's
        # default (skops) refuses to load tree models
        pip_requirements=[f"scikit-learn=={sklearn.__version__}", "pandas"],
        serialization_format="cloudpickle",
        input_example=features.head(3),
    )
print(f"trained {type(model).__name__} on {len(train)} rows")
