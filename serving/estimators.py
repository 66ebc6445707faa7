"""PyTorch models as scikit-learn estimators, so they are saved with joblib and served alike.

torch is imported only inside methods: importing this module (or serving) never loads it;
unpickling a PyTorchEstimator does.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.metaestimators import available_if


def _is_classifier(estimator: PyTorchEstimator) -> bool:
    return estimator.classes is not None


class PyTorchEstimator(BaseEstimator):
    """Wrap a trained `torch.nn.Module` mapping (n, n_features) inputs to outputs.

    With `classes` it is a classifier: the module returns one logit per class, `predict_proba`
    is their softmax and `predict` the most likely class. Without, it is a regressor and
    `predict` returns the module's output (squeezed to 1-D when it has one column).
    `fit` does not train: it records `n_features_in_` and `classes_` for serving.
    """

    def __init__(
        self,
        module: Any = None,
        classes: list[Any] | None = None,
        n_features: int | None = None,
        batch_size: int = 4096,
        device: str = "cpu",
    ) -> None:
        self.module = module
        self.classes = classes
        self.n_features = n_features
        self.batch_size = batch_size
        self.device = device
        if n_features is not None:
            self.n_features_in_ = n_features
        if classes is not None:
            self.classes_ = np.asarray(classes)

    def fit(self, X: Any, y: Any = None) -> PyTorchEstimator:  # noqa: N803 - sklearn's names
        """Record the feature count (and classes from `y` when `classes` was not given)."""
        self.n_features_in_ = int(np.asarray(X).shape[1])
        if self.classes is not None:
            self.classes_ = np.asarray(self.classes)
        elif y is not None and self._looks_like_labels(y):
            self.classes = np.unique(y).tolist()
            self.classes_ = np.asarray(self.classes)
        return self

    @staticmethod
    def _looks_like_labels(y: Any) -> bool:
        return np.asarray(y).dtype.kind not in "fc"

    def _forward(self, X: Any) -> np.ndarray:  # noqa: N803
        """Run the module in batches, without gradients, on `device`."""
        import torch

        module = self.module
        module.eval()
        first = next(module.parameters(), None)
        dtype = first.dtype if first is not None else torch.float32
        X = np.asarray(X)
        outputs = []
        with torch.inference_mode():
            for start in range(0, X.shape[0], self.batch_size):
                chunk = torch.as_tensor(X[start : start + self.batch_size], dtype=dtype)
                outputs.append(module(chunk.to(self.device)).detach().to("cpu").double().numpy())
        return np.concatenate(outputs, axis=0) if outputs else np.empty((0,))

    @available_if(_is_classifier)
    def predict_proba(self, X: Any) -> np.ndarray:  # noqa: N803
        """Softmax of the module's logits, one column per class."""
        logits = self._forward(X)
        logits = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    def predict(self, X: Any) -> np.ndarray:  # noqa: N803
        """Class labels for a classifier, values for a regressor."""
        output = self._forward(X)
        if self.classes is not None:
            return np.asarray(self.classes)[np.argmax(output, axis=1)]
        return output[:, 0] if output.ndim == 2 and output.shape[1] == 1 else output

    # Pickle the module through torch.save so a model saved from a GPU loads on a CPU.
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        if state.get("module") is not None:
            import torch

            buffer = io.BytesIO()
            torch.save(state["module"], buffer)
            state["module"] = buffer.getvalue()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        module = state.get("module")
        if isinstance(module, bytes):
            import torch

            location = state.get("device", "cpu")
            if location != "cpu" and not torch.cuda.is_available():
                state["device"] = location = "cpu"
            state["module"] = torch.load(
                io.BytesIO(module), map_location=location, weights_only=False
            )
        self.__dict__.update(state)
