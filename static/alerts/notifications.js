/* ChargeDesk notifications: the nav's unread count on every page and, on the notification
 * centre, each new notification prepended as it comes, without a reload.
 *
 * The page marks what may change with data attributes:
 *   [data-unread-badge] / [data-unread-count]  the nav's bell count (hidden at 0)
 *   [data-notification-list]                   the centre's list (first page only)
 *   [data-mark-all]                            "Mark all read", shown while some are unread
 *   #notification-template                     one empty item, its parts marked data-field
 *   #notification-event-labels                 event type → label (JSON)
 * Notifications come over the WebSocket /ws/notifications/; it reconnects with a growing,
 * jittered delay, and after a reconnect the count is read again (some may have been missed).
 * No framework, no build step.
 */
(function () {
  "use strict";

  var MIN_RETRY_MS = 1000;
  var MAX_RETRY_MS = 30000;
  var UNREAD_URL = "/alerts/unread/";

  function all(selector) {
    return Array.prototype.slice.call(document.querySelectorAll(selector));
  }

  // --- The bell -------------------------------------------------------------------------------

  function currentCount() {
    var holder = document.querySelector("[data-unread-count]");
    var n = holder ? parseInt(holder.getAttribute("data-count") || holder.textContent, 10) : 0;
    return isNaN(n) ? 0 : n;
  }

  function setCount(n) {
    all("[data-unread-count]").forEach(function (holder) {
      holder.setAttribute("data-count", String(n));
      holder.textContent = n > 99 ? "99+" : String(n);
    });
    all("[data-mark-all]").forEach(function (form) { form.hidden = n <= 0; });
    all("[data-unread-badge]").forEach(function (badge) {
      badge.hidden = n <= 0;
      if (n > 0) {
        badge.classList.remove("is-updated");
        void badge.offsetWidth; // restart the animation
        badge.classList.add("is-updated");
      }
    });
  }

  function refreshCount() {
    fetch(UNREAD_URL, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) { if (data && typeof data.unread === "number") setCount(data.unread); })
      .catch(function () { /* the next notification brings the count */ });
  }

  // --- The list -------------------------------------------------------------------------------

  function safeUrl(url) {
    url = String(url || "");
    if (/^\/(?!\/)/.test(url) || /^https?:\/\//i.test(url)) return url;
    return "";
  }

  function two(n) { return (n < 10 ? "0" : "") + n; }

  function utcText(iso) {
    var d = new Date(iso);
    if (isNaN(d.getTime())) return "";
    return d.getUTCFullYear() + "-" + two(d.getUTCMonth() + 1) + "-" + two(d.getUTCDate()) +
      " " + two(d.getUTCHours()) + ":" + two(d.getUTCMinutes()) + " UTC";
  }

  var labels = null;

  function eventLabel(key) {
    if (labels === null) {
      var holder = document.getElementById("notification-event-labels");
      try { labels = holder ? JSON.parse(holder.textContent) : {}; } catch (e) { labels = {}; }
    }
    return labels[key] || key || "";
  }

  function field(item, name) {
    return item.querySelector('[data-field="' + name + '"]');
  }

  function prepend(msg) {
    var list = document.querySelector("[data-notification-list]");
    var template = document.getElementById("notification-template");
    if (!list || !template || !template.content) return;
    if (list.querySelector('[data-notification="' + msg.id + '"]')) return;
    var item = template.content.firstElementChild.cloneNode(true);
    item.setAttribute("data-notification", String(msg.id));
    field(item, "title").textContent = msg.title || "";
    field(item, "body").textContent = msg.body || "";
    var time = field(item, "time");
    time.setAttribute("datetime", msg.created_at || "");
    time.textContent = utcText(msg.created_at);
    field(item, "event").textContent = eventLabel(msg.event_type);
    var link = field(item, "link");
    var url = safeUrl(msg.url);
    if (url) { link.setAttribute("href", url); link.hidden = false; } else { link.remove(); }
    var id = field(item, "id");
    if (id) id.value = String(msg.id);
    var empty = list.querySelector("[data-notification-empty]");
    if (empty) empty.remove();
    list.insertBefore(item, list.firstElementChild);
    item.classList.add("is-updated");
  }

  function received(msg) {
    if (!msg || msg.type !== "notification") return;
    prepend(msg);
    // The in-app channel sends the recipient's unread count; without it, one more.
    setCount(typeof msg.unread === "number" ? msg.unread : currentCount() + 1);
  }

  // --- The socket -----------------------------------------------------------------------------

  var retryMs = MIN_RETRY_MS;
  var opened = false;

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket;
    try {
      socket = new WebSocket(scheme + window.location.host + "/ws/notifications/");
    } catch (e) {
      return;
    }
    document.documentElement.setAttribute("data-notifications-state", "connecting");
    socket.onopen = function () {
      document.documentElement.setAttribute("data-notifications-state", "open");
      if (opened) refreshCount();
      opened = true;
      retryMs = MIN_RETRY_MS;
    };
    socket.onmessage = function (event) {
      try { received(JSON.parse(event.data)); } catch (e) { /* not ours */ }
    };
    socket.onclose = function () {
      document.documentElement.setAttribute("data-notifications-state", "closed");
      var wait = retryMs * (0.75 + Math.random() * 0.5);
      retryMs = Math.min(retryMs * 2, MAX_RETRY_MS);
      window.setTimeout(connect, wait);
    };
  }

  if (document.querySelector("[data-unread-badge]")) connect();
})();
