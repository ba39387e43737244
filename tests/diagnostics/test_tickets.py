"""Tickets: made from incidents (priority, tools, parts, evidence) or by hand, assigned to a
technician of the same operator, moved through their statuses; the pages, and their scoping."""

import pytest
from django.core.exceptions import ValidationError

from config import events
from diagnostics.models import Ticket, TicketStatus
from diagnostics.services import tickets
from tests.factories import (
    FaultRuleFactory,
    FindingFactory,
    IncidentFactory,
    TechnicianFactory,
    TicketFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def incident(charge_point):
    rule = FaultRuleFactory(
        error_code="GroundFailure",
        vendor_id="TestVendor",
        title="Ground fault",
        severity="critical",
        recommended_action="Check the RCD and the cable insulation.",
        tools=["Insulation tester", "Torque wrench"],
        spare_parts=["Type 2 cable 5 m"],
    )
    incident = IncidentFactory(
        charge_point=charge_point,
        connector=charge_point.connectors.get(connector_id=1),
        severity="critical",
        title="Connector 1 ground failure",
        rule=rule,
        evidence={"error_code": "GroundFailure", "vendor_error_code": "E42"},
    )
    FindingFactory(incident=incident, summary="Connector 1 reported GroundFailure (E42)")
    return incident


@pytest.fixture
def other_ticket(other_charge_point):
    return TicketFactory(charge_point=other_charge_point, title="Northgrid work")


@pytest.fixture
def published(monkeypatch):
    seen = []
    monkeypatch.setattr(events, "_deliver", lambda name, data: seen.append((name, data)))
    return seen


# --- Services ----------------------------------------------------------------------------------


def test_ticket_from_incident_takes_priority_tools_parts_and_evidence(incident, operator_admin):
    ticket = tickets.ticket_create_from_incident(incident=incident, created_by=operator_admin)
    assert ticket.status == TicketStatus.OPEN
    assert ticket.priority == "critical"
    assert ticket.title == "Connector 1 ground failure"
    assert ticket.tools == ["Insulation tester", "Torque wrench"]
    assert ticket.spare_parts == ["Type 2 cable 5 m"]
    assert ticket.charge_point == incident.charge_point and ticket.incident == incident
    assert ticket.operator_id == incident.operator_id
    assert "VW-0001" in ticket.description
    assert "E42" in ticket.description
    assert "Check the RCD" in ticket.description
    assert "Connector 1 reported GroundFailure (E42)" in ticket.description


def test_ticket_from_a_resolved_incident_is_refused(incident):
    incident.status = "resolved"
    incident.save()
    with pytest.raises(ValidationError):
        tickets.ticket_create_from_incident(incident=incident)


def test_ticket_from_another_operators_incident_is_refused(incident, other_operator_admin):
    with pytest.raises(ValidationError):
        tickets.ticket_create_from_incident(incident=incident, created_by=other_operator_admin)


def test_ticket_by_hand_needs_a_title_and_own_charge_point(operator, other_charge_point):
    with pytest.raises(ValidationError) as error:
        tickets.ticket_create(operator=operator, title="  ")
    assert "title" in error.value.message_dict
    with pytest.raises(ValidationError) as error:
        tickets.ticket_create(operator=operator, title="Fix", charge_point=other_charge_point)
    assert "charge_point" in error.value.message_dict
    ticket = tickets.ticket_create(operator=operator, title="Paint the bollards", tools="Brush\n\nPaint\n")
    assert ticket.tools == ["Brush", "Paint"]


def test_assign_publishes_the_event_and_moves_to_assigned(
    incident, technician, published, django_capture_on_commit_callbacks
):
    ticket = tickets.ticket_create_from_incident(incident=incident)
    with django_capture_on_commit_callbacks(execute=True):
        ticket = tickets.ticket_assign(ticket=ticket, assignee=technician)
    assert ticket.status == TicketStatus.ASSIGNED
    assert ticket.assignee == technician and ticket.assigned_at is not None
    assert published == [
        (
            "diagnostics.ticket_assigned",
            {
                "ticket_id": ticket.pk,
                "operator_id": ticket.operator_id,
                "assignee_id": technician.pk,
                "charge_point_id": incident.charge_point_id,
            },
        )
    ]


def test_a_technician_of_another_operator_cannot_be_assigned(
    incident, other_operator, published, django_capture_on_commit_callbacks
):
    ticket = tickets.ticket_create_from_incident(incident=incident)
    stranger = TechnicianFactory(operator=other_operator)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ValidationError) as error:
        tickets.ticket_assign(ticket=ticket, assignee=stranger)
    assert "assignee" in error.value.message_dict
    ticket.refresh_from_db()
    assert ticket.assignee is None and ticket.status == TicketStatus.OPEN
    assert published == []


