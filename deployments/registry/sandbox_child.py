"""The inside of the validation sandbox: load one artifact, report what it is as JSON.

Runs as `python -m deployments.registry.sandbox_child` in a separate process (see sandbox.py), which
first limits its own memory and CPU time, then loads the artifact. It must not import Django:
the artifact may be hostile, and this process holds no secrets.

Pickle and joblib artifacts are loaded with a guard on every global they import: a function or
class that can run commands, touch files or the network (os.system, builtins.open, subprocess,
numpy.save, ...) is refused before the unpickler can call it. That is a screen, not a proof —
a denylist cannot name every dangerous callable — so the process limits, the throw-away working
directory and the empty environment stay the real boundary. skops artifacts are loaded by
serving's own loader, with the trusted types the console passed and nothing the artifact says.
"""

from __future__ import annotations

import argparse
import io
import json
import pickle
import resource
import sys
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Globals an artifact may never import, by the module of the object they resolve to. "*" is
# the whole module (and its submodules).
DENIED: dict[str, set[str] | str] = {
    **dict.fromkeys(
        [
            "os", "posix", "nt", "subprocess", "_posixsubprocess", "sys", "socket", "_socket",
            "shutil", "runpy", "pty", "pickle", "_pickle", "marshal", "importlib", "ctypes",
            "_ctypes", "multiprocessing", "signal", "threading", "_thread", "asyncio",
            "webbrowser", "http", "urllib", "ftplib", "smtplib", "requests", "httpx", "code",
            "codeop", "pdb", "bdb", "types", "inspect", "io", "_io", "pathlib", "tempfile",
            "glob", "fileinput", "linecache", "shelve", "dbm", "sqlite3", "_sqlite3",
            "zipimport", "pkgutil", "site", "platform", "logging", "zipfile", "tarfile", "gzip",
            "bz2", "lzma", "mmap", "profile", "cProfile", "timeit", "doctest", "trace", "pydoc",
            "xmlrpc", "socketserver", "ssl", "select", "selectors", "venv", "ensurepip",
            "py_compile", "compileall", "distutils", "setuptools", "pip", "tkinter", "cmd",
            "numpy.testing", "numpy.f2py", "numpy.distutils", "numpy.lib.format",
            "numpy.lib.npyio", "numpy.lib._npyio_impl", "numpy.lib._datasource", "scipy.io",
            "pandas.io", "torch.hub", "torch.serialization",
        ],
        "*",
    ),
    "builtins": {
        "eval", "exec", "compile", "open", "__import__", "getattr", "setattr", "delattr",
        "globals", "locals", "vars", "input", "breakpoint", "exit", "quit", "help",
    },
    "__builtin__": {"eval", "exec", "compile", "open", "__import__", "getattr", "setattr"},
    "operator": {"attrgetter", "methodcaller"},
    "codecs": {"open", "EncodedFile"},
    "numpy": {
        "save", "savez", "savez_compressed", "savetxt", "load", "loadtxt", "genfromtxt",
        "fromfile", "fromregex", "memmap", "DataSource",
    },
    "joblib": {"dump", "load"},
    "joblib.numpy_pickle": {"dump", "load"},
    "torch": {"load", "save"},
}  # fmt: skip


class RefusedGlobal(Exception):
    """The artifact imports a callable the sandbox never lets it run."""


class UntrustedTypes(Exception):
    def __init__(self, types: list[str]) -> None:
        super().__init__(", ".join(types))
        self.types = types


def _denied(module: str, name: str) -> bool:
    for denied_module, names in DENIED.items():
        in_module = module == denied_module or module.startswith(denied_module + ".")
        if in_module and (names == "*" or name.split(".")[0] in names):
            return True
    return False


