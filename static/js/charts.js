/* ChargeDesk charts: draws the diagnostics charts with Chart.js (static/vendor/chartjs).
 *
 * A chart is a <canvas data-chart="<id>"> whose data is in a json_script block of that id:
 *   {"kind": "uptime",   labels, values, target}         bars per charge point, the target line
 *   {"kind": "power",    connectors: [{number, points: [{x: ms, y: kW, peak}]}], start, end, max_kw, time_zone}
 *   {"kind": "timeline", rows: ["#1", ...], bands: [{row, from, to, kind, status}], start, end, time_zone}
 * No inline scripts (CSP): this file and the JSON blocks only. Times are milliseconds since
 * 1970 on linear axes, shown in the page's time zone, so no date adapter is needed.
 */
(function () {
  "use strict";

  var STATUS_COLOURS = {
    up: "#16a34a",
    down: "#dc2626",
    offline: "#334155",
    unknown: "#cbd5e1"
  };
  var LINE_COLOURS = ["#0f766e", "#2563eb", "#d97706", "#7c3aed", "#db2777", "#0891b2"];

  function readData(id) {
    var el = document.getElementById(id);
    if (!el) return null;
    try {
      return JSON.parse(el.textContent);
    } catch (e) {
      return null;
    }
  }

  function timeFormatter(timeZone, withDate) {
    var options = { hour: "2-digit", minute: "2-digit", hour12: false };
    if (withDate) {
      options.month = "short";
      options.day = "numeric";
    }
    try {
      options.timeZone = timeZone || "UTC";
      var fmt = new Intl.DateTimeFormat(undefined, options);
      return function (ms) { return fmt.format(new Date(ms)); };
    } catch (e) {
      return function (ms) { return new Date(ms).toISOString().slice(0, 16).replace("T", " "); };
    }
  }

  function timeAxis(data) {
    var long = (data.end - data.start) > 36 * 3600 * 1000;
    var short = timeFormatter(data.time_zone, long);
    return {
      type: "linear",
      min: data.start,
      max: data.end,
      ticks: { maxTicksLimit: 8, callback: function (value) { return short(value); } }
    };
  }

  // A dashed horizontal line at the target, across the whole plot (a line dataset of one
  // charge point would be a single point).
  var targetLine = {
    id: "targetLine",
    afterDatasetsDraw: function (chart, args, options) {
      if (options.value === undefined || options.value === null) return;
      var y = chart.scales.y.getPixelForValue(options.value);
      var area = chart.chartArea;
      var ctx = chart.ctx;
      ctx.save();
      ctx.strokeStyle = "#0f172a";
      ctx.lineWidth = 1.5;
      ctx.setLineDash([6, 4]);
      ctx.beginPath();
      ctx.moveTo(area.left, y);
      ctx.lineTo(area.right, y);
      ctx.stroke();
      ctx.setLineDash([]);
      ctx.fillStyle = "#0f172a";
      ctx.font = "12px system-ui, sans-serif";
      ctx.textAlign = "right";
      ctx.fillText(options.label || "", area.right - 4, y - 5);
      ctx.restore();
    }
  };

  function uptimeChart(canvas, data) {
    var lowest = Math.min.apply(null, data.values.concat([data.target]));
    return new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: [
          {
            label: "Uptime %",
            data: data.values,
            maxBarThickness: 56,
            backgroundColor: data.values.map(function (v) {
              return v >= data.target ? STATUS_COLOURS.up : STATUS_COLOURS.down;
            })
          }
        ]
      },
      plugins: [targetLine],
      options: {
        maintainAspectRatio: false,
        animation: false,
        scales: { y: { min: Math.max(0, Math.floor(lowest) - 3), max: 100, title: { display: true, text: "%" } } },
        plugins: {
          legend: { display: false },
          targetLine: { value: data.target, label: "target " + data.target + " %" }
        }
      }
    });
  }

  function powerChart(canvas, data) {
    var full = timeFormatter(data.time_zone, true);
    return new window.Chart(canvas, {
      type: "line",
      data: {
        datasets: data.connectors.map(function (c, i) {
          return {
            label: "#" + c.number + " kW",
            data: c.points,
            borderColor: LINE_COLOURS[i % LINE_COLOURS.length],
            backgroundColor: LINE_COLOURS[i % LINE_COLOURS.length],
            pointRadius: 0,
            borderWidth: 2,
            tension: 0.2
          };
        })
      },
      options: {
        maintainAspectRatio: false,
        animation: false,
        parsing: false,
        interaction: { mode: "nearest", intersect: false },
        scales: {
          x: timeAxis(data),
          y: { beginAtZero: true, suggestedMax: data.max_kw || undefined, title: { display: true, text: "kW" } }
        },
        plugins: {
          tooltip: {
            callbacks: {
              title: function (items) { return items.length ? full(items[0].parsed.x) : ""; },
              label: function (item) {
                return item.dataset.label + ": " + item.raw.y + " (peak " + item.raw.peak + ")";
              }
            }
          }
        }
      }
    });
  }

  function timelineChart(canvas, data) {
    var full = timeFormatter(data.time_zone, true);
    var kinds = ["up", "down", "offline", "unknown"];
    var names = { up: "Up", down: "Down", offline: "Offline", unknown: "No data" };
    var box = canvas.parentNode;
    if (box) box.style.height = Math.max(90, 44 * data.rows.length + 60) + "px";
    return new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: data.rows,
        datasets: kinds.map(function (kind) {
          return {
            label: names[kind],
            backgroundColor: STATUS_COLOURS[kind],
            borderSkipped: false,
            barPercentage: 0.8,
            categoryPercentage: 1,
            grouped: false,
            data: data.bands
              .filter(function (b) { return b.kind === kind; })
              .map(function (b) { return { y: b.row, x: [b.from, b.to], status: b.status }; })
          };
        })
      },
      options: {
        indexAxis: "y",
        maintainAspectRatio: false,
        animation: false,
        scales: { x: timeAxis(data), y: { stacked: true } },
        plugins: {
          tooltip: {
            callbacks: {
              label: function (item) {
                var raw = item.raw;
                return raw.status + ": " + full(raw.x[0]) + " – " + full(raw.x[1]);
              }
            }
          }
        }
      }
    });
  }

  var KINDS = { uptime: uptimeChart, power: powerChart, timeline: timelineChart };

  function init() {
    if (!window.Chart) return;
    Array.prototype.forEach.call(document.querySelectorAll("canvas[data-chart]"), function (canvas) {
      if (canvas.dataset.chartReady) return;
      var data = readData(canvas.dataset.chart);
      var draw = data && KINDS[data.kind];
      if (!draw) return;
      draw(canvas, data);
      canvas.dataset.chartReady = "1";
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
