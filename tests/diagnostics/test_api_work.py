"""The diagnostics work API: incidents, tickets, log uploads and firmware campaigns, for the
operator's staff only and never across operators."""

import pytest

from diagnostics.models import CampaignStatus, FirmwareCampaign, LogUpload, Ticket, TicketStatus
from diagnostics.services import firmware, tickets, uploads
from stations.models import Command, CommandStatus
from tests.factories import ChargePointFactory, FindingFactory, IncidentFactory, TicketFactory

pytestmark = pytest.mark.django_db
API = "/api/v1/diagnostics"


@pytest.fixture
def incident(charge_point):
    incident = IncidentFactory(charge_point=charge_point, title="Ground failure", kind="faulted")
    FindingFactory(incident=incident, summary="GroundFailure on connector 1")
    return incident


@pytest.fixture
def other_incident(other_charge_point):
    return IncidentFactory(charge_point=other_charge_point, title="Northgrid fault")


@pytest.fixture
def accepted(monkeypatch):
    def send(charge_point, action, payload, **kwargs):
        return Command.objects.create(
            charge_point=charge_point,
            action=action,
            payload=payload,
            status=CommandStatus.ACCEPTED,
            response={},
        )

    monkeypatch.setattr(uploads, "send_command", send)
    monkeypatch.setattr(
        firmware,
        "send_command_many",
        lambda cps, action, payload, **kw: [send(cp, action, payload) for cp in cps],
    )


def test_drivers_get_403_everywhere(api_as, driver):
    client = api_as(driver)
    for path in ("incidents/", "tickets/", "log-uploads/", "firmware-campaigns/"):
        assert client.get(f"{API}/{path}").status_code == 403
    assert client.post(f"{API}/log-uploads/", {"charge_point": "VW-0001"}).status_code == 403


def test_incidents_list_filter_and_detail_with_findings(api_as, technician, incident, other_incident, site):
    IncidentFactory(
        charge_point=incident.charge_point, kind="offline", status="resolved", title="Was offline"
    )
    client = api_as(technician)
    titles = {i["title"] for i in client.get(f"{API}/incidents/").json()["results"]}
    assert titles == {"Ground failure", "Was offline"}
    assert [i["title"] for i in client.get(f"{API}/incidents/?status=open").json()["results"]] == [
        "Ground failure"
    ]
    assert [i["title"] for i in client.get(f"{API}/incidents/?kind=offline").json()["results"]] == [
        "Was offline"
    ]
    assert len(client.get(f"{API}/incidents/?site={site.pk}").json()["results"]) == 2
    detail = client.get(f"{API}/incidents/{incident.pk}/").json()
    assert detail["charge_point"] == "VW-0001"
    assert [f["summary"] for f in detail["findings"]] == ["GroundFailure on connector 1"]
    assert client.get(f"{API}/incidents/{other_incident.pk}/").status_code == 404


def test_incident_list_query_count_does_not_grow(
    api_as, operator_admin, charge_point, django_assert_max_num_queries
):
    for _ in range(15):
        IncidentFactory(charge_point=charge_point)
    with django_assert_max_num_queries(6):
        assert len(api_as(operator_admin).get(f"{API}/incidents/").json()["results"]) == 15


def test_ticket_from_incident_assign_and_status(api_as, operator_admin, technician, incident):
    admin = api_as(operator_admin)
    created = admin.post(f"{API}/tickets/", {"incident": incident.pk})
    assert created.status_code == 201, created.json()
    ticket_id = created.json()["id"]
    assert created.json()["incident"] == incident.pk and created.json()["status"] == "open"
    assigned = admin.post(f"{API}/tickets/{ticket_id}/assign/", {"assignee": technician.pk})
    assert assigned.status_code == 200 and assigned.json()["assignee"] == technician.email
    tech = api_as(technician)
    moved = tech.post(f"{API}/tickets/{ticket_id}/status/", {"status": "in_progress"})
    assert moved.status_code == 200 and moved.json()["status"] == "in_progress"
    refused = tech.post(f"{API}/tickets/{ticket_id}/status/", {"status": "resolved"})
    assert refused.status_code == 400 and "resolution_notes" in refused.json()
    done = tech.post(
        f"{API}/tickets/{ticket_id}/status/", {"status": "resolved", "resolution_notes": "Fixed."}
    )
    assert done.json()["status"] == "resolved" and done.json()["resolved_at"]
    assert tech.post(f"{API}/tickets/{ticket_id}/status/", {"status": "open"}).status_code == 400


def test_ticket_by_hand_and_technicians_cannot_create(api_as, operator_admin, technician, charge_point):
    created = api_as(operator_admin).post(
        f"{API}/tickets/",
        {
            "title": "Replace the screen",
            "charge_point": "VW-0001",
            "priority": "warning",
            "spare_parts": ["Screen"],
        },
    )
    assert created.status_code == 201 and created.json()["spare_parts"] == ["Screen"]
    assert api_as(operator_admin).post(f"{API}/tickets/", {"priority": "warning"}).status_code == 400
    assert api_as(technician).post(f"{API}/tickets/", {"title": "x"}).status_code == 403


