"""Which globals a pickle or joblib artifact may import: an allowlist, not a denylist.

Unpickling calls whatever global the file names, so a global is resolved only when it is
- a class of scikit-learn, numpy, scipy or a PyTorch layer (estimators, transformers, arrays,
  sparse matrices, dtypes, modules of a network), outside the modules that read or write files,
  load libraries or exist for tests, and defined there too (not another module's class that
  such a module imported); or a numpy/scipy ufunc (element-wise math) of those modules, or
- one of the short list of reconstructors and plain builtins below that the pickles of those
  classes need, or an estimator or booster class of XGBoost, LightGBM or CatBoost, or
- one of the names an admin approved for this one artifact (`model.trustedTypes`).
Anything else is refused before it is called, naming the global. The validation sandbox and
serving load through this same module, so what validated is what serves.
"""

from __future__ import annotations

import _compat_pickle
import contextlib
import io
import pickle
from collections.abc import Callable, Iterable, Iterator
from typing import Any

# Packages whose classes may be constructed.
CLASS_PACKAGES = ("sklearn", "numpy", "scipy", "torch.nn.modules")

# Parts of those packages that touch files, load code or run tests: nothing from them (nor from
# any module whose name has a part with "test" in it: numpy's PytestTester runs pytest).
DENIED_PACKAGES = (
    "numpy.ctypeslib",
    "numpy.distutils",
    "numpy.f2py",
    "numpy.lib._datasource",
    "numpy.lib._npyio_impl",
    "numpy.lib.format",
    "numpy.lib.npyio",
    "numpy.testing",
    "numpy._core._internal",
    "numpy.core._internal",
    "scipy._lib._testutils",
    "scipy.io",
    "scipy.datasets",
    "scipy.misc",
    "sklearn.datasets",
    "sklearn.externals",
    "sklearn.utils._testing",
    "sklearn.utils._show_versions",
)
DENIED_CLASSES = {"numpy.memmap", "numpy._core.memmap.memmap", "numpy.core.memmap.memmap"}

# Reconstructors and builtins the pickles of allowed classes use. Each is reviewed: it builds
# a value from its arguments and neither imports, opens nor calls anything it is given.
FUNCTIONS = frozenset(
    {
        "builtins.bool",
        "builtins.bytearray",
        "builtins.bytes",
        "builtins.complex",
        "builtins.dict",
        "builtins.float",
        "builtins.frozenset",
        "builtins.int",
        "builtins.list",
        "builtins.map",
        "builtins.object",
        "builtins.range",
        "builtins.set",
        "builtins.slice",
        "builtins.str",
        "builtins.tuple",
        "_codecs.encode",
        "collections.OrderedDict",
        "collections.defaultdict",
        "copyreg._reconstructor",
        "joblib.numpy_pickle.NumpyArrayWrapper",
        "joblib.numpy_pickle_compat.NDArrayWrapper",
        "joblib.numpy_pickle_compat.ZNDArrayWrapper",
        "numpy.core.multiarray._reconstruct",
        "numpy.core.multiarray.scalar",
        "numpy.core.numeric._frombuffer",
        "numpy._core.multiarray._reconstruct",
        "numpy._core.multiarray.scalar",
        "numpy._core.numeric._frombuffer",
        "numpy.random._pickle.__bit_generator_ctor",
        "numpy.random._pickle.__generator_ctor",
        "numpy.random._pickle.__randomstate_ctor",
        "serving.estimators.PyTorchEstimator",
        # What torch.save writes for a module's tensors (its own storages are resolved by
        # torch.load itself, never through find_class).
        "torch._utils._rebuild_parameter",
        "torch._utils._rebuild_parameter_with_state",
        "torch._utils._rebuild_tensor_v2",
        "torch.Size",
        "torch.device",
        *(f"torch.{t}" for t in ("float16", "bfloat16", "float32", "float64", "int64", "int32")),
    }
)


# Boosting libraries with the scikit-learn API: their estimators and the boosters inside them,
# by exact name (not whole packages: their data classes read files named in their arguments).
# Each pickles its trees as the library's own model bytes, which its loader parses.
BOOSTING_CLASSES = frozenset(
    {
        *(
            f"xgboost.sklearn.{name}"
            for name in ("XGBClassifier", "XGBRegressor", "XGBRanker", "XGBRFClassifier")
        ),
        "xgboost.sklearn.XGBRFRegressor",
        "xgboost.core.Booster",
        *(f"lightgbm.sklearn.{name}" for name in ("LGBMClassifier", "LGBMRegressor", "LGBMRanker")),
        "lightgbm.basic.Booster",
        *(
            f"catboost.core.{name}"
            for name in ("CatBoost", "CatBoostClassifier", "CatBoostRegressor", "CatBoostRanker")
        ),
    }
)


