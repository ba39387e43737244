import io

from django.core.management import call_command

from alerts.models import AlertProfile, MaintenanceWindow


def test_the_demo_gives_drivers_alert_settings_and_a_planned_maintenance(db):
    call_command("load_demo", stdout=io.StringIO())
    call_command("load_demo", stdout=io.StringIO())  # again: nothing doubles
    alice = AlertProfile.objects.get(user__email="alice@example.com")
    assert alice.home_latitude is not None
    assert list(alice.favourites.values_list("identity", flat=True)) == ["VW-AMS-02"]
    assert AlertProfile.objects.get(user__email="bob@example.com").quiet_hours_start is not None
    window = MaintenanceWindow.objects.get()
    assert window.published_at is not None and window.ends_at > window.starts_at