def test_full_flow_with_timestamps_and_resolution_notes(incident, technician):
    ticket = tickets.ticket_create_from_incident(incident=incident)
    ticket = tickets.ticket_assign(ticket=ticket, assignee=technician)
    ticket = tickets.ticket_set_status(ticket=ticket, status=TicketStatus.IN_PROGRESS, by=technician)
    assert ticket.status == TicketStatus.IN_PROGRESS and ticket.resolved_at is None
    with pytest.raises(ValidationError) as error:
        tickets.ticket_set_status(ticket=ticket, status=TicketStatus.RESOLVED, by=technician)
    assert "resolution_notes" in error.value.message_dict
    ticket = tickets.ticket_set_status(
        ticket=ticket, status=TicketStatus.RESOLVED, resolution_notes="Replaced the cable.", by=technician
    )
    assert ticket.status == TicketStatus.RESOLVED
    assert ticket.resolved_at is not None and ticket.resolution_notes == "Replaced the cable."


@pytest.mark.parametrize(
    ("start", "target"),
    [
        (TicketStatus.OPEN, TicketStatus.IN_PROGRESS),
        (TicketStatus.OPEN, TicketStatus.RESOLVED),
        (TicketStatus.RESOLVED, TicketStatus.IN_PROGRESS),
        (TicketStatus.CANCELLED, TicketStatus.OPEN),
        (TicketStatus.ASSIGNED, TicketStatus.OPEN),
    ],
)
def test_illegal_transitions_are_refused(charge_point, technician, start, target):
    ticket = TicketFactory(charge_point=charge_point, status=start, assignee=technician)
    with pytest.raises(ValidationError) as error:
        tickets.ticket_set_status(ticket=ticket, status=target, resolution_notes="x")
    assert "status" in error.value.message_dict
    ticket.refresh_from_db()
    assert ticket.status == start


def test_a_technician_only_moves_their_own_tickets_and_assigns_none(charge_point, technician, operator):
    colleague = TechnicianFactory(operator=operator)
    ticket = TicketFactory(charge_point=charge_point, status=TicketStatus.ASSIGNED, assignee=colleague)
    with pytest.raises(ValidationError):
        tickets.ticket_set_status(ticket=ticket, status=TicketStatus.IN_PROGRESS, by=technician)
    with pytest.raises(ValidationError):
        tickets.ticket_assign(ticket=ticket, assignee=technician, by=technician)
    ticket.refresh_from_db()
    assert ticket.assignee == colleague


def test_cancelling_an_open_ticket_and_assigning_a_closed_one(charge_point, technician):
    ticket = TicketFactory(charge_point=charge_point)
    ticket = tickets.ticket_set_status(ticket=ticket, status=TicketStatus.CANCELLED)
    assert ticket.status == TicketStatus.CANCELLED and ticket.resolved_at is not None
    with pytest.raises(ValidationError):
        tickets.ticket_assign(ticket=ticket, assignee=technician)


# --- Pages -------------------------------------------------------------------------------------


