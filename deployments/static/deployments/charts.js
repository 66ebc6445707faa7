/* Metrics charts, the drift bar chart and the dashboard's sparklines, drawn with the vendored
 * uPlot from the console's JSON (the metrics and drift APIs, the dashboard's sparkline
 * document). A static file: the Content-Security-Policy forbids inline scripts. Each chart
 * keeps its point count and last timestamp in data attributes, which the browser tests read. */
(function () {
  "use strict";

  var METRICS_EVERY_MS = 5000;
  var DRIFT_EVERY_MS = 30000;
  var SPARKLINES_EVERY_MS = 15000;
  var COLORS = {
    requests_per_s: "#1d6fb8",
    errors_per_s: "#b42318",
    latency_p50_ms: "#0f7a36",
    latency_p99_ms: "#7c3aed"
  };

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (response.status === 401 || response.status === 403) {
          window.location.reload();
          return Promise.reject(new Error("logged out"));
        }
        return response.json().then(function (body) {
          if (!response.ok) return Promise.reject(new Error(body.detail || "HTTP " + response.status));
          return body;
        });
      });
  }

  function columns(points) {
    return [points.map(function (p) { return p[0]; }), points.map(function (p) { return p[1]; })];
  }

  function formatNumber(v) {
    if (v === null || v === undefined) return "";
    if (Math.abs(v) >= 100) return v.toFixed(0);
    if (Math.abs(v) >= 1) return v.toFixed(2);
    return v.toPrecision(2);
  }

  function width(element) {
    return Math.max(200, Math.floor(element.getBoundingClientRect().width || 300));
  }

  // The deployment page's Metrics panel.
  function metricsPanel(section) {
    var select = document.getElementById("metrics-window");
    var note = document.getElementById("metrics-note");
    var charts = {};

    function draw(body) {
      section.querySelectorAll("figure[data-series]").forEach(function (figure) {
        var key = figure.dataset.series;
        var data = columns(body.series[key] || []);
        var holder = figure.querySelector(".chart");
        if (!charts[key]) {
          charts[key] = new uPlot({
            width: width(holder),
            height: 160,
            legend: { show: false },
            scales: { y: { range: function (u, min, max) { return [0, Math.max(max * 1.1, 1e-3)]; } } },
            series: [{}, { stroke: COLORS[key], width: 2, fill: COLORS[key] + "22", points: { show: true, size: 4 } }],
            axes: [{}, { size: 50, values: function (u, ticks) { return ticks.map(formatNumber); } }]
          }, data, holder);
        } else {
          charts[key].setData(data);
        }
        var n = data[0].length;
        figure.dataset.points = String(n);
        figure.dataset.last = n ? String(data[0][n - 1]) : "";
        figure.querySelector(".last").textContent = n ? formatNumber(data[1][n - 1]) : "no data yet";
      });
      section.dataset.step = String(body.step_s);
      section.dataset.updated = String(Date.now());
    }

    function refresh() {
      getJSON(section.dataset.metricsUrl + "?window=" + encodeURIComponent(select.value))
        .then(function (body) {
          draw(body);
          note.textContent = "Prediction requests as serving counts them, " + body.step_s +
            " s per point, updating every 5 seconds.";
        })
        .catch(function (error) { note.textContent = "Metrics cannot be shown now: " + error.message; });
    }

    select.addEventListener("change", refresh);
    refresh();
    setInterval(refresh, METRICS_EVERY_MS);
  }

  // The deployment page's Drift panel: PSI per feature as bars, and a table.
  function driftPanel(section) {
    var note = document.getElementById("drift-note");
    var holder = document.getElementById("drift-chart");
    var tbody = section.querySelector("#drift-table tbody");
    var chart = null;

    function draw(body) {
      var features = body.features || [];
      tbody.textContent = "";
      features.forEach(function (f) {
        var row = tbody.insertRow();
        row.dataset.feature = f.name;
        row.dataset.drifted = f.drifted ? "true" : "false";
        [f.name, formatNumber(f.psi), f.p_value.toExponential(2), f.drifted ? "yes" : "no"].forEach(function (text) {
          row.insertCell().textContent = text;
        });
        if (f.drifted) row.classList.add("drifted");
      });
      if (chart) { chart.destroy(); chart = null; }
      holder.dataset.bars = String(features.length);
      if (!features.length) {
        note.textContent = body.detail || "No logged inputs to compare yet.";
        return;
      }
      note.textContent = "Logged inputs of the last 24 hours (" + body.rows + " rows) against the " +
        "version's reference rows: population stability index per feature; red bars are drifted.";
      var xs = features.map(function (f, i) { return i; });
      var bars = uPlot.paths.bars({ size: [0.6, 80] });
      chart = new uPlot({
        width: width(holder),
        height: 180,
        legend: { show: false },
        cursor: { show: false },
        scales: { x: { time: false, range: [-0.5, features.length - 0.5] }, y: { range: function (u, min, max) { return [0, Math.max(max * 1.1, 0.3)]; } } },
        series: [{}, {
          paths: bars,
          points: { show: false },
          fill: "#1d6fb8aa",
          stroke: "#1d6fb8"
        }],
        axes: [
          { splits: function () { return xs; }, values: function () { return features.map(function (f) { return f.name; }); } },
          { size: 50 }
        ],
        hooks: {
          draw: [function (u) {
            // Drifted features in red, drawn over their bars.
            var ctx = u.ctx;
            features.forEach(function (f, i) {
              if (!f.drifted) return;
              var x0 = u.valToPos(i - 0.3, "x", true);
              var x1 = u.valToPos(i + 0.3, "x", true);
              var y0 = u.valToPos(0, "y", true);
              var y1 = u.valToPos(f.psi, "y", true);
              ctx.fillStyle = "#b42318";
              ctx.fillRect(x0, y1, x1 - x0, y0 - y1);
            });
          }]
        }
      }, [xs, features.map(function (f) { return f.psi; })], holder);
    }

    function refresh() {
      getJSON(section.dataset.driftUrl).then(draw)
        .catch(function (error) { note.textContent = "Drift cannot be shown now: " + error.message; });
    }

    refresh();
    setInterval(refresh, DRIFT_EVERY_MS);
  }

  // The dashboard's Traffic panel: one sparkline of requests/s per running deployment.
  function trafficPanel(section) {
    var tbody = section.querySelector("#traffic-table tbody");
    var lines = {};

    function draw(body) {
      var seen = {};
      body.deployments.forEach(function (d) {
        seen[d.name] = true;
        var row = tbody.querySelector('tr[data-deployment="' + CSS.escape(d.name) + '"]');
        if (!row) {
          row = tbody.insertRow();
          row.dataset.deployment = d.name;
          var name = row.insertCell();
          var link = document.createElement("a");
          link.href = "/deployments/" + encodeURIComponent(d.name) + "/";
          link.textContent = d.name;
          name.appendChild(link);
          row.insertCell().className = "sparkline";
          row.insertCell().className = "rate";
          row.insertCell().className = "drift";
        }
        var data = columns(d.requests_per_s);
        var cell = row.querySelector(".sparkline");
        if (!lines[d.name]) {
          lines[d.name] = new uPlot({
            width: 180, height: 36,
            legend: { show: false }, cursor: { show: false },
            axes: [{ show: false }, { show: false }],
            scales: {
              // The whole hour, so a young deployment's few points sit at the right end.
              x: { time: true, range: function () { var now = Date.now() / 1000; return [now - 3600, now]; } },
              y: { range: function (u, min, max) { return [0, Math.max(max * 1.3, 1e-3)]; } }
            },
            series: [{}, {
              stroke: COLORS.requests_per_s, width: 1.5, fill: "#1d6fb822",
              points: { show: true, size: 4, fill: COLORS.requests_per_s }
            }]
          }, data, cell);
        } else {
          lines[d.name].setData(data);
        }
        cell.dataset.points = String(data[0].length);
        var n = data[1].length;
        row.querySelector(".rate").textContent = n ? formatNumber(data[1][n - 1]) + " req/s" : "no traffic yet";
        var flag = row.querySelector(".drift");
        flag.textContent = d.drifted.length ? "drift: " + d.drifted.join(", ") : "";
        flag.classList.toggle("drift-flag", d.drifted.length > 0);
      });
      Array.prototype.slice.call(tbody.rows).forEach(function (row) {
        if (!seen[row.dataset.deployment]) {
          if (lines[row.dataset.deployment]) lines[row.dataset.deployment].destroy();
          delete lines[row.dataset.deployment];
          row.remove();
        }
      });
      section.hidden = body.deployments.length === 0;
    }

    function refresh() {
      getJSON(section.dataset.sparklinesUrl).then(draw).catch(function () {});
    }

    refresh();
    setInterval(refresh, SPARKLINES_EVERY_MS);
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (typeof uPlot === "undefined") return;
    var metrics = document.getElementById("metrics");
    if (metrics) metricsPanel(metrics);
    var drift = document.getElementById("drift");
    if (drift) driftPanel(drift);
    var traffic = document.getElementById("traffic-overview");  // the dashboard's, not a deployment's panel
    if (traffic) trafficPanel(traffic);
  });
})();
