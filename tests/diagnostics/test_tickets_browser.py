"""A technician on a phone: "My tickets" in a real browser at phone width, against the real
ASGI server: readable without sideways scrolling, a map link, and the status form works."""

import pytest

from diagnostics.models import Ticket, TicketStatus
from diagnostics.services import tickets
from tests.factories import PASSWORD, FaultRuleFactory, FindingFactory, IncidentFactory

pytestmark = [pytest.mark.browser, pytest.mark.live]


def test_technician_works_a_ticket_from_a_phone(asgi_server, browser_page, technician, charge_point):
    rule = FaultRuleFactory(
        error_code="GroundFailure",
        vendor_id="PhoneTest",
        title="Ground fault",
        tools=["Insulation tester"],
        spare_parts=["RCD type B 40 A"],
    )
    incident = IncidentFactory(charge_point=charge_point, rule=rule, title="Connector 1 ground failure")
    FindingFactory(incident=incident, summary="Connector 1 reported GroundFailure three times in an hour")
    ticket = tickets.ticket_create_from_incident(incident=incident)
    tickets.ticket_assign(ticket=ticket, assignee=technician)

    page = browser_page
    page.set_viewport_size({"width": 375, "height": 740})
    page.goto(f"{asgi_server}/accounts/login/?next=/diagnostics/my-tickets/")
    page.fill("input[name=username]", technician.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url("**/diagnostics/my-tickets/**")

    body = page.inner_text("body")
    assert "Connector 1 ground failure" in body
    assert "Insulation tester" in body and "RCD type B 40 A" in body
    assert "three times in an hour" in body
    # Nothing wider than the phone's screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    href = page.get_attribute("a.map-link", "href")
    assert href.startswith("https://www.openstreetmap.org/?mlat=52.370216&mlon=4.895168#map=18/")

    page.select_option(f"select[name=t{ticket.pk}-status]", "in_progress")
    page.fill(f"textarea[name=t{ticket.pk}-resolution_notes]", "On site, RCD tripped.")
    page.click(f"#ticket-{ticket.pk} button[type=submit]")
    page.wait_for_selector(".alert-success")
    ticket = Ticket.objects.get(pk=ticket.pk)
    assert ticket.status == TicketStatus.IN_PROGRESS
    assert ticket.resolution_notes == "On site, RCD tripped."