def test_tickets_never_cross_operators(
    api_as, operator_admin, other_operator_admin, incident, other_incident
):
    mine = tickets.ticket_create_from_incident(incident=incident)
    theirs = TicketFactory(charge_point=other_incident.charge_point, title="Northgrid ticket")
    client = api_as(operator_admin)
    assert [t["id"] for t in client.get(f"{API}/tickets/").json()["results"]] == [mine.pk]
    assert client.get(f"{API}/tickets/{theirs.pk}/").status_code == 404
    assert client.post(f"{API}/tickets/{theirs.pk}/status/", {"status": "cancelled"}).status_code == 404
    assert client.post(f"{API}/tickets/", {"incident": other_incident.pk}).status_code == 400
    assert client.post(f"{API}/tickets/", {"title": "x", "charge_point": "NG-0001"}).status_code == 400
    # Nor may a technician of another operator be assigned.
    from tests.factories import TechnicianFactory

    stranger = TechnicianFactory(operator=other_incident.operator)
    assert client.post(f"{API}/tickets/{mine.pk}/assign/", {"assignee": stranger.pk}).status_code == 400
    theirs.refresh_from_db()
    assert theirs.status == TicketStatus.OPEN
    assert Ticket.objects.filter(incident=other_incident).count() == 0


def test_log_upload_request_and_list(
    api_as, technician, charge_point, other_charge_point, accepted, settings
):
    settings.SITE_URL = "https://csms.example.com"
    client = api_as(technician)
    response = client.post(f"{API}/log-uploads/", {"charge_point": "VW-0001"})
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "requested" and body["download_url"] is None
    upload = LogUpload.objects.get()
    assert (
        upload.command.payload["location"] == f"https://csms.example.com/diagnostics/upload/{upload.token}/"
    )
    assert "token" not in body
    assert client.post(f"{API}/log-uploads/", {"charge_point": "NG-0001"}).status_code == 400
    listed = client.get(f"{API}/log-uploads/?charge_point=VW-0001").json()["results"]
    assert [u["id"] for u in listed] == [upload.pk]


def test_log_uploads_never_cross_operators(api_as, other_operator_admin, charge_point, accepted):
    upload = uploads.upload_request(charge_point=charge_point, base_url="http://testserver")
    client = api_as(other_operator_admin)
    assert client.get(f"{API}/log-uploads/").json()["results"] == []
    assert client.get(f"{API}/log-uploads/{upload.pk}/").status_code == 404


def test_firmware_campaign_create_start_and_detail(api_as, operator_admin, technician, site, accepted):
    cps = [ChargePointFactory(site=site, identity=f"VW-API-{n}") for n in range(2)]
    admin = api_as(operator_admin)
    created = admin.post(
        f"{API}/firmware-campaigns/",
        {
            "name": "2.1.0",
            "location": "https://fw.example.com/fw-2.1.0.bin",
            "charge_points": ["VW-API-0", "VW-API-1"],
        },
    )
    assert created.status_code == 201, created.json()
    campaign_id = created.json()["id"]
    assert created.json()["status"] == "draft"
    assert {t["status"] for t in created.json()["targets"]} == {"pending"}
    assert api_as(technician).post(f"{API}/firmware-campaigns/{campaign_id}/start/").status_code == 403
    admin = api_as(operator_admin)  # one client: authenticate as the admin again
    started = admin.post(f"{API}/firmware-campaigns/{campaign_id}/start/")
    assert started.status_code == 200
    assert started.json()["status"] == "running"
    assert {t["charge_point"]: t["status"] for t in started.json()["targets"]} == {
        "VW-API-0": "sent",
        "VW-API-1": "sent",
    }
    firmware.on_firmware_status(charge_point_id=cps[0].pk, status="Installed")
    detail = api_as(technician).get(f"{API}/firmware-campaigns/{campaign_id}/").json()
    assert detail["progress"] == {"total": 2, "done": 1, "installed": 1}
    assert api_as(operator_admin).post(f"{API}/firmware-campaigns/{campaign_id}/start/").status_code == 400


def test_firmware_campaigns_never_cross_operators(api_as, operator_admin, other_operator_admin, charge_point):
    bad = api_as(operator_admin).post(
        f"{API}/firmware-campaigns/",
        {"name": "x", "location": "https://fw.example.com/a.bin", "charge_points": ["VW-0001", "NG-0001"]},
    )
    assert bad.status_code == 400 and "NG-0001" in str(bad.json())
    campaign = firmware.campaign_create(
        operator=charge_point.operator,
        name="mine",
        location="https://fw.example.com/a.bin",
        charge_points=[charge_point],
    )
    other = api_as(other_operator_admin)
    assert other.get(f"{API}/firmware-campaigns/").json()["results"] == []
    assert other.post(f"{API}/firmware-campaigns/{campaign.pk}/start/").status_code == 404
    assert FirmwareCampaign.objects.get().status == CampaignStatus.DRAFT


def test_ticket_list_query_count_does_not_grow(
    api_as, operator_admin, charge_point, django_assert_max_num_queries
):
    for _ in range(15):
        TicketFactory(charge_point=charge_point, assignee=operator_admin)
    with django_assert_max_num_queries(6):
        assert len(api_as(operator_admin).get(f"{API}/tickets/").json()["results"]) == 15