class Guard:
    """Checks and records every global an unpickler resolves."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def check(self, module: str, name: str, resolve: Callable[[str, str], Any]) -> Any:
        where = f"{module}.{name}"
        if _denied(module, name):
            raise RefusedGlobal(where)
        obj = resolve(module, name)
        if type(obj) is type(sys):
            raise RefusedGlobal(f"{where} (a module)")
        if "." in name and not isinstance(obj, type):
            # Dotted names reach attributes of attributes (a method of a class, say); models
            # only need them for nested classes.
            raise RefusedGlobal(where)
        actual_module = getattr(obj, "__module__", None) or module
        actual_name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", name)
        if _denied(str(actual_module), str(actual_name)):
            raise RefusedGlobal(f"{where} (that is {actual_module}.{actual_name})")
        self.seen.add(where)
        return obj


def _load_guarded(path: Path, model_type: str, guard: Guard) -> object:
    """Unpickle `path` with every global checked, including unpickling nested inside it."""

    class GuardedUnpickler(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            return guard.check(module, name, super().find_class)

    # Libraries unpickle again while an artifact loads (joblib for object arrays, torch.load
    # for a PyTorch module inside an estimator), through `pickle.load`, `pickle.loads` or a
    # subclass of `pickle.Unpickler`. This process exists only to load this one artifact, so
    # the pickle module itself is guarded, as are joblib's own pure-Python unpicklers.
    pickle.Unpickler = GuardedUnpickler  # type: ignore[misc]
    pickle.load = lambda file, **kw: GuardedUnpickler(file, **kw).load()
    pickle.loads = lambda data, /, **kw: GuardedUnpickler(io.BytesIO(data), **kw).load()
    if model_type == "pkl":
        with path.open("rb") as f:
            return GuardedUnpickler(f).load()

    import joblib
    from joblib import numpy_pickle, numpy_pickle_compat

    for cls in (numpy_pickle.NumpyUnpickler, numpy_pickle_compat.ZipNumpyUnpickler):
        original = cls.find_class
        cls.find_class = lambda self, module, name, _o=original: guard.check(
            module, name, lambda m, n: _o(self, m, n)
        )
    # Arrays are mapped copy-on-write instead of read: a 1 GiB array costs no time or memory
    # until a prediction touches it, and the estimator behaves as if it owned its arrays.
    return joblib.load(path, mmap_mode="c")


def _plain(values: Any) -> list[Any] | None:
    if values is None:
        return None
    out = values.tolist() if hasattr(values, "tolist") else list(values)
    return [v.item() if hasattr(v, "item") else v for v in out]


def describe(path: Path, model_type: str, trusted_types: list[str], input_size: int) -> dict:
    import numpy as np
    import sklearn

    from serving.loading import load_artifact

    made_with: str | None = None
    info: dict[str, Any] = {"globals": [], "untrusted_types": []}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if model_type == "skops":
            import skops.io as sio

            untrusted = sorted(sio.get_untrusted_types(file=path))
            info["untrusted_types"] = untrusted
            refused = [t for t in untrusted if t not in trusted_types]
            if refused:
                raise UntrustedTypes(refused)
            estimator: Any = load_artifact(path, model_type, trusted_types)
        elif model_type in ("pkl", "joblib"):
            guard = Guard()
            try:
                estimator = _load_guarded(path, model_type, guard)
            finally:
                info["globals"] = sorted(guard.seen)
        else:
            raise ValueError(f"unknown model type {model_type!r}")
    for w in caught:
        original = getattr(w.message, "original_sklearn_version", None)
        if original:
            made_with = str(original)

    cls = type(estimator)
    n_features = getattr(estimator, "n_features_in_", None)
    info.update(
        {
            "estimator_class": f"{cls.__module__}.{cls.__qualname__}",
            "has_predict": callable(getattr(estimator, "predict", None)),
            "has_predict_proba": callable(getattr(estimator, "predict_proba", None)),
            "n_features": int(n_features) if n_features is not None else None,
            "feature_names": _plain(getattr(estimator, "feature_names_in_", None)),
            "classes": _plain(getattr(estimator, "classes_", None)),
            "library_versions": {"scikit-learn": made_with or sklearn.__version__},
            "serving_library_versions": {"scikit-learn": sklearn.__version__},
            "predict_error": None,
        }
    )
    if "torch" in sys.modules:
        import torch

        # A torch version is known only if the estimator recorded it (torch_version_); a
        # saved module does not say which torch made it. Unknown is null, never a guess.
        made = getattr(estimator, "torch_version_", None)
        info["library_versions"]["torch"] = str(made) if made else None
        info["serving_library_versions"]["torch"] = torch.__version__
    if info["has_predict"]:
        try:
            estimator.predict(np.zeros((1, n_features or input_size)))
        except Exception as exc:  # any failure of a trial prediction is a finding, not a crash
            info["predict_error"] = f"{type(exc).__name__}: {exc}"
    return info


def _limit(memory_bytes: int, cpu_seconds: int) -> None:
    """Limit this process before it reads a byte of the artifact (the parent cannot do it
    safely: preexec_fn is unsafe in a threaded web server)."""
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("path", type=Path)
    parser.add_argument("--model-type", required=True)
    parser.add_argument("--input-size", type=int, required=True)
    parser.add_argument("--trusted-type", action="append", default=[])
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--memory-bytes", type=int, required=True)
    parser.add_argument("--cpu-seconds", type=int, required=True)
    args = parser.parse_args()
    # Import the heavy libraries before the memory limit: their address-space reservations
    # (BLAS buffers, thread stacks) are not the artifact's doing.
    import numpy  # noqa: F401
    import sklearn  # noqa: F401

    _limit(args.memory_bytes, args.cpu_seconds)
    try:
        report = {
            "ok": True,
            **describe(args.path, args.model_type, args.trusted_type, args.input_size),
        }
    except RefusedGlobal as exc:
        report = {
            "ok": False,
            "error": f"the artifact imports {exc} while loading, which could run commands or "
            "touch files; it was refused before that code ran",
        }
    except UntrustedTypes as exc:
        report = {"ok": False, "untrusted_types": exc.types, "error": ""}
    except MemoryError:
        report = {"ok": False, "error": "loading the artifact ran out of memory", "memory": True}
    except Exception as exc:
        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        report = {"ok": False, "error": f"the artifact could not be loaded: {last}"}
    args.output.write_text(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
