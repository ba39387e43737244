"""Run ChargeDesk's processes in the foreground: the ASGI server and, on the real stack
(REDIS_URL set), a Celery worker and Celery beat. Ctrl-C stops them all."""

import os
import signal
import subprocess
import sys
import threading
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from config import periodic


class Command(BaseCommand):
    help = "Serve ChargeDesk on an ASGI server (uvicorn), with Celery worker and beat on the real stack."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--workers", type=int, default=1, help="ASGI server processes.")

    def handle(self, *args, host, port, workers, **options):
        python = sys.executable
        commands = {
            "web": [
                python,
                "-m",
                "uvicorn",
                "config.asgi:application",
                "--host",
                host,
                "--port",
                str(port),
                "--workers",
                str(workers),
                "--ws-max-size",
                str(64 * 1024),
                "--proxy-headers",
                "--lifespan",
                "off",
            ],
        }
        if settings.REDIS_URL and not settings.CELERY_TASK_ALWAYS_EAGER:
            commands["worker"] = [python, "-m", "celery", "-A", "config", "worker", "--loglevel", "INFO"]
            commands["beat"] = [python, "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO"]
        stop_periodic = threading.Event()
        if settings.CELERY_TASK_ALWAYS_EAGER:
            periodic.start_in_background(stop_periodic)  # no beat without a broker
        procs = {name: subprocess.Popen(cmd, env=os.environ.copy()) for name, cmd in commands.items()}  # noqa: S603
        url = f"http://{host}:{port}"
        self.stdout.write(self.style.SUCCESS(f"\nChargeDesk is starting on {url}  ({', '.join(procs)})"))
        self.stdout.write("Demo logins are printed above by load_demo. Ctrl-C stops everything.\n")
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping:
                for name, proc in procs.items():
                    if proc.poll() is not None:
                        self.stderr.write(f"{name} exited with {proc.returncode}; stopping the rest.")
                        stopping = True
                time.sleep(0.5)
        finally:
            stop_periodic.set()
            for proc in procs.values():
                if proc.poll() is None:
                    proc.terminate()
            for proc in procs.values():
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
