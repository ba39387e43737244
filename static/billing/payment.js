/* ChargeDesk "Add a card": Stripe Elements with a SetupIntent.
 *
 * The page provides [data-add-card] with data-stripe-key, data-setup-url (POST: a SetupIntent's
 * client secret), data-attach-url (POST {payment_method}: keep the saved card), data-done-url
 * and a CSRF token inside it, and loads Stripe.js before this file. The card number never
 * reaches our server: Stripe.js sends it to Stripe, we get the payment method's id.
 * Wallets (Apple Pay, Google Pay) show as a Payment Request button where the browser has one.
 */
(function () {
  "use strict";

  var root = document.querySelector("[data-add-card]");
  if (!root || typeof window.Stripe !== "function") return;
  var status = root.querySelector("[data-card-status]");
  var save = root.querySelector("[data-save-card]");
  var stripe = window.Stripe(root.getAttribute("data-stripe-key"));
  var elements = stripe.elements();
  var card = elements.create("card", { hidePostalCode: false });
  card.mount(root.querySelector("[data-card-element]"));

  function say(text) { status.textContent = text; }

  function post(url, data) {
    var token = root.querySelector("[name=csrfmiddlewaretoken]");
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": token ? token.value : "" },
      body: JSON.stringify(data || {}),
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (body) {
        if (!response.ok) throw new Error(body.error || "The server refused (" + response.status + ").");
        return body;
      });
    });
  }

  function secret() {
    return post(root.getAttribute("data-setup-url")).then(function (body) { return body.client_secret; });
  }

  function keep(paymentMethod) {
    var id = typeof paymentMethod === "string" ? paymentMethod : paymentMethod.id;
    return post(root.getAttribute("data-attach-url"), { payment_method: id });
  }

  function done() {
    say("Card saved.");
    window.location.assign(root.getAttribute("data-done-url"));
  }

  save.addEventListener("click", function () {
    save.disabled = true;
    say("Saving your card…");
    secret()
      .then(function (clientSecret) {
        return stripe.confirmCardSetup(clientSecret, { payment_method: { card: card } });
      })
      .then(function (result) {
        if (result.error) throw new Error(result.error.message || "The card was not accepted.");
        return keep(result.setupIntent.payment_method);
      })
      .then(done)
      .catch(function (error) {
        say(error.message || String(error));
        save.disabled = false;
      });
  });

  // Wallets: only where Stripe.js offers the Payment Request API and the browser can pay.
  if (typeof stripe.paymentRequest !== "function") return;
  var request = stripe.paymentRequest({
    country: root.getAttribute("data-country") || "NL",
    currency: (root.getAttribute("data-currency") || "eur").toLowerCase(),
    total: { label: "Save a card for charging", amount: 0, pending: true },
  });
  request.canMakePayment().then(function (result) {
    if (!result) return;
    var holder = root.querySelector("[data-payment-request]");
    elements.create("paymentRequestButton", { paymentRequest: request }).mount(holder);
    holder.hidden = false;
  });
  request.on("paymentmethod", function (event) {
    say("Saving your wallet's card…");
    secret()
      .then(function (clientSecret) {
        return stripe.confirmCardSetup(clientSecret, { payment_method: event.paymentMethod.id }, { handleActions: false });
      })
      .then(function (result) {
        if (result.error) {
          event.complete("fail");
          throw new Error(result.error.message || "The wallet's card was not accepted.");
        }
        event.complete("success");
        return keep(result.setupIntent.payment_method);
      })
      .then(done)
      .catch(function (error) { say(error.message || String(error)); });
  });
})();
