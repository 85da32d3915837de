// The app page's metrics card: fetches the series (apps/web/metrics.py) and draws them with
// uPlot; refreshed every 30 s while the tab is visible, at the sampler's own pace.
(function () {
  "use strict";
  var REFRESH_MS = 30000;
  var COLORS = ["#0550ae", "#a40e26", "#116329", "#7d4e00", "#8250df", "#424a53"];
  var root = document.getElementById("metrics");
  if (!root || typeof uPlot === "undefined") return;
  var envSelect = document.querySelector("[data-metrics-env]");
  var spanSelect = document.querySelector("[data-metrics-span]");
  var status = root.querySelector("[data-metrics-status]");
  var charts = {};

  function url() {
    var since = new Date(Date.now() - Number(spanSelect.value) * 1000).toISOString();
    return root.dataset.metricsUrl + "?environment=" + encodeURIComponent(envSelect.value) +
      "&since=" + encodeURIComponent(since);
  }

  function perContainer(data, field, scale) {
    return data.containers.map(function (c) {
      return {
        label: c.process + "." + c.replica,
        values: c[field].map(function (v) { return v === null ? null : v * scale; }),
      };
    });
  }

  function draw(name, times, lines) {
    var box = root.querySelector('[data-chart="' + name + '"]');
    var series = [{}].concat(lines.map(function (line, i) {
      return { label: line.label, stroke: COLORS[i % COLORS.length], spanGaps: false };
    }));
    var columns = [times].concat(lines.map(function (line) { return line.values; }));
    if (charts[name] && charts[name].series.length === series.length) {
      charts[name].setData(columns);
      return;
    }
    if (charts[name]) charts[name].destroy();
    var width = Math.max(280, box.clientWidth || 400);
    charts[name] = new uPlot({ width: width, height: 180, series: series }, columns, box);
  }

  function render(data) {
    status.textContent = data.times.length ? "" : "No samples yet.";
    draw("traffic", data.times, [
      { label: "requests", values: data.requests },
      { label: "5xx", values: data.errors_5xx },
    ]);
    draw("latency", data.times, [{ label: "ms", values: data.latency_ms }]);
    draw("cpu", data.times, perContainer(data, "cpu_percent", 1));
    draw("memory", data.times, perContainer(data, "memory_bytes", 1 / 1048576));
  }

  function load() {
    fetch(url(), { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) throw new Error("the metrics answered " + response.status);
        return response.json();
      })
      .then(render)
      .catch(function (error) { status.textContent = "Metrics unavailable: " + error.message; });
  }

  envSelect.addEventListener("change", load);
  spanSelect.addEventListener("change", load);
  setInterval(function () { if (document.visibilityState === "visible") load(); }, REFRESH_MS);
  load();
})();
