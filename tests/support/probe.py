"""Imported by a test artifact inside the validation sandbox: records where its code ran.

An artifact built with `Probe(path)` calls `record(path)` when it is unpickled; the test then
reads what that process looked like (its process ids, limits, working directory, environment).
"""

from __future__ import annotations

import json
import os
import resource


def record(path: str) -> dict:
    """Write facts about the current process to `path`; a dict is not an estimator."""
    facts = {
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "pgid": os.getpgid(0),
        "cwd": os.getcwd(),
        "rlimit_as": resource.getrlimit(resource.RLIMIT_AS)[0],
        "env": sorted(os.environ),
    }
    with open(path, "w") as f:
        json.dump(facts, f)
    return facts


class Probe:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (record, (self.path,))
