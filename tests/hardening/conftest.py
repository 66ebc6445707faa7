"""Fixtures for the hardening tests: a registered model with two uploaded versions."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.helpers import create_model, upload
from tests.support.models import iris_classifier, save
from tests.support.stack import ConsoleStack


@dataclass
class Registered:
    model: str
    versions: list[int]


def register_iris(stack: ConsoleStack, folder: Path, name: str, versions: int = 2) -> Registered:
    """A classification model `name` with `versions` uploaded (and validated) versions."""
    client = stack.client("deployer")
    create_model(client, name, "classification", 4)
    estimator, _ = iris_classifier()
    numbers = []
    for i in range(versions):
        estimator.set_params(C=1.0 + i)
        path = save(estimator, folder / f"{name}-{i}.joblib", "joblib")
        response = upload(client, name, path, "joblib")
        assert response.status_code == 201, response.text
        numbers.append(response.json()["version"])
    return Registered(name, numbers)


@pytest.fixture(scope="session")
def iris_model(console: ConsoleStack, tmp_path_factory: pytest.TempPathFactory) -> Registered:
    return register_iris(console, tmp_path_factory.mktemp("hardening-models"), "hard-iris")
