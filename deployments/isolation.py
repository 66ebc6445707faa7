"""Run model code where it can reach nothing of the console: bubblewrap namespaces.

Unpickling an artifact and calling `predict` run the uploader's code, so every local process
that does (the validation child, each serving process) starts inside `bwrap` with:
- a mount namespace whose root is a read-only tmpfs holding only the system libraries (/usr),
  the Python environment and the project's `serving/` read-only, the files the caller names
  (the artifact, a config; at their own paths, so their parent folders exist but are empty)
  read-only, a private /tmp and a minimal /proc and /dev: the console's `var/` (database,
  secret key, cache, broker, uploads, other artifacts, the runtime's state files) is not there;
- its own user namespace as uid 65534 with no capabilities and no nested user namespaces;
- its own PID namespace: when its first process ends (or the console side kills bwrap) the
  kernel kills everything in it, a `setsid` grandchild included;
- its own network namespace (only a loopback of its own) unless the caller asks for the
  host's network; a serving process inherits its deployment's listening socket instead (the
  supervisor of the deployment holds it), so it answers on the console's loopback yet can
  connect nowhere;
- an environment of exactly the variables the caller passes (`--clearenv`).

Where bwrap cannot run, model code is refused unless MODEL_ISOLATION=off, which is logged as a
warning every time it matters.

This module imports Django only inside functions: `python -m deployments.isolation` is the
launcher of serving processes (it forwards stop signals into the sandbox), and the local
runtime's supervisor uses it without settings.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

BWRAP = "bwrap"
INSTALL_HINT = "install bubblewrap (Debian and Ubuntu: apt-get install -y bubblewrap)"
# Where the project's code appears inside the sandbox (on PYTHONPATH there).
APP_DIR = "/app"
SANDBOX_UID = 65534  # nobody
# Where a serving process's gRPC socket folder appears inside its sandbox.
GRPC_SOCKET_DIR = "/run/grpc"
# The file descriptor of bwrap's status pipe, which tells the launcher the sandboxed process's
# pid (high, so that it never meets the descriptors a serving process inherits).
STATUS_FD = 250

# Host files a sandbox may read besides /usr: the loader's cache and the time zone; with the
# network also name resolution and CA certificates (for downloading from a cloud store).
_SYSTEM_FILES = ("/etc/ld.so.cache", "/etc/localtime")
_NETWORK_FILES = (
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/nsswitch.conf",
    "/etc/ssl/certs",
    "/etc/ca-certificates",
)


class IsolationUnavailable(Exception):
    """Model code cannot run isolated here, and isolation has not been switched off."""


def project_dir() -> Path:
    return Path(__file__).resolve().parent.parent


def python_paths() -> tuple[str, list[Path]]:
    """The interpreter to run inside, and the folders it needs (environment and base)."""
    prefix = Path(sys.prefix).resolve()
    base = Path(sys.base_prefix).resolve()
    if prefix != base:  # a virtual environment: its own python finds its pyvenv.cfg
        executable = prefix / "bin" / Path(sys.executable).name
    else:
        executable = Path(sys.executable)
    folders = sorted({prefix, base})
    resolved = executable.resolve()
    if not any(resolved.is_relative_to(f) for f in folders):
        folders.append(resolved.parent)
    return str(executable), folders


def isolated_command(
    argv: list[str],
    *,
    read_only: Iterable[Path | tuple[Path, str]] = (),
    writable: Iterable[Path | tuple[Path, str]] = (),
    network: bool = False,
    env: dict[str, str] | None = None,
    cwd: str = "/tmp",
    as_pid_1: bool = False,
    status_fd: int | None = None,
) -> list[str]:
    """`argv` wrapped in bwrap. Paths are bound at the same place inside unless given as
    (host path, inside path); `network` shares the host's network namespace."""
    command = [
        shutil.which(BWRAP) or BWRAP,
        "--unshare-all",
        "--unshare-user",
        "--disable-userns",
        "--uid",
        str(SANDBOX_UID),
        "--gid",
        str(SANDBOX_UID),
        "--cap-drop",
        "ALL",
        "--die-with-parent",
        "--new-session",
        "--clearenv",
    ]
    if network:
        command.append("--share-net")
    if as_pid_1:
        command.append("--as-pid-1")
    if status_fd is not None:
        command += ["--json-status-fd", str(status_fd)]
    command += ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64"):
        if os.path.islink(top):
            command += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            command += ["--ro-bind", top, top]
    for name in _SYSTEM_FILES + (_NETWORK_FILES if network else ()):
        if os.path.exists(name):
            command += ["--ro-bind", name, name]
    command += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    _, python_folders = python_paths()
    for folder in python_folders:
        command += ["--ro-bind", str(folder), str(folder)]
    for flag, paths in (("--ro-bind", read_only), ("--bind", writable)):
        for item in paths:
            source, inside = item if isinstance(item, tuple) else (item, str(item))
            command += [flag, str(source), inside]
    for name, value in (env or {}).items():
        command += ["--setenv", name, value]
    # The root itself (a tmpfs holding the mount points) read-only: /tmp is the place to write.
    return [*command, "--remount-ro", "/", "--chdir", cwd, "--", *argv]


