"""The console's processes, named in one place: `make run` and the tests start the same ones."""

from __future__ import annotations

import sys


def web_command(host: str = "127.0.0.1", port: int = 8000, workers: int = 2) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "console.wsgi",
        "--bind",
        f"{host}:{port}",
        "--workers",
        str(workers),
        # Threads for requests; slow clients wait in the event loop, not in a thread.
        "--worker-class",
        "console.web_worker.TimedThreadWorker",
        "--threads",
        "4",
        "--timeout",
        "600",
        # Idle connections stay open longer than clients and proxies keep theirs (httpx 5 s,
        # load balancers 60 s), so no client sends a request on a connection being closed.
        "--keep-alive",
        "75",
        "--access-logfile",
        "-",
        "--graceful-timeout",
        "5",
    ]


def worker_command(concurrency: int = 2, beat: bool = True, name: str = "worker") -> list[str]:
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "console",
        "worker",
        "--loglevel",
        "INFO",
        "--concurrency",
        str(concurrency),
        "--hostname",
        f"{name}@%h",
    ]
    if beat:
        command.append("--beat")
    return command
