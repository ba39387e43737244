/* ChargeDesk ad-hoc payment at a charger (EU AFIR): pay by card without an account.
 *
 * The page provides form[data-guest-pay] with data-stripe-key, data-checkout-url (POST
 * {email}: the PaymentIntent's client secret and a status URL) and a CSRF token, and loads
 * Stripe.js first. Stripe.js confirms the card payment (a hold, captured when charging ends);
 * the server starts the charger once the money is held, and this page polls until it has.
 */
(function () {
  "use strict";

  var form = document.querySelector("[data-guest-pay]");
  if (!form || typeof window.Stripe !== "function") return;
  var status = form.querySelector("[data-pay-status]");
  var pay = form.querySelector("[data-pay]");
  var stripe = window.Stripe(form.getAttribute("data-stripe-key"));
  var card = stripe.elements().create("card");
  card.mount(form.querySelector("[data-card-element]"));
  var POLL_MS = 2000;
  var POLL_FOR_MS = 3 * 60 * 1000;

  function say(text) { status.textContent = text; }

  function checkout(email) {
    var token = form.querySelector("[name=csrfmiddlewaretoken]");
    return fetch(form.getAttribute("data-checkout-url"), {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": token ? token.value : "" },
      body: JSON.stringify({ email: email }),
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (body) {
        if (!response.ok) throw new Error(body.error || "The payment could not be started (" + response.status + ").");
        return body;
      });
    });
  }

  function poll(url, until) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.json(); })
      .then(function (state) {
        say(state.message);
        status.setAttribute("data-state", state.state);
        if (state.state === "started" || state.state === "failed") return state;
        if (Date.now() > until) {
          say("Charging has not started yet. Check the charger, or reload this page: " + url);
          return state;
        }
        return new Promise(function (resolve) { setTimeout(resolve, POLL_MS); }).then(function () {
          return poll(url, until);
        });
      });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var email = form.querySelector("[name=email]").value.trim();
    if (!email) { say("Please enter your email for the receipt."); return; }
    pay.disabled = true;
    say("Paying…");
    checkout(email)
      .then(function (started) {
        return stripe
          .confirmCardPayment(started.client_secret, {
            payment_method: { card: card, billing_details: { email: email } },
            receipt_email: email,
          })
          .then(function (result) {
            if (result.error) throw new Error(result.error.message || "The card was not accepted.");
            say("Paid. Starting the charger…");
            return poll(started.status_url, Date.now() + POLL_FOR_MS);
          });
      })
      .then(function (state) {
        if (!state || state.state === "failed") pay.disabled = false;
      })
      .catch(function (error) {
        say(error.message || String(error));
        pay.disabled = false;
      });
  });
})();
