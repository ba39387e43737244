"""Run ChargeDesk's processes in the foreground: the ASGI server and, on the real stack
(REDIS_URL set), a Celery worker and Celery beat. Ctrl-C stops them all."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from config import periodic


def uvicorn_command(
    host: str,
    port: int,
    *,
    workers: int = 1,
    log_level: str | None = None,
    graceful_shutdown: int | None = None,
) -> list[str]:
    """The ASGI server as ChargeDesk runs it (the tests start it so too): WebSocket messages
    past OCPP_WS_MAX_BYTES closed with 1009, the client address from the proxy's headers, and
    a stop that waits at most ASGI_GRACEFUL_SHUTDOWN_SECONDS for connections to close (a
    consumer that does not finish must not hold a restart up: a channels_redis receive that is
    cancelled while it waits on Redis has been seen to stay pending for good)."""
    return [
        sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", host, "--port", str(port),
        "--workers", str(workers), "--ws-max-size", str(settings.OCPP_WS_MAX_BYTES), "--proxy-headers",
        "--lifespan", "off", "--timeout-graceful-shutdown",
        str(settings.ASGI_GRACEFUL_SHUTDOWN_SECONDS if graceful_shutdown is None else graceful_shutdown),
        *(["--log-level", log_level] if log_level else []),
    ]  # fmt: skip


class Command(BaseCommand):
    help = "Serve ChargeDesk on an ASGI server (uvicorn), with Celery worker and beat on the real stack."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--workers", type=int, default=1, help="ASGI server processes.")
        parser.add_argument(
            "--simulate",
            default="",
            help="Comma-separated operator slugs whose accepted chargers a simulator plays (demo).",
        )
        parser.add_argument(
            "--simulate-skip", default="", help="Comma-separated identities to leave offline."
        )
        parser.add_argument("--simulate-password", default="voltway-demo-charger-01")
        parser.add_argument(
            "--simulate-id-tags", default="", help="Comma-separated idTags for simulated sessions."
        )

    def handle(self, *args, host, port, workers, simulate, simulate_skip, **options):
        python = sys.executable
        commands = {"web": uvicorn_command(host, port, workers=workers)}
        if settings.REDIS_URL and not settings.CELERY_TASK_ALWAYS_EAGER:
            commands["worker"] = [python, "-m", "celery", "-A", "config", "worker", "--loglevel", "INFO"]
            commands["beat"] = [python, "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO"]
        stop_periodic = threading.Event()
        if settings.CELERY_TASK_ALWAYS_EAGER:
            periodic.start_in_background(stop_periodic)  # no beat without a broker
        procs = {name: subprocess.Popen(cmd, env=os.environ.copy()) for name, cmd in commands.items()}  # noqa: S603
        url = f"http://{host}:{port}"
        identities = self._simulated(simulate, simulate_skip)
        tags = [t for t in options["simulate_id_tags"].split(",") if t]
        if identities and _wait_for_port(host, port, procs["web"]):
            procs["chargers"] = subprocess.Popen(  # noqa: S603
                [
                    python, "manage.py", "simulate_chargers", "--url", f"ws://{host}:{port}/ocpp",
                    "--password", options["simulate_password"], "--profile", "busy",
                    "--session-gap", "60", "--session-duration", "240", "--meter-interval", "10",
                    "--energy-speedup", "10", "--log-level", "WARNING", "--identities", *identities,
                    *(["--id-tags", *tags] if tags else []),
                ],
                env=os.environ.copy(),
            )  # fmt: skip
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

    @staticmethod
    def _simulated(operators: str, skip: str) -> list[str]:
        if not operators:
            return []
        from stations.models import ChargePoint, RegistrationStatus

        return list(
            ChargePoint.objects.filter(
                operator__slug__in=operators.split(","), registration_status=RegistrationStatus.ACCEPTED
            )
            .exclude(identity__in=[i for i in skip.split(",") if i])
            .order_by("identity")
            .values_list("identity", flat=True)
        )


def _wait_for_port(host: str, port: int, proc: subprocess.Popen, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.3)
    return False
