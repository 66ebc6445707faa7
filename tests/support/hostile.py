"""Artifacts built to misbehave when they are loaded: for the upload sandbox's refusals."""

from __future__ import annotations

import os
import pickle
import time
from pathlib import Path


class RunsCommand:
    """Unpickling calls os.system(command)."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class OpensFile:
    """Unpickling calls open(path, "w"), creating the file."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


class SleepsForever:
    def __reduce__(self):
        return (time.sleep, (3600,))


class AllocatesGiB:
    """Unpickling allocates `gib` GiB of zero bytes."""

    def __init__(self, gib: int) -> None:
        self.gib = gib

    def __reduce__(self):
        return (bytes, (self.gib * 1024**3,))


def pickle_to(obj: object, path: Path) -> Path:
    with path.open("wb") as f:
        pickle.dump(obj, f)
    return path
