"""Serving config: one schema for the YAML the console writes and serving reads."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel, to_snake

DEFAULT_CONFIG_PATH = "/etc/config/config.yaml"

# The formats an artifact may be saved in and the jobs a model does: serving owns these lists,
# the console imports them (deployments/constants.py).
ModelType = Literal["pkl", "joblib", "skops"]
Job = Literal["classification", "regression"]
MODEL_TYPES: tuple[str, ...] = get_args(ModelType)
JOBS: tuple[str, ...] = get_args(Job)
CLASSIFICATION, REGRESSION = JOBS

Method = Literal["GCS", "LOCAL"]
METHODS: tuple[str, ...] = get_args(Method)
# The location keys each method needs (as in the YAML).
_NEEDS: dict[str, tuple[str, ...]] = {"GCS": ("bucketName", "blobDir"), "LOCAL": ("path",)}
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


class ConfigError(Exception):
    """A config that cannot be read or is invalid; the message is one line a user can act on."""


class _Schema(BaseModel):
    # camelCase in YAML (the original tool's format), snake_case in Python; unknown keys are
    # refused so that a typo such as `inputsize` fails loudly instead of being ignored.
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        protected_namespaces=(),
    )


def _source_json_schema(schema: dict[str, Any]) -> None:
    """Say in JSON schema what ModelSource's validators check: the chart's values schema is
    generated from serving's schema (tools/gen_chart_schema.py), so helm refuses what serving
    would refuse."""
    schema["properties"]["method"]["enum"] = [*METHODS, *(m.lower() for m in METHODS)]
    schema["properties"]["sha256"]["pattern"] = _SHA256.pattern
    schema["allOf"] = [
        {
            "if": {"properties": {"method": {"enum": [method, method.lower()]}}},
            "then": {
                "required": list(keys),
                "properties": {key: {"type": "string", "minLength": 1} for key in keys},
            },
        }
        for method, keys in _NEEDS.items()
    ]


class ModelSource(_Schema):
    """Where the artifact lives and how far it is trusted."""

    model_config = ConfigDict(json_schema_extra=_source_json_schema)

    method: Method
    project_name: str | None = None
    bucket_name: str | None = None
    blob_dir: str | None = None
    path: str | None = None
    sha256: str | None = None
    trusted_types: list[str] = Field(default_factory=list)

    @field_validator("method", mode="before")
    @classmethod
    def _upper_method(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("sha256")
    @classmethod
    def _hex_digest(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().lower()
        if not _SHA256.match(value):
            raise ValueError("sha256 must be 64 hexadecimal characters")
        return value

    @model_validator(mode="after")
    def _needs_location(self) -> ModelSource:
        needed = _NEEDS[self.method]
        if not all(getattr(self, to_snake(key)) for key in needed):
            names = " and ".join(f"model.{key}" for key in needed)
            raise ValueError(f"method {self.method} needs {names}")
        return self


class BatchingConfig(_Schema):
    """Micro-batching: concurrent requests share one model call (see serving/batching.py)."""

    enabled: bool = True
    max_batch_rows: int = Field(default=256, gt=0)
    # 0 means adaptive: no waiting when the model is idle, coalescing whatever queued while it
    # was busy. A positive value waits that long for more rows before calling the model.
    max_wait_ms: float = Field(default=0.0, ge=0, le=1000)
    # Model calls that take less than this (a moving average) run on the event loop, once per
    # loop iteration for all queued rows; slower ones run in the model thread. 0: always thread.
    inline_below_ms: float = Field(default=2.0, ge=0, le=100)


class PredictionLogConfig(_Schema):
    """The prediction log (serving/predlog.py): which share of requests is written, and where."""

    # The share of prediction requests recorded: 0 logs nothing, 1 every request.
    sample: float = Field(default=0.0, ge=0, le=1)
    # file:///FOLDER or gs://BUCKET/PREFIX; required when sample > 0.
    sink: str | None = Field(default=None, pattern=r"^(file:///|gs://[a-z0-9][a-z0-9._-]*)")
    project_name: str | None = None  # the GCS project of a gs:// sink
    # Records waiting for the writer beyond this are dropped (and counted), never waited for.
    max_queue: int = Field(default=10_000, gt=0)
    batch_records: int = Field(default=1000, gt=0)
    flush_seconds: float = Field(default=1.0, gt=0, le=60)

    @model_validator(mode="after")
    def _needs_sink(self) -> PredictionLogConfig:
        if self.sample > 0 and not self.sink:
            raise ValueError("a sample above 0 needs logging.sink (file:///FOLDER or gs://BUCKET)")
        return self


# The types of a tabular model's input columns (serving/tabular.py says what each accepts).
ColumnType = Literal["number", "integer", "string", "boolean", "category"]
COLUMN_TYPES: tuple[str, ...] = get_args(ColumnType)
# Rows of the uploaded sample copied into the config: the warm-up's rows instead of zeros.
MAX_SAMPLE_ROWS = 16


class Column(_Schema):
    """One input column: its name, type, the categories an encoder knows, and whether a
    missing value (JSON null, sent to the model as NaN) is accepted."""

    name: str = Field(min_length=1, max_length=256)
    type: ColumnType = "number"
    # Category columns: the values the model's encoder accepts (it refuses others).
    categories: list[StrictBool | StrictInt | StrictFloat | StrictStr] | None = None
    nullable: bool = False

    @model_validator(mode="after")
    def _categories_of_categories(self) -> Column:
        if self.type == "category" and not self.categories:
            raise ValueError(f"column {self.name!r}: a category column needs its categories")
        return self


class ServingConfig(_Schema):
    """Everything one serving process needs: the model, its job and the limits on requests."""

    model_type: ModelType
    job: Job
    model: ModelSource
    input_size: int = Field(gt=0)
    name: str = Field(default="model", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    version: str | None = None
    # The deployment's name: when set, protocol URLs (/v1, /v2, gRPC) and metadata name the
    # model by it, and `name` (the model's name) is accepted as an alias.
    deployment_name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    # The Open Inference Protocol's gRPC service listens here (0: no gRPC); --grpc-port wins.
    grpc_port: int = Field(default=8081, ge=0, le=65535)
    max_batch_rows: int = Field(default=10_000, gt=0)
    max_body_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    batching: BatchingConfig = Field(default_factory=BatchingConfig)
    # Linear models and forests (also behind StandardScaler steps in a Pipeline) answer from a
    # fast path once it matches scikit-learn on probe rows (serving/fastpath.py); false always
    # calls the estimator.
    fast_path: bool = True
    # The prediction log; absent or sample 0: nothing is logged.
    logging: PredictionLogConfig | None = None
    # Tabular models: the input columns in the order the model was fitted on. Requests may then
    # send rows as objects keyed by column (also MLflow's DataFrame forms and one OIP tensor
    # per column); without it, only the matrix of numbers.
    input_schema: list[Column] | None = None
    # A few rows of the version's sample (objects keyed by column): serving warms up on them
    # instead of a row of zeros, which models with encoders or strict inputs may refuse.
    sample_rows: list[dict[str, Any]] | None = Field(default=None, max_length=MAX_SAMPLE_ROWS)

    @model_validator(mode="after")
    def _schema_fits(self) -> ServingConfig:
        if self.input_schema is None:
            return self
        if len(self.input_schema) != self.input_size:
            raise ValueError(
                f"inputSchema has {len(self.input_schema)} columns but inputSize is "
                f"{self.input_size}"
            )
        names = [column.name for column in self.input_schema]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"inputSchema names column(s) {', '.join(repeated)} more than once")
        return self


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


def parse_config(data: Any, source: str = "config") -> ServingConfig:
    """Validate already-parsed YAML/JSON data, raising ConfigError with one line."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of keys, got {type(data).__name__}")
    try:
        return ServingConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_describe(exc)}") from None


def load_config(path: str | Path) -> ServingConfig:
    """Read and validate a YAML config file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"config {path} is not valid YAML{where}") from None
    return parse_config(data, source=f"config {path}")


def dump_config(cfg: ServingConfig) -> str:
    """Render a config as YAML with the camelCase keys, omitting unset optional values."""
    data = cfg.model_dump(mode="json", by_alias=True, exclude_none=True)
    return yaml.safe_dump(data, sort_keys=False)
