"""Pickles that run code through globals a denylist does not name, built with __reduce__.

Each `Gadget` pickles as a call of a real library function with arguments that would leave a
trace (`marker`): a file created, a folder deleted, a command run.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def resolve(dotted: str) -> Any:
    module, name = dotted.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


class Call:
    """Unpickling calls `function(*args)`."""

    def __init__(self, function: Any, *args: Any) -> None:
        self.function = function
        self.args = args

    def __reduce__(self):
        return (self.function, self.args)


@dataclass
class Gadget:
    name: str  # the global the file imports, as the refusal names it
    build: Any  # (marker: Path) -> object to pickle

    def payload(self, marker: Path) -> object:
        return self.build(marker)


def _touch(marker: Path) -> str:
    return f"touch {marker}"


GADGETS = [
    Gadget(
        "cloudpickle.cloudpickle.subimport",
        lambda m: Call(resolve("cloudpickle.cloudpickle.subimport"), "os"),
    ),
    Gadget(
        "cloudpickle.cloudpickle._builtin_type",
        lambda m: Call(resolve("cloudpickle.cloudpickle._builtin_type"), "CodeType"),
    ),
    Gadget(
        "_osx_support._read_output",
        lambda m: Call(resolve("_osx_support._read_output"), _touch(m)),
    ),
    Gadget(
        "uuid._get_command_stdout",
        lambda m: Call(resolve("uuid._get_command_stdout"), "touch", str(m)),
    ),
    Gadget(
        "sklearn.utils._testing.assert_run_python_script_without_output",
        lambda m: Call(
            resolve("sklearn.utils._testing.assert_run_python_script_without_output"),
            f"open({str(m)!r}, 'w')",
        ),
    ),
    Gadget(
        "joblib.disk.delete_folder",
        lambda m: Call(resolve("joblib.disk.delete_folder"), str(m.parent / "keep")),
    ),
    Gadget(
        "sklearn.datasets._svmlight_format_io.dump_svmlight_file",
        lambda m: Call(resolve("sklearn.datasets.dump_svmlight_file"), [[1.0]], [1.0], str(m)),
    ),
    Gadget(
        "numpy.ctypeslib.load_library",
        lambda m: Call(resolve("numpy.ctypeslib.load_library"), "libc.so.6", "/lib"),
    ),
    Gadget("posix.system", lambda m: Call(resolve("os.system"), _touch(m))),
    Gadget("builtins.exec", lambda m: Call(exec, f"open({str(m)!r}, 'w')")),
    Gadget(
        "builtins.getattr",
        lambda m: Call(getattr, Call(resolve("importlib.import_module"), "os"), "system"),
    ),
    Gadget("numpy.memmap", lambda m: Call(resolve("numpy.memmap"), str(m), "uint8", "w+", 0, 8)),
]
