"""A driver saves a card on "Payment & invoices" in a real browser: Stripe Elements as
localstripe's Stripe.js renders it, the SetupIntent confirmed at localstripe, the card kept on
the account and listed."""

import pytest

from billing.models import PaymentMethod
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.live]


def test_driver_saves_a_card_with_stripe_elements(
    localstripe, asgi_server, browser_page, csp_violations, driver
):
    page = browser_page
    problems = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(f"{asgi_server}/accounts/login/")
    page.fill("input[name=username]", driver.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url("**/account/")

    page.goto(f"{asgi_server}/billing/")
    assert "No saved card yet" in page.inner_text("main")
    # localstripe's card element: one plain input per field, named by its placeholder.
    element = page.locator("[data-card-element]")
    element.locator("input[placeholder=number]").fill("4242424242424242")
    element.locator("input[placeholder=exp_month]").fill("12")
    element.locator("input[placeholder=exp_year]").fill("31")
    element.locator("input[placeholder=cvc]").fill("123")
    element.locator("input[placeholder=postal_code]").fill("10115")
    page.click("[data-save-card]")

    page.wait_for_selector("tr[data-card='4242']")
    row = page.inner_text("tr[data-card='4242']")
    assert "Visa" in row and "Default" in row and "12/2031" in row
    assert "Card Visa •••• 4242 saved." in page.inner_text(".messages")
    # Stripe.js (here localstripe's stand-in) is the one origin the card page's policy adds.
    assert csp_violations == []
    saved = PaymentMethod.objects.get(user=driver)
    assert saved.stripe_id.startswith("pm_") and saved.is_default
    # No wallet button where the browser (and this Stripe.js) offers none.
    assert page.locator("[data-payment-request]").is_hidden()
    assert problems == []
