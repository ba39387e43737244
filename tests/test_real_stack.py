"""The real services behind the settings: the Redis channel layer and Celery over Redis."""

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from channels.layers import get_channel_layer
from django.conf import settings

pytestmark = pytest.mark.redis


def test_redis_channel_layer_carries_group_messages():
    layer = get_channel_layer()
    assert type(layer).__name__ == "RedisChannelLayer"

    async def roundtrip():
        channel = await layer.new_channel()
        await layer.group_add("chargepoint.test", channel)
        await layer.group_send("chargepoint.test", {"type": "ocpp.call", "action": "Reset"})
        message = await asyncio.wait_for(layer.receive(channel), timeout=5)
        await layer.group_discard("chargepoint.test", channel)
        return message

    assert asyncio.run(roundtrip()) == {"type": "ocpp.call", "action": "Reset"}


def test_celery_worker_answers_over_the_redis_broker():
    from config.celery import app

    assert settings.CELERY_BROKER_URL.startswith("redis://")
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool",
            "solo",
            "--loglevel",
            "WARNING",
            "--hostname",
            f"test-{os.getpid()}@%h",
        ],
        cwd=Path(__file__).resolve().parent.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        replies = []
        deadline = time.monotonic() + 30
        while not replies and time.monotonic() < deadline:
            replies = [r for r in app.control.ping(timeout=1) if f"test-{os.getpid()}@" in next(iter(r))]
        assert replies, "the Celery worker never answered"
    finally:
        worker.terminate()
        worker.wait(timeout=20)
