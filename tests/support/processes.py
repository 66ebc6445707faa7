"""Looking at real processes from tests: which serving processes run for a deployment."""

from __future__ import annotations

from pathlib import Path


def _cmdline(pid: int) -> str | None:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state in {"Z", "X"}:
            return None
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError, IndexError, PermissionError):
        return None


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
        return None


def serving_pids(var_dir: Path, deployment: str) -> list[int]:
    """Live serving processes the local runtime started for `deployment`: the top process of
    each (the isolation launcher, whose bwrap and `python -m serving` are its descendants, or
    `python -m serving` itself when isolation is off)."""
    marker = str(var_dir / "runtime" / deployment / "config.yaml")
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            cmdline = _cmdline(int(entry.name))
            if cmdline and marker in cmdline and "serving" in cmdline:
                found.add(int(entry.name))
    return sorted(pid for pid in found if _parent(pid) not in found)


def alive(pid: int) -> bool:
    return _cmdline(pid) is not None
