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


def serving_pids(var_dir: Path, deployment: str) -> list[int]:
    """Live `python -m serving` processes started for `deployment` by the local runtime."""
    marker = str(var_dir / "runtime" / deployment / "config.yaml")
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            cmdline = _cmdline(int(entry.name))
            if cmdline and marker in cmdline and "serving" in cmdline:
                pids.append(int(entry.name))
    return pids


def alive(pid: int) -> bool:
    return _cmdline(pid) is not None
