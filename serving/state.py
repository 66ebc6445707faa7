"""What the protocol adapters of one serving process share (REST, V1, gRPC)."""

from __future__ import annotations

from serving.batching import MicroBatcher
from serving.config import PredictionLogConfig, ServingConfig
from serving.errors import ModelNotFound, ModelNotReady
from serving.metrics import Metrics
from serving.model import ServedModel
from serving.predlog import PredictionLog, open_sink


class State:
    """What the handlers share: the model, its batcher, metrics, and readiness."""

    def __init__(self, cfg: ServingConfig, model: ServedModel, metrics: Metrics) -> None:
        self.cfg = cfg
        self.model = model
        self.metrics = metrics
        self.ready = False
        # Every prediction answer says which version produced it; built once, appended as is.
        self.version_header = (b"model-version", (cfg.version or "").encode("latin-1"))
        batching = cfg.batching
        self.batcher = MicroBatcher(
            model.run,
            enabled=batching.enabled,
            max_batch_rows=batching.max_batch_rows,
            max_wait_ms=batching.max_wait_ms,
            inline_below_ms=batching.inline_below_ms,
            on_batch=metrics.observe_batch,
        )

        logging = cfg.logging or PredictionLogConfig()
        self.predictions = PredictionLog(
            open_sink(logging.sink, logging.project_name) if logging.sink else None,
            sample=logging.sample,
            version=cfg.version or "",
            on_drop=metrics.log_dropped.inc,
            on_written=metrics.log_written.inc,
            max_queue=logging.max_queue,
            batch_records=logging.batch_records,
            flush_seconds=logging.flush_seconds,
        )

    def check_model(self, name: str, version: str | None = None) -> None:
        """URLs name the model by the deployment's name, or by the model's as an alias."""
        if name != self.model.name and name != self.cfg.name:
            raise ModelNotFound(f"model {name!r} is not served here (this is {self.model.name!r})")
        if version is not None and version != (self.cfg.version or ""):
            raise ModelNotFound(f"version {version!r} of model {name!r} is not served here")

    def check_ready(self) -> None:
        if not self.ready:
            raise ModelNotReady("the model is not ready")
