"""Session fixtures: small real models saved to disk and real serving processes for them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression, Ridge

from tests.support.models import diabetes_regressor, iris_classifier
from tests.support.serving import ServingProcess, serve_estimator


@pytest.fixture(scope="session")
def start_serving() -> Iterator[Callable[..., ServingProcess]]:
    """Factory: start a serving process for a config; every one is stopped at the end."""
    started: list[ServingProcess] = []

    def start(config: Path, env: dict[str, str] | None = None, wait: bool = True) -> ServingProcess:
        server = ServingProcess(config, env)
        started.append(server)
        return server.wait_ready() if wait else server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("serving")


@pytest.fixture(scope="session")
def iris() -> tuple[LogisticRegression, np.ndarray]:
    return iris_classifier()


@pytest.fixture(scope="session")
def diabetes() -> tuple[Ridge, np.ndarray]:
    return diabetes_regressor()


@pytest.fixture(scope="session")
def iris_config(workdir: Path, iris: tuple[LogisticRegression, np.ndarray]) -> Path:
    return serve_estimator(
        workdir,
        "iris",
        iris[0],
        model_type="joblib",
        job="classification",
        input_size=4,
        version="3",
        max_batch_rows=1000,
        max_body_bytes=1_000_000,
    )


@pytest.fixture(scope="session")
def diabetes_config(workdir: Path, diabetes: tuple[Ridge, np.ndarray]) -> Path:
    return serve_estimator(
        workdir, "diabetes", diabetes[0], model_type="pkl", job="regression", input_size=10
    )


@pytest.fixture(scope="session")
def iris_server(start_serving: Callable[..., ServingProcess], iris_config: Path) -> ServingProcess:
    return start_serving(iris_config)


@pytest.fixture(scope="session")
def diabetes_server(
    start_serving: Callable[..., ServingProcess], diabetes_config: Path
) -> ServingProcess:
    return start_serving(diabetes_config)
