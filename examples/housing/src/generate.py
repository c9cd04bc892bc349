"""Generate a deterministic synthetic housing dataset (no download needed)."""

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

params = yaml.safe_load(Path("params.yaml").read_text())["data"]
rng = np.random.default_rng(params["seed"])
n = params["n_samples"]

median_income = rng.gamma(shape=4.0, scale=1.0, size=n)
house_age = rng.uniform(1, 52, size=n)
avg_rooms = rng.normal(5.4, 1.2, size=n).clip(1.5, 12)
avg_bedrooms = (avg_rooms * rng.uniform(0.15, 0.25, size=n)).clip(0.5, 4)
population = rng.lognormal(mean=7.0, sigma=0.6, size=n)
latitude = rng.uniform(32.5, 42.0, size=n)
longitude = rng.uniform(-124.3, -114.3, size=n)
coast_distance = np.abs(longitude + 122.0) + 0.4 * np.abs(latitude - 36.0)

price = (
    0.45 * median_income
    + 0.006 * house_age
    + 0.08 * (avg_rooms - avg_bedrooms)
    - 0.25 * np.log1p(coast_distance)
    - 0.00002 * population
    + 0.15 * np.sin(latitude)
    + rng.normal(0.0, params["noise"], size=n)
)

frame = pd.DataFrame(
    {
        "median_income": median_income,
        "house_age": house_age,
        "avg_rooms": avg_rooms,
        "avg_bedrooms": avg_bedrooms,
        "population": population,
        "latitude": latitude,
        "longitude": longitude,
        "median_house_value": price,
    }
).round(5)

out = Path("data/raw/housing.csv")
out.parent.mkdir(parents=True, exist_ok=True)
frame.to_csv(out, index=False)
print(f"wrote {len(frame)} rows to {out}")
