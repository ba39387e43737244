/* ChargeDesk's service worker (served as /sw.js, scope "/"): shows a web push as a system
 * notification and opens its page when it is clicked. The push carries JSON
 * {title, body, url, tag}; a newer push with the same tag replaces the older notification. */
"use strict";

self.addEventListener("install", function () {
  self.skipWaiting();
});

self.addEventListener("activate", function (event) {
  event.waitUntil(self.clients.claim());
});

self.addEventListener("push", function (event) {
  var data = {};
  if (event.data) {
    try { data = event.data.json(); } catch (e) { data = { body: event.data.text() }; }
  }
  var title = data.title || "ChargeDesk";
  var options = {
    body: data.body || "",
    tag: data.tag || undefined,
    data: { url: data.url || "/alerts/" },
    icon: "/static/img/favicon.svg",
  };
  event.waitUntil(self.registration.showNotification(title, options));
});

self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  var target = new URL((event.notification.data && event.notification.data.url) || "/alerts/", self.location.origin);
  event.waitUntil(
    self.clients.matchAll({ type: "window", includeUncontrolled: true }).then(function (windows) {
      for (var i = 0; i < windows.length; i++) {
        if (windows[i].url === target.href && "focus" in windows[i]) return windows[i].focus();
      }
      return self.clients.openWindow ? self.clients.openWindow(target.href) : null;
    })
  );
});
