/* ChargeDesk browser notifications: the settings page's "Enable browser notifications".
 *
 * Registers the service worker (/sw.js, scope "/"), asks the push service for a subscription
 * with the server's VAPID public key, and hands it to the server; "Disable" ends it on both
 * sides. The page provides [data-push] with data-vapid-key, data-subscribe-url,
 * data-unsubscribe-url and a CSRF token inside it.
 */
(function () {
  "use strict";

  var root = document.querySelector("[data-push]");
  if (!root) return;
  var enable = root.querySelector("[data-push-enable]");
  var disable = root.querySelector("[data-push-disable]");
  var status = root.querySelector("[data-push-status]");

  function say(text) { status.textContent = text; }

  function show(subscribed) {
    enable.hidden = subscribed;
    disable.hidden = !subscribed;
  }

  function keyBytes(base64url) {
    var padded = (base64url + "===".slice((base64url.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
    var raw = window.atob(padded);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return bytes;
  }

  function post(url, data) {
    var token = root.querySelector("[name=csrfmiddlewaretoken]");
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": token ? token.value : "" },
      body: JSON.stringify(data),
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (body) {
        if (!response.ok) throw new Error((body.errors || ["The server refused the subscription."]).join(" "));
        return body;
      });
    });
  }

  function registration() {
    return navigator.serviceWorker.register("/sw.js", { scope: "/" }).then(function () {
      return navigator.serviceWorker.ready;
    });
  }

  function subscribe() {
    enable.disabled = true;
    say("Asking your browser…");
    Notification.requestPermission()
      .then(function (permission) {
        if (permission !== "granted") throw new Error("Notifications are blocked for this site in your browser's settings.");
        return registration();
      })
      .then(function (reg) {
        return reg.pushManager.subscribe({
          userVisibleOnly: true,
          applicationServerKey: keyBytes(root.getAttribute("data-vapid-key")),
        });
      })
      .then(function (subscription) {
        return post(root.getAttribute("data-subscribe-url"), subscription.toJSON());
      })
      .then(function () {
        show(true);
        say("Browser notifications are on for this browser.");
      })
      .catch(function (error) { say(error.message || String(error)); })
      .then(function () { enable.disabled = false; });
  }

  function unsubscribe() {
    disable.disabled = true;
    navigator.serviceWorker.getRegistration("/")
      .then(function (reg) { return reg ? reg.pushManager.getSubscription() : null; })
      .then(function (subscription) {
        if (!subscription) return null;
        var endpoint = subscription.endpoint;
        return subscription.unsubscribe().then(function () {
          return post(root.getAttribute("data-unsubscribe-url"), { endpoint: endpoint });
        });
      })
      .then(function () {
        show(false);
        say("Browser notifications are off for this browser.");
      })
      .catch(function (error) { say(error.message || String(error)); })
      .then(function () { disable.disabled = false; });
  }

  if (!("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window)) {
    enable.disabled = true;
    say("This browser cannot show notifications from websites.");
    return;
  }
  enable.addEventListener("click", subscribe);
  disable.addEventListener("click", unsubscribe);
  navigator.serviceWorker.getRegistration("/")
    .then(function (reg) { return reg ? reg.pushManager.getSubscription() : null; })
    .then(function (subscription) {
      show(Boolean(subscription));
      if (subscription) say("Browser notifications are on for this browser.");
    })
    .catch(function () { show(false); });
})();
