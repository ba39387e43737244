/* ChargeDesk energy and revenue reports: the chart (Chart.js from static/vendor/chartjs) and
 * the progress bar of a report job.
 *
 * Chart: <canvas data-report-chart="<id>"> with its data in a json_script block of that id:
 *   {"kind": "report", per, labels, energy_kwh: [..], revenue: [{currency, values: [..]}]}
 * energy as bars on the left axis, revenue per currency as lines on the right.
 * Job: <section data-job-poll="<url>" data-job-status="<status>"> polls the URL (JSON: status,
 * progress, error, csv_url, pdf_url) until the job is done or failed.
 * No inline scripts (CSP): this file and the JSON blocks only.
 */
(function () {
  "use strict";

  var ENERGY_COLOUR = "#93c5fd";
  var LINE_COLOURS = ["#0f766e", "#d97706", "#7c3aed", "#db2777"];
  var POLL_MS = 1000;

  function readData(id) {
    var el = document.getElementById(id);
    if (!el) return null;
    try {
      return JSON.parse(el.textContent);
    } catch (e) {
      return null;
    }
  }

  function drawChart(canvas, data) {
    var datasets = [
      {
        type: "bar",
        label: "Energy (kWh)",
        data: data.energy_kwh,
        backgroundColor: ENERGY_COLOUR,
        yAxisID: "energy",
        order: 2
      }
    ];
    data.revenue.forEach(function (r, i) {
      datasets.push({
        type: "line",
        label: "Revenue (" + r.currency + ")",
        data: r.values,
        borderColor: LINE_COLOURS[i % LINE_COLOURS.length],
        backgroundColor: LINE_COLOURS[i % LINE_COLOURS.length],
        yAxisID: "revenue",
        tension: 0.2,
        pointRadius: data.labels.length > 40 ? 0 : 3,
        order: 1
      });
    });
    return new window.Chart(canvas, {
      data: { labels: data.labels, datasets: datasets },
      options: {
        maintainAspectRatio: false,
        animation: false,
        interaction: { mode: "index", intersect: false },
        scales: {
          energy: { type: "linear", position: "left", beginAtZero: true, title: { display: true, text: "kWh" } },
          revenue: {
            type: "linear",
            position: "right",
            beginAtZero: true,
            grid: { drawOnChartArea: false },
            title: { display: true, text: data.revenue.map(function (r) { return r.currency; }).join(", ") || "revenue" }
          }
        }
      }
    });
  }

  function initCharts() {
    if (!window.Chart) return;
    Array.prototype.forEach.call(document.querySelectorAll("canvas[data-report-chart]"), function (canvas) {
      if (canvas.dataset.chartReady) return;
      var data = readData(canvas.dataset.reportChart);
      if (!data || data.kind !== "report") return;
      drawChart(canvas, data);
      canvas.dataset.chartReady = "1";
    });
  }

  function show(el, visible) {
    if (el) el.hidden = !visible;
  }

  function pollJob(box) {
    var url = box.dataset.jobPoll;
    var bar = box.querySelector("[data-job-progress]");
    var percent = box.querySelector("[data-job-percent]");
    var statusText = box.querySelector("[data-job-status-text]");
    var error = box.querySelector("[data-job-error]");
    var links = box.querySelector("[data-job-links]");
    var names = { queued: "Queued", running: "Running", done: "Done", failed: "Failed" };

    function apply(job) {
      box.dataset.jobStatus = job.status;
      if (bar) bar.value = job.progress;
      if (percent) percent.textContent = job.progress + " %";
      if (statusText) statusText.textContent = names[job.status] || job.status;
      if (error) {
        error.textContent = job.error || "";
        show(error, !!job.error);
      }
      if (job.status === "done" && links) {
        if (job.csv_url) links.querySelector("[data-job-csv]").href = job.csv_url;
        if (job.pdf_url) links.querySelector("[data-job-pdf]").href = job.pdf_url;
        show(links, true);
      }
    }

    function tick() {
      fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" })
        .then(function (r) {
          if (!r.ok) throw new Error("HTTP " + r.status);
          return r.json();
        })
        .then(function (job) {
          apply(job);
          if (job.status !== "done" && job.status !== "failed") window.setTimeout(tick, POLL_MS);
        })
        .catch(function () {
          window.setTimeout(tick, POLL_MS * 5);
        });
    }

    tick();
  }

  function init() {
    initCharts();
    Array.prototype.forEach.call(document.querySelectorAll("[data-job-poll]"), pollJob);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
