"""Firmware campaigns: created for chosen chargers of one operator, started with UpdateFirmware
(sent or refused per charger), followed through FirmwareStatusNotifications until finished."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from diagnostics.models import CampaignStatus, FirmwareCampaign, FirmwareTargetStatus
from diagnostics.services import firmware
from stations import services as station_services
from stations.models import Command, CommandStatus
from tests.factories import ChargePointFactory

pytestmark = pytest.mark.django_db
T = FirmwareTargetStatus
LOCATION = "https://firmware.example.com/fw-2.1.0.bin"


@pytest.fixture
def chargers(site):
    return [ChargePointFactory(site=site, identity=f"VW-FW-{n}") for n in range(3)]


@pytest.fixture
def answers(monkeypatch):
    """What each charger answers UpdateFirmware (by identity; default accepted). No sockets."""
    outcomes: dict[str, str] = {}
    sent = []

    def fake_many(charge_points, action, payload, **kwargs):
        sent.append((action, payload, [cp.identity for cp in charge_points]))
        return [
            Command.objects.create(
                charge_point=cp,
                action=action,
                payload=payload,
                status=outcomes.get(cp.identity, CommandStatus.ACCEPTED),
                response={} if outcomes.get(cp.identity, CommandStatus.ACCEPTED) == "accepted" else None,
            )
            for cp in charge_points
        ]

    monkeypatch.setattr(firmware, "send_command_many", fake_many)
    return outcomes, sent


def report(charge_point, status, capture):
    with capture(execute=True):
        station_services.charger_firmware_status(
            charge_point_id=charge_point.pk, status=status, at=timezone.now()
        )


def test_create_checks_the_chargers_belong_to_the_operator(operator, chargers, other_charge_point):
    with pytest.raises(ValidationError) as error:
        firmware.campaign_create(
            operator=operator, name="2.1.0", location=LOCATION, charge_points=[*chargers, other_charge_point]
        )
    assert "charge_points" in error.value.message_dict
    with pytest.raises(ValidationError) as error:
        firmware.campaign_create(operator=operator, name="", location="file:///x", charge_points=[])
    assert {"name", "location", "charge_points"} <= set(error.value.message_dict)
    assert not FirmwareCampaign.objects.exists()


def test_start_sends_update_firmware_and_marks_sent_or_refused(operator, chargers, answers):
    outcomes, sent = answers
    outcomes["VW-FW-2"] = CommandStatus.OFFLINE
    retrieve = timezone.now() + dt.timedelta(minutes=5)
    campaign = firmware.campaign_create(
        operator=operator,
        name="2.1.0 roll-out",
        location=LOCATION,
        charge_points=chargers,
        retrieve_at=retrieve,
        retries=3,
        retry_interval=60,
    )
    assert campaign.status == CampaignStatus.DRAFT
    campaign = firmware.campaign_start(campaign=campaign)
    assert campaign.status == CampaignStatus.RUNNING
    [(action, payload, identities)] = sent
    assert action == "UpdateFirmware"
    assert payload == {
        "location": LOCATION,
        "retrieveDate": retrieve.astimezone(dt.UTC).isoformat(),
        "retries": 3,
        "retryInterval": 60,
    }
    assert sorted(identities) == ["VW-FW-0", "VW-FW-1", "VW-FW-2"]
    statuses = {t.charge_point.identity: t.status for t in campaign.targets.select_related("charge_point")}
    assert statuses == {"VW-FW-0": T.SENT, "VW-FW-1": T.SENT, "VW-FW-2": T.REFUSED}
    assert all(t.command_id for t in campaign.targets.all())
    with pytest.raises(ValidationError):
        firmware.campaign_start(campaign=campaign)


def test_reports_move_targets_and_finish_the_campaign(
    operator, chargers, answers, django_capture_on_commit_callbacks
):
    campaign = firmware.campaign_create(
        operator=operator, name="c", location=LOCATION, charge_points=chargers[:2]
    )
    firmware.campaign_start(campaign=campaign)
    a, b = chargers[:2]
    for status in ("Downloading", "Downloaded", "Installing"):
        report(a, status, django_capture_on_commit_callbacks)
    target_a = campaign.targets.get(charge_point=a)
    assert target_a.status == T.INSTALLING and target_a.status_at is not None
    report(a, "Downloading", django_capture_on_commit_callbacks)  # late and out of order: ignored
    assert campaign.targets.get(charge_point=a).status == T.INSTALLING
    report(a, "Installed", django_capture_on_commit_callbacks)
    report(a, "Idle", django_capture_on_commit_callbacks)
    assert campaign.targets.get(charge_point=a).status == T.INSTALLED
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.RUNNING
    report(b, "DownloadFailed", django_capture_on_commit_callbacks)
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.FINISHED
    assert firmware.progress(campaign)["installed"] == 1 and firmware.progress(campaign)["done"] == 2


def test_a_report_before_the_commands_answer_is_kept(operator, chargers, monkeypatch):
    """A quick charger reports Downloading before the start has recorded its answer."""
    campaign = firmware.campaign_create(
        operator=operator, name="c", location=LOCATION, charge_points=chargers[:1]
    )

    def quick(charge_points, action, payload, **kwargs):
        firmware.on_firmware_status(charge_point_id=charge_points[0].pk, status="Downloading")
        return [
            Command.objects.create(
                charge_point=charge_points[0], action=action, payload=payload, status="accepted"
            )
        ]

    monkeypatch.setattr(firmware, "send_command_many", quick)
    campaign = firmware.campaign_start(campaign=campaign)
    assert campaign.targets.get().status == T.DOWNLOADING


def test_all_refused_finishes_at_once(operator, chargers, answers):
    outcomes, _ = answers
    outcomes.update({cp.identity: CommandStatus.REJECTED for cp in chargers})
    campaign = firmware.campaign_create(
        operator=operator, name="c", location=LOCATION, charge_points=chargers
    )
    assert firmware.campaign_start(campaign=campaign).status == CampaignStatus.FINISHED


def test_reports_outside_a_running_campaign_change_nothing(
    operator, chargers, answers, django_capture_on_commit_callbacks
):
    campaign = firmware.campaign_create(
        operator=operator, name="c", location=LOCATION, charge_points=chargers[:1]
    )
    report(chargers[0], "Installed", django_capture_on_commit_callbacks)
    assert campaign.targets.get().status == T.PENDING
    firmware.campaign_start(campaign=campaign)
    firmware.campaign_cancel(campaign=campaign)
    report(chargers[0], "Installed", django_capture_on_commit_callbacks)
    assert campaign.targets.get().status == T.SENT


# --- Pages -------------------------------------------------------------------------------------


def test_campaign_pages_create_start_and_show_progress(login, operator_admin, chargers, answers):
    client = login(operator_admin)
    form = client.get("/diagnostics/firmware/new/")
    assert form.status_code == 200 and "VW-FW-0" in form.content.decode()
    response = client.post(
        "/diagnostics/firmware/new/",
        {
            "name": "Spring update",
            "firmware_version": "2.1.0",
            "location": LOCATION,
            "retrieve_at": "",
            "charge_points": [chargers[0].pk, chargers[1].pk],
        },
    )
    campaign = FirmwareCampaign.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/diagnostics/firmware/{campaign.pk}/"
    assert campaign.created_by == operator_admin and campaign.targets.count() == 2
    client.post(f"/diagnostics/firmware/{campaign.pk}/start/")
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.RUNNING
    html = client.get(f"/diagnostics/firmware/{campaign.pk}/").content.decode()
    assert 'data-target="VW-FW-0"' in html and "Sent" in html
    assert "Spring update" in client.get("/diagnostics/firmware/").content.decode()


def test_campaign_form_refuses_another_operators_charger(login, operator_admin, other_charge_point):
    response = login(operator_admin).post(
        "/diagnostics/firmware/new/",
        {"name": "x", "location": LOCATION, "charge_points": [other_charge_point.pk]},
    )
    assert response.status_code == 400
    assert not FirmwareCampaign.objects.exists()


def test_technicians_see_campaigns_but_do_not_start_them(login, technician, operator, chargers, answers):
    campaign = firmware.campaign_create(
        operator=operator, name="c", location=LOCATION, charge_points=chargers
    )
    client = login(technician)
    assert client.get(f"/diagnostics/firmware/{campaign.pk}/").status_code == 200
    assert client.post(f"/diagnostics/firmware/{campaign.pk}/start/").status_code == 403
    assert client.get("/diagnostics/firmware/new/").status_code == 403
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DRAFT


def test_another_operators_campaign_is_404(login, other_operator_admin, operator, chargers, answers):
    campaign = firmware.campaign_create(
        operator=operator, name="Voltway only", location=LOCATION, charge_points=chargers
    )
    client = login(other_operator_admin)
    assert client.get(f"/diagnostics/firmware/{campaign.pk}/").status_code == 404
    assert client.post(f"/diagnostics/firmware/{campaign.pk}/start/").status_code == 404
    assert "Voltway only" not in client.get("/diagnostics/firmware/").content.decode()
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DRAFT