class RefusedGlobal(Exception):
    """The artifact imports a global that is not allowed; `name` says which."""

    def __init__(self, name: str, why: str = "") -> None:
        super().__init__(f"{name}{f' ({why})' if why else ''}")
        self.name = name


def _under(module: str, packages: Iterable[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def _denied(module: str) -> bool:
    return _under(module, DENIED_PACKAGES) or any("test" in part for part in module.split("."))


def _is_ufunc(obj: object) -> bool:
    import numpy as np

    return isinstance(obj, np.ufunc)


class Screen:
    """Checks every global an unpickler resolves; records what it let through."""

    def __init__(self, approved: Iterable[str] = ()) -> None:
        self.approved = frozenset(approved)
        self.seen: set[str] = set()
        self.used_approvals: set[str] = set()

    def check(self, module: str, name: str, resolve: Callable[[str, str], Any]) -> Any:
        # Protocol 2 pickles (torch.save writes them) name Python 2 modules: `__builtin__`.
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        where = f"{module}.{name}"
        if where in self.approved:
            self.seen.add(where)
            self.used_approvals.add(where)
            return resolve(module, name)
        if where in FUNCTIONS or where in BOOSTING_CLASSES:
            self.seen.add(where)
            return resolve(module, name)
        if "." in name or not _under(module, CLASS_PACKAGES) or _denied(module):
            raise RefusedGlobal(where)
        obj = resolve(module, name)
        if (name.startswith("__pyx_unpickle_") or name == "newObj") and callable(obj):
            # Cython's generated reconstructor of a class of its module (it checks the layout
            # and restores the state), and scikit-learn's `newObj(cls)`: `cls.__new__(cls)`.
            self.seen.add(where)
            return obj
        if _is_ufunc(obj):
            # numpy's and scipy's element-wise math (np.log1p in a FunctionTransformer).
            self.seen.add(where)
            return obj
        if not isinstance(obj, type):
            raise RefusedGlobal(where, "not a class")
        actual = f"{obj.__module__}.{obj.__qualname__}"
        if (
            not _under(obj.__module__, CLASS_PACKAGES)
            or _denied(obj.__module__)
            or actual in DENIED_CLASSES
            or where in DENIED_CLASSES
        ):
            raise RefusedGlobal(where, f"that is {actual}")
        self.seen.add(where)
        return obj


@contextlib.contextmanager
def screened(screen: Screen) -> Iterator[type[pickle.Unpickler]]:
    """Every unpickling in this process checks its globals with `screen` while this lasts.

    Libraries unpickle again while an artifact loads (joblib for object arrays, torch.load for
    the module inside a PyTorchEstimator), through `pickle.load`, `pickle.loads` or a subclass
    of `pickle.Unpickler`, so the pickle module itself and joblib's unpicklers are patched.
    Loading happens once, before a serving process answers anything, or in the validation
    child that exists for this one artifact; nothing else unpickles meanwhile.
    """

    class ScreenedUnpickler(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            return screen.check(module, name, super().find_class)

    from joblib import numpy_pickle, numpy_pickle_compat

    saved = (pickle.Unpickler, pickle.load, pickle.loads)
    joblib_classes = (numpy_pickle.NumpyUnpickler, numpy_pickle_compat.ZipNumpyUnpickler)
    joblib_saved = [cls.__dict__.get("find_class") for cls in joblib_classes]
    pickle.Unpickler = ScreenedUnpickler  # type: ignore[misc]
    pickle.load = lambda file, **kw: ScreenedUnpickler(file, **kw).load()
    pickle.loads = lambda data, /, **kw: ScreenedUnpickler(io.BytesIO(data), **kw).load()
    for cls in joblib_classes:
        base = pickle._Unpickler.find_class  # joblib's unpicklers are pure-Python ones
        cls.find_class = lambda self, module, name, _b=base: screen.check(
            module, name, lambda m, n: _b(self, m, n)
        )
    try:
        yield ScreenedUnpickler
    finally:
        pickle.Unpickler, pickle.load, pickle.loads = saved  # type: ignore[misc]
        for cls, original in zip(joblib_classes, joblib_saved, strict=True):
            if original is None:
                del cls.find_class
            else:
                cls.find_class = original