def test_incident_page_shows_findings_evidence_and_creates_a_ticket(login, operator_admin, incident):
    client = login(operator_admin)
    page = client.get(f"/diagnostics/incidents/{incident.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Connector 1 reported GroundFailure (E42)" in html
    assert "vendor_error_code" in html and "E42" in html
    assert "Create ticket" in html
    response = client.post(f"/diagnostics/incidents/{incident.pk}/ticket/")
    ticket = Ticket.objects.get(incident=incident)
    assert response.status_code == 302 and response["Location"] == f"/diagnostics/tickets/{ticket.pk}/"
    assert ticket.created_by == operator_admin


def test_ticket_list_and_detail_with_assign_and_status_forms(login, operator_admin, technician, incident):
    ticket = tickets.ticket_create_from_incident(incident=incident)
    client = login(operator_admin)
    listing = client.get("/diagnostics/tickets/").content.decode()
    assert f"T-{ticket.pk}" in listing
    detail = client.get(f"/diagnostics/tickets/{ticket.pk}/").content.decode()
    assert "data-assign-form" in detail and "Insulation tester" in detail
    client.post(f"/diagnostics/tickets/{ticket.pk}/assign/", {"assignee": technician.pk})
    ticket.refresh_from_db()
    assert ticket.assignee == technician and ticket.status == TicketStatus.ASSIGNED
    client.post(f"/diagnostics/tickets/{ticket.pk}/status/", {"status": "resolved", "resolution_notes": ""})
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.ASSIGNED  # resolving needs notes
    client.post(
        f"/diagnostics/tickets/{ticket.pk}/status/", {"status": "resolved", "resolution_notes": "Reset RCD."}
    )
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.RESOLVED and ticket.resolution_notes == "Reset RCD."


def test_ticket_created_by_hand_on_the_list_page(login, operator_admin, charge_point):
    client = login(operator_admin)
    response = client.post(
        "/diagnostics/tickets/new/",
        {"title": "Clean the display", "priority": "info", "charge_point": charge_point.pk, "tools": "Cloth"},
    )
    ticket = Ticket.objects.get(title="Clean the display")
    assert response.status_code == 302
    assert ticket.tools == ["Cloth"] and ticket.operator == charge_point.operator


def test_my_tickets_page_for_the_phone(login, technician, incident):
    ticket = tickets.ticket_create_from_incident(incident=incident)
    tickets.ticket_assign(ticket=ticket, assignee=technician)
    client = login(technician)
    html = client.get("/diagnostics/my-tickets/").content.decode()
    assert 'name="viewport"' in html
    assert incident.site.full_address in html
    assert "https://www.openstreetmap.org/?mlat=52.370216&amp;mlon=4.895168#map=18/52.370216/4.895168" in html
    assert "Insulation tester" in html and "Type 2 cable 5 m" in html
    assert "Connector 1 reported GroundFailure (E42)" in html
    assert f'name="t{ticket.pk}-status"' in html and f'name="t{ticket.pk}-resolution_notes"' in html
    assert "<iframe" not in html and "tile.openstreetmap" not in html
    response = client.post(
        f"/diagnostics/my-tickets/{ticket.pk}/",
        {f"t{ticket.pk}-status": "in_progress", f"t{ticket.pk}-resolution_notes": "On site."},
    )
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.IN_PROGRESS and ticket.resolution_notes == "On site."


def test_nav_has_a_tickets_link_for_staff_only(login, technician, operator_admin, driver):
    assert 'href="/diagnostics/my-tickets/"' in login(technician).get("/dashboard/").content.decode()
    assert 'href="/diagnostics/tickets/"' in login(operator_admin).get("/dashboard/").content.decode()


def test_technicians_cannot_create_or_assign(login, technician, incident):
    client = login(technician)
    assert client.post(f"/diagnostics/incidents/{incident.pk}/ticket/").status_code == 403
    ticket = TicketFactory(charge_point=incident.charge_point)
    assert (
        client.post(f"/diagnostics/tickets/{ticket.pk}/assign/", {"assignee": technician.pk}).status_code
        == 403
    )
    assert not Ticket.objects.filter(incident=incident).exists()


def test_drivers_get_403(login, driver, incident):
    client = login(driver)
    for url in (
        "/diagnostics/tickets/",
        "/diagnostics/my-tickets/",
        f"/diagnostics/incidents/{incident.pk}/",
    ):
        assert client.get(url).status_code == 403


def test_another_operators_incidents_and_tickets_are_404_on_pages(
    login, operator_admin, other_ticket, other_charge_point, technician
):
    other_incident = IncidentFactory(charge_point=other_charge_point)
    client = login(operator_admin)
    assert client.get(f"/diagnostics/incidents/{other_incident.pk}/").status_code == 404
    assert client.post(f"/diagnostics/incidents/{other_incident.pk}/ticket/").status_code == 404
    assert client.get(f"/diagnostics/tickets/{other_ticket.pk}/").status_code == 404
    assert (
        client.post(
            f"/diagnostics/tickets/{other_ticket.pk}/assign/", {"assignee": technician.pk}
        ).status_code
        == 404
    )
    assert (
        client.post(f"/diagnostics/tickets/{other_ticket.pk}/status/", {"status": "cancelled"}).status_code
        == 404
    )
    assert "Northgrid work" not in client.get("/diagnostics/tickets/?status=all").content.decode()
    other_ticket.refresh_from_db()
    assert other_ticket.status == TicketStatus.OPEN and other_ticket.assignee is None


def test_my_tickets_query_count_does_not_grow(login, technician, charge_point, django_assert_max_num_queries):
    for _ in range(8):
        incident = IncidentFactory(charge_point=charge_point)
        FindingFactory(incident=incident)
        FindingFactory(incident=incident)
        TicketFactory(charge_point=charge_point, incident=incident, assignee=technician, status="assigned")
    client = login(technician)
    with django_assert_max_num_queries(12):
        html = client.get("/diagnostics/my-tickets/").content.decode()
    assert html.count('class="card ticket-card"') == 8
