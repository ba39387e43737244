/* ChargeDesk live view: keeps the dashboard and a charge point's page current without a reload.
 *
 * The page marks what may change with data attributes:
 *   [data-live]                         the root; data-live-url: the dashboard counts (JSON),
 *                                       data-live-charge-point: the charge point this page shows
 *   [data-tile="<key>"]                 a dashboard tile, refreshed from the counts
 *   [data-connector-status="<cp>:<n>"]  a connector's status badge (n = 0: the charge point)
 *   [data-connectivity="<cp>"]          online/offline with "seen …" (dashboard rows)
 *   [data-connectivity-badge="<cp>"]    online/offline badge (charge point page)
 *   [data-power="<cp>:<n>"], [data-energy="<cp>:<n>"]  a running session's power and energy
 * Events come over the WebSocket /ws/live/; it reconnects with a growing, jittered delay.
 * No framework, no build step.
 */
(function () {
  "use strict";

  var COUNTS_DELAY_MS = 800;   // status changes come in bursts: one counts refresh per burst
  var MIN_RETRY_MS = 1000;
  var MAX_RETRY_MS = 30000;

  function all(selector, root) {
    return Array.prototype.slice.call((root || document).querySelectorAll(selector));
  }

  function flash(el) {
    el.classList.remove("is-updated");
    void el.offsetWidth; // restart the animation
    el.classList.add("is-updated");
  }

  function statusClass(status) {
    return "badge-" + String(status || "unknown").toLowerCase().replace(/[^a-z0-9-]/g, "");
  }

  // --- What the events change -----------------------------------------------------------------

  function setConnectorStatus(msg) {
    var key = msg.charge_point_id + ":" + msg.connector_id;
    all('[data-connector-status="' + key + '"]').forEach(function (holder) {
      var old = holder.querySelector(".badge");
      var number = old ? old.querySelector(".badge-num") : null;
      var badge = document.createElement("span");
      badge.className = "badge " + statusClass(msg.status);
      if (old && old.classList.contains("is-stale")) {
        badge.classList.add("is-stale");
        badge.title = old.title;
      }
      if (number) badge.appendChild(number.cloneNode(true));
      badge.appendChild(document.createTextNode(msg.label || msg.status));
      holder.textContent = "";
      holder.appendChild(badge);
      flash(badge);
    });
    scheduleCounts();
  }

  function setConnectivity(chargePointId, online) {
    all('[data-connectivity="' + chargePointId + '"]').forEach(function (cell) {
      var conn = cell.querySelector(".conn");
      if (conn) {
        conn.className = "conn " + (online ? "conn-online" : "conn-offline");
        conn.textContent = "";
        var dot = document.createElement("span");
        dot.className = "dot";
        dot.setAttribute("aria-hidden", "true");
        conn.appendChild(dot);
        conn.appendChild(document.createTextNode(online ? "Online" : "Offline"));
        flash(conn);
      }
      var seen = cell.querySelector(".muted");
      if (seen && online) seen.textContent = "seen just now";
    });
    all('[data-connectivity-badge="' + chargePointId + '"]').forEach(function (holder) {
      var badge = document.createElement("span");
      badge.className = "badge " + (online ? "badge-online" : "badge-offline");
      badge.textContent = online ? "Online" : "Offline";
      holder.textContent = "";
      holder.appendChild(badge);
      flash(badge);
    });
    // A connector's status reported before its charge point went offline is shown as stale.
    all('[data-connector-status^="' + chargePointId + ':"] .badge').forEach(function (badge) {
      badge.classList.toggle("is-stale", !online);
      if (online) badge.removeAttribute("title");
      else badge.title = "Last reported before the charge point went offline";
    });
    scheduleCounts();
  }

  function setText(selector, text) {
    all(selector).forEach(function (el) {
      if (el.textContent !== text) {
        el.textContent = text;
        flash(el);
      }
    });
  }

  function setMeter(msg) {
    var key = msg.charge_point_id + ":" + msg.connector_id;
    if (msg.power_w !== null && msg.power_w !== undefined) {
      setText('[data-power="' + key + '"]', (msg.power_w / 1000).toFixed(1) + " kW");
    }
    if (msg.energy_kwh !== null && msg.energy_kwh !== undefined) {
      setText('[data-energy="' + key + '"]', Number(msg.energy_kwh).toFixed(2) + " kWh");
    }
  }

  function setSession(msg, running) {
    var key = msg.charge_point_id + ":" + msg.connector_id;
    setText('[data-power="' + key + '"]', "—");
    setText('[data-energy="' + key + '"]', running ? "0.00 kWh" : "—");
  }

  var handlers = {
    "connector.status_changed": setConnectorStatus,
    "charge_point.online": function (msg) { setConnectivity(msg.charge_point_id, true); },
    "charge_point.offline": function (msg) { setConnectivity(msg.charge_point_id, false); },
    "meter_values.recorded": setMeter,
    "session.started": function (msg) { setSession(msg, true); },
    "session.stopped": function (msg) { setSession(msg, false); }
  };

  // --- Dashboard tiles: counted on the server, fetched once per burst of changes --------------

  var root = document.querySelector("[data-live]");
  var countsTimer = null;

  function refreshCounts() {
    countsTimer = null;
    if (!root || !root.dataset.liveUrl || !document.querySelector("[data-tile]")) return;
    fetch(root.dataset.liveUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (counts) {
        if (!counts) return;
        Object.keys(counts).forEach(function (key) {
          all('[data-tile="' + key + '"]').forEach(function (tile) {
            var value = tile.querySelector(".tile-value");
            var text = String(counts[key]);
            if (value && value.textContent !== text) {
              value.textContent = text;
              tile.classList.toggle("is-nonzero", counts[key] > 0);
              flash(tile);
            }
          });
        });
      })
      .catch(function () { /* the next change or reconnect tries again */ });
  }

  function scheduleCounts() {
    if (countsTimer === null) countsTimer = window.setTimeout(refreshCounts, COUNTS_DELAY_MS);
  }

  // --- The socket -----------------------------------------------------------------------------

  var attempts = 0;
  var everOpened = false;

  function socketUrl() {
    var scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    var url = scheme + "//" + window.location.host + "/ws/live/";
    var chargePoint = root.dataset.liveChargePoint;
    return chargePoint ? url + "?charge_point=" + encodeURIComponent(chargePoint) : url;
  }

  function connect() {
    var socket;
    try {
      socket = new WebSocket(socketUrl());
    } catch (e) {
      retry();
      return;
    }
    socket.onopen = function () {
      // After a gap, what changed meanwhile is not replayed: refresh what can be refreshed.
      if (everOpened || attempts > 0) scheduleCounts();
      everOpened = true;
      attempts = 0;
      root.setAttribute("data-live-state", "open");
    };
    socket.onmessage = function (event) {
      var msg;
      try {
        msg = JSON.parse(event.data);
      } catch (e) {
        return;
      }
      var handle = msg && handlers[msg.event];
      if (handle) handle(msg);
    };
    socket.onclose = function () {
      root.setAttribute("data-live-state", "closed");
      retry();
    };
  }

  function retry() {
    var delay = Math.min(MAX_RETRY_MS, MIN_RETRY_MS * Math.pow(2, attempts));
    attempts += 1;
    window.setTimeout(connect, delay * (0.5 + Math.random() / 2));
  }

  if (root && "WebSocket" in window) connect();

  // --- Dashboard: select charge points for a command to many ----------------------------------

  var selectAll = document.querySelector("[data-select-all]");
  var counter = document.querySelector("[data-selected-count]");

  function boxes() {
    return all('input[type="checkbox"][name="charge_points"]');
  }

  function showSelected() {
    var chosen = boxes().filter(function (box) { return box.checked; }).length;
    if (counter) counter.textContent = chosen ? chosen + " selected" : "";
    if (selectAll) {
      selectAll.checked = chosen > 0 && chosen === boxes().length;
      selectAll.indeterminate = chosen > 0 && chosen < boxes().length;
    }
  }

  if (selectAll) {
    selectAll.addEventListener("change", function () {
      boxes().forEach(function (box) { box.checked = selectAll.checked; });
      showSelected();
    });
  }
  boxes().forEach(function (box) { box.addEventListener("change", showSelected); });
  showSelected();
})();