def base_env() -> dict[str, str]:
    """What every sandboxed Python gets: nothing of the console's environment."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "PYTHONPATH": APP_DIR,
        "HOME": "/tmp",
        "TMPDIR": "/tmp",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
    }
    for name in ("LANG", "LC_ALL", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


_worked: list[bool] = []  # a trial that succeeded once is not repeated


def isolation_available() -> bool:
    """bwrap is installed and can create its namespaces here (checked by a trial run until
    one succeeds: a failure, say under memory pressure, is tried again next time)."""
    if _worked:
        return True
    if shutil.which(BWRAP) is None:
        return False
    try:
        subprocess.run(
            isolated_command(["/usr/bin/true"]),
            check=True,
            capture_output=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        log.error("bubblewrap is installed but cannot create a sandbox here: %s", exc)
        return False
    _worked.append(True)
    return True


def isolation_mode() -> str:
    """MODEL_ISOLATION from the console's settings, or from the environment in a process
    without them (the local runtime's supervisor, which the runtime hands the value)."""
    from django.conf import settings

    if settings.configured:
        return str(settings.MODEL_ISOLATION)
    return os.environ.get("MODEL_ISOLATION", "bwrap").strip().lower()


def isolation_required(what: str) -> bool:
    """True when `what` (some model code) must run isolated; False when MODEL_ISOLATION=off.

    Raises IsolationUnavailable when isolation is on and bwrap cannot run here.
    """
    if isolation_mode() == "off":
        log.warning(
            "MODEL_ISOLATION=off: %s runs WITHOUT isolation, as the console's user, able to "
            "read the console's files and reach its network",
            what,
        )
        return False
    if not isolation_available():
        raise IsolationUnavailable(
            f"{what} runs only isolated by bubblewrap, which cannot run on this machine: "
            f"{INSTALL_HINT}. An admin can set MODEL_ISOLATION=off to run models without "
            "isolation (any uploader can then read the console's secrets)"
        )
    return True


# What a serving process reads from the environment, and what reading a gs:// artifact needs.
# Nothing else of the worker's environment (SECRET_KEY, CONSOLE_ADMIN_PASSWORD, DATABASE_URL,
# broker and cache URLs, other credentials) reaches it.
_SERVING_PREFIXES = ("SERVING_", "OMP_", "OPENBLAS_", "MKL_")
_GCS_VARIABLES = ("STORAGE_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT")


def host_env() -> dict[str, str]:
    """What the local runtime's supervisor gets of the worker's environment: what its serving
    processes may read (serving's settings, thread counts, what a gs:// download needs) and
    MODEL_ISOLATION, never the console's secrets or URLs."""
    env = base_env()
    env.update(PYTHONPATH=str(project_dir()), HOME=os.environ.get("HOME", "/tmp"))
    env["PATH"] = os.environ.get("PATH", env["PATH"])
    del env["TMPDIR"]
    env["MODEL_ISOLATION"] = isolation_mode()
    for name, value in os.environ.items():
        if name.startswith(_SERVING_PREFIXES) or name in _GCS_VARIABLES:
            env[name] = value
    if "GOOGLE_APPLICATION_CREDENTIALS" in os.environ:
        env["GOOGLE_APPLICATION_CREDENTIALS"] = os.environ["GOOGLE_APPLICATION_CREDENTIALS"]
    return env


def serving_process(
    config: Path, listen_fd: int, notify_fd: int, grpc_socket: Path | None = None
) -> tuple[list[str], dict[str, str], Path]:
    """Command, environment and working directory of one local serving process (a replica)
    of `config`, serving on the inherited socket `listen_fd` and writing 'ready' to
    `notify_fd` once it accepts connections.

    A LOCAL artifact is served from a sandbox with no network: it sees the artifact and the
    config and answers on the inherited socket. A gs:// artifact must be downloaded, so that
    sandbox shares the host's network and gets the Google credentials file
    (GOOGLE_APPLICATION_CREDENTIALS) read-only; see the README's Registry section.
    """
    from serving.config import load_config

    cfg = load_config(config)
    isolated = isolation_required(f"the serving process of {cfg.name}")
    env = base_env()
    env.update({k: v for k, v in os.environ.items() if k.startswith(_SERVING_PREFIXES)})
    # The replicas share the REST socket; gRPC, which cannot serve an inherited socket, is on
    # a Unix socket of each one's own (`grpc_socket`, relayed by the supervisor) or off.
    env["SERVING_GRPC_PORT"] = "0"
    read_only: list[Path | tuple[Path, str]] = [
        (project_dir() / "serving", f"{APP_DIR}/serving"),
        config,
    ]
    network = cfg.model.method == "GCS"
    # The prediction log (serving/predlog.py) writes to its folder, or to GCS over the network.
    writable: list[Path | tuple[Path, str]] = []
    sink = cfg.logging.sink if cfg.logging and cfg.logging.sample > 0 else None
    if sink and sink.startswith("file://"):
        folder = Path(sink.removeprefix("file://"))
        folder.mkdir(parents=True, exist_ok=True)
        writable.append(folder)
    elif sink:
        network = True
    if network:
        env.update({k: os.environ[k] for k in _GCS_VARIABLES if k in os.environ})
        credentials = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
        if credentials and os.path.isfile(credentials):
            env["GOOGLE_APPLICATION_CREDENTIALS"] = credentials
            read_only.append(Path(credentials))
    elif cfg.model.path:
        read_only.append(Path(cfg.model.path))
    serving = ["-s", "-m", "serving", "--config", str(config)]
    serving += ["--fd", str(listen_fd), "--notify-fd", str(notify_fd)]
    cwd = "/tmp"
    if grpc_socket is not None:
        # A Unix socket's path is limited to 107 bytes: it is named relative to the working
        # folder, the socket's own.
        writable.append((grpc_socket.parent, GRPC_SOCKET_DIR))
        cwd = GRPC_SOCKET_DIR
        serving += ["--grpc-socket", grpc_socket.name]
    if not isolated:
        env.update(PYTHONPATH=str(project_dir()), HOME=os.environ.get("HOME", "/tmp"))
        del env["TMPDIR"]
        folder = grpc_socket.parent if grpc_socket is not None else project_dir()
        return [sys.executable, *serving], env, folder
    python, _ = python_paths()
    inner = isolated_command(
        [python, *serving],
        read_only=read_only,
        writable=writable,
        network=network,
        env=env,
        cwd=cwd,
        as_pid_1=True,
        status_fd=STATUS_FD,
    )
    launcher = [sys.executable, "-m", "deployments.isolation", f"{listen_fd},{notify_fd}", "--"]
    launcher_env = {"PATH": env["PATH"], "PYTHONPATH": str(project_dir())}
    return [*launcher, *inner], launcher_env, config.parent


def _launch(keep: list[int], argv: list[str]) -> int:
    """Run bwrap's `argv` with the descriptors `keep` passed through, forwarding SIGTERM and
    SIGINT to the sandboxed process, so stopping it drains requests as it would without bwrap
    (bwrap itself dying kills everything inside at once, undrained)."""
    if STATUS_FD in keep:
        raise SystemExit(f"descriptor {STATUS_FD} is reserved for bwrap's status")
    read_end, write_end = os.pipe()
    os.dup2(write_end, STATUS_FD)
    os.close(write_end)

    child: list[int] = []
    pending: list[int] = []

    def forward(signum: int, frame: object) -> None:
        if child:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child[0], signum)
        else:
            pending.append(signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    # Its own session: a signal to the launcher's group must reach serving only through
    # `forward`, never bwrap itself.
    proc = subprocess.Popen(argv, pass_fds=(*keep, STATUS_FD), start_new_session=True)
    os.close(STATUS_FD)
    for fd in keep:
        os.close(fd)
    with os.fdopen(read_end, "rb") as status:
        first = status.readline()
        with contextlib.suppress(ValueError, KeyError):
            child.append(int(json.loads(first)["child-pid"]))
        for signum in pending:
            forward(signum, None)
        code = proc.wait()
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        sys.exit("usage: python -m deployments.isolation FD,FD -- BWRAP-ARGV...")
    sys.exit(_launch([int(fd) for fd in sys.argv[1].split(",") if fd], sys.argv[3:]))
