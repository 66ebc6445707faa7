"""`make run`: the web server, a Celery worker (with beat) and the local runtime, in one command.

Ctrl-C stops all of it, serving processes included; the next start redeploys what was running.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from console.processes import web_command, worker_command
from deployments.lifecycle import resume_all
from deployments.runtimes import get_runtime


class Command(BaseCommand):
    help = "Run the whole console (web, worker, beat) on this machine until Ctrl-C."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default=os.environ.get("CONSOLE_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("CONSOLE_PORT", 8000)))

    def handle(self, *args, host: str, port: int, **options) -> None:
        resumed = resume_all()
        if resumed:
            self.stdout.write(f"Redeploying: {', '.join(resumed)}")
        procs = {
            "worker": subprocess.Popen(worker_command(), cwd=settings.BASE_DIR),
            "web": subprocess.Popen(web_command(host, port), cwd=settings.BASE_DIR),
        }
        self.stdout.write(
            self.style.SUCCESS(
                f"\nThe console is starting at http://{host}:{port}  (Ctrl-C stops it)\n"
            )
        )
        stopping = False

        def stop(signum, frame) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping:
                for name, proc in procs.items():
                    if proc.poll() is not None:
                        self.stderr.write(f"The {name} process exited ({proc.returncode}).")
                        stopping = True
                time.sleep(0.5)
        finally:
            self.stdout.write("Stopping the console and its serving processes...")
            for proc in procs.values():
                if proc.poll() is None:
                    proc.terminate()
            for proc in procs.values():
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
            runtime = get_runtime()
            if runtime.name == "local":
                for name in runtime.list_deployed():
                    runtime.remove(name)
