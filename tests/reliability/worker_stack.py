"""Celery worker processes of a test's own (its own queue on the test's Redis, the test's
PostgreSQL) that a test can SIGKILL and replace."""

from __future__ import annotations

import os
import subprocess
import uuid

from tests.live import stack_env, start_celery_worker, stop_process, wait_until

wait_for = wait_until  # wait_for(fn, timeout=…, interval=…)


class Workers:
    """Start workers on one queue; ``kill`` one with SIGKILL, ``start`` a fresh one."""

    def __init__(self, *, visibility_timeout: int = 2):
        self.queue = f"faults-{uuid.uuid4().hex[:8]}"
        self.env = stack_env(
            CELERY_TASK_DEFAULT_QUEUE=self.queue,
            CELERY_BROKER_VISIBILITY_TIMEOUT=str(visibility_timeout),
            CELERY_BROKER_RESTORE_INTERVAL="1",
            CELERY_BROKER_RESTORE_THROTTLE="1",
            CELERY_TASK_ALWAYS_EAGER="false",
        )
        self.processes: list[subprocess.Popen] = []

    def start(self) -> subprocess.Popen:
        name = f"faults-{os.getpid()}-{self.queue}-{len(self.processes)}"
        process = start_celery_worker(self.env, self.queue, name)
        self.processes.append(process)
        return process

    def kill(self, process: subprocess.Popen) -> None:
        process.kill()  # SIGKILL: no warm shutdown, nothing acknowledged
        process.wait(timeout=10)

    def stop(self) -> None:
        for process in self.processes:
            stop_process(process, timeout=20)
