"""Tabular models as data scientists make them: DataFrames with string columns, encoders,
imputers, missing values. Small and deterministic, fitted in a second or less."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

CITIES = ["london", "paris", "tokyo"]
PLANS = ["basic", "pro"]


def customers(n: int = 400, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Columns age (integer), city (string), income (float), plan (string); a binary label."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n),
            "city": rng.choice(CITIES, n).astype(object),
            "income": rng.normal(50_000, 15_000, n).round(2),
            "plan": rng.choice(PLANS, n).astype(object),
        }
    )
    score = (frame["age"] - 45) / 20 + (frame["city"] == "paris") * 1.0 + (frame["plan"] == "pro")
    y = (score + rng.normal(0, 0.5, n) > 0.5).astype(int).to_numpy()
    return frame, y


def frame_pipeline() -> tuple[object, pd.DataFrame]:
    """ColumnTransformer(OneHotEncoder on the two string columns, StandardScaler on the
    numbers) then HistGradientBoostingClassifier; the encoder refuses unknown categories."""
    frame, y = customers()
    model = make_pipeline(
        ColumnTransformer(
            [
                ("categories", OneHotEncoder(), ["city", "plan"]),
                ("numbers", StandardScaler(), ["age", "income"]),
            ]
        ),
        HistGradientBoostingClassifier(max_iter=20, random_state=0),
    )
    return model.fit(frame, y), frame


def imputer_pipeline() -> tuple[object, pd.DataFrame]:
    """SimpleImputer then LogisticRegression on numeric columns with gaps in `income`."""
    frame, y = customers()
    numbers = frame[["age", "income"]].astype(float)
    numbers.loc[::7, "income"] = np.nan
    model = make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression())
    return model.fit(numbers, y), numbers


def sample_csv(frame: pd.DataFrame, rows: int = 5) -> bytes:
    """The first rows of a frame as the CSV a user uploads beside the artifact."""
    return frame.head(rows).to_csv(index=False).encode()
