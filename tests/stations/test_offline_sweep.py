"""A charger that stops talking is marked offline by the periodic sweep."""

import datetime as dt

import pytest
from django.utils import timezone

from config import periodic
from stations.models import ChargePoint
from stations.services import mark_silent_chargers_offline
from tests.factories import ChargePointFactory

pytestmark = pytest.mark.django_db


def test_silent_charger_goes_offline_and_talking_one_stays(settings):
    now = timezone.now()
    silent = ChargePointFactory(heartbeat_interval=60, last_seen_at=now - dt.timedelta(seconds=200))
    talking = ChargePointFactory(heartbeat_interval=60, last_seen_at=now - dt.timedelta(seconds=100))
    slow_beat = ChargePointFactory(heartbeat_interval=3600, last_seen_at=now - dt.timedelta(seconds=3000))
    assert mark_silent_chargers_offline(now=now) == 1
    assert list(ChargePoint.objects.filter(is_connected=False)) == [silent]
    assert talking.pk and slow_beat.pk
    assert mark_silent_chargers_offline(now=now) == 0  # safe to run twice


def test_offline_event_published_once(django_capture_on_commit_callbacks):
    from config import events

    heard = []
    events.subscribe("charge_point.offline")(lambda **data: heard.append(data))
    cp = ChargePointFactory(heartbeat_interval=60, last_seen_at=timezone.now() - dt.timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        mark_silent_chargers_offline()
        mark_silent_chargers_offline()
    assert [h["charge_point_id"] for h in heard] == [cp.pk]


def test_embedded_periodic_runner_runs_due_tasks_only():
    cp = ChargePointFactory(heartbeat_interval=60, last_seen_at=timezone.now() - dt.timedelta(hours=1))
    last_run: dict[str, float] = {}
    assert periodic.run_due(last_run, 1000.0) == [
        "relay-deferred-tasks",
        "mark-silent-chargers-offline",
        "expire-reservations",
        "diagnostic-sweep",
        "alerts-sweep",
        "alerts-digests",
    ]  # the daily billing runs are not due yet 1,000 s after start
    assert periodic.run_due(last_run, 1010.0) == []  # not due again within its 30 s
    cp.refresh_from_db()
    assert cp.is_connected is False
