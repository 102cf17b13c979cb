// The lab's pages: charts (uPlot) from each <script type="application/json" class="chart-data">, tables that
// sort, and under `lab serve` (static/served.js says so) a running attempt's rows polled from live/<run>.json
// beside static/. No request leaves the page's own folder or server.
"use strict";
(function () {
  var PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                 "#bcbd22", "#17becf"];
  var CELLS = 4e6;  // a chart whose series differ in x is joined on the union of x: at most about this many cells
  var POLL_MS = 5000;
  var SITE_ROOT = new URL("../", document.currentScript.src);  // this script is static/site.js of the site
  window.labCharts = [];

  function smooth(values, weight) {  // exponential moving average, debiased as TensorBoard's smoothing
    if (!weight) return values;
    var out = new Array(values.length), last = 0, count = 0;
    for (var i = 0; i < values.length; i++) {
      var v = values[i];
      if (v === null || !isFinite(v)) { out[i] = v; continue; }
      last = last * weight + (1 - weight) * v; count++;
      out[i] = last / (1 - Math.pow(weight, count));
    }
    return out;
  }

  // At most about `cap` points: the lowest and the highest of each of cap / 2 equal runs of points, in order, and
  // the last point, so a spike survives (as charts.kept_positions keeps it in Python).
  function decimated(xs, ys, cap) {
    if (xs.length <= cap) return [xs, ys];
    var buckets = Math.max(1, Math.floor(cap / 2)), kx = [], ky = [];
    for (var b = 0; b < buckets; b++) {
      var start = Math.floor(b * xs.length / buckets), end = Math.floor((b + 1) * xs.length / buckets);
      var low = start, high = start;
      for (var i = start; i < end; i++) {
        if (ys[i] === null) continue;
        if (ys[low] === null || ys[i] < ys[low]) low = i;
        if (ys[high] === null || ys[i] > ys[high]) high = i;
      }
      var first = Math.min(low, high), second = Math.max(low, high);
      kx.push(xs[first]); ky.push(ys[first]);
      if (second !== first) { kx.push(xs[second]); ky.push(ys[second]); }
    }
    if (kx[kx.length - 1] !== xs[xs.length - 1]) { kx.push(xs[xs.length - 1]); ky.push(ys[ys.length - 1]); }
    return [kx, ky];
  }

  function sameX(columns) {
    var first = columns[0][0];
    return columns.every(function (c) {
      var xs = c[0];
      if (xs.length !== first.length) return false;
      for (var i = 0; i < xs.length; i++) if (xs[i] !== first[i]) return false;
      return true;
    });
  }

  function aligned(columns) {  // uPlot's data: [x, y1, y2, ...] over one x
    if (sameX(columns)) return [columns[0][0]].concat(columns.map(function (c) { return c[1]; }));
    var cap = Math.max(256, Math.floor(CELLS / (columns.length * columns.length)));
    return uPlot.join(columns.map(function (c) { var d = decimated(c[0], c[1], cap); return [d[0], d[1]]; }));
  }

  function panelData(data, panel, options) {  // {table: uPlot's data, indexes: the series drawn} or null
    var indexes = [], columns = [], logX = options.logX && options.x === "step";
    panel.series.forEach(function (index) {
      var s = data.series[index], xs = s[options.x], ys = smooth(s.value, options.smoothing), kx = [], ky = [];
      for (var i = 0; i < xs.length; i++) {
        if (xs[i] === null || (options.log && !(ys[i] > 0)) || (logX && !(xs[i] > 0))) continue;
        kx.push(xs[i]); ky.push(ys[i]);
      }
      if (kx.length) { indexes.push(index); columns.push([kx, ky]); }
    });
    return columns.length ? {table: aligned(columns), indexes: indexes} : null;
  }

  function arm(data, index) {  // what a legend click hides in every panel: the run (or attempt) of a series
    var s = data.series[index];
    return s.arm !== undefined ? s.arm : s.label;
  }

  function width(holder) { return Math.max(320, Math.min(560, holder.clientWidth / 2 - 16)); }

  function zoomOf(plot) {  // the x range the reader zoomed to, or null when the whole range is shown
    var xs = plot.data[0], x = plot.scales.x;
    return xs.length && (x.min > xs[0] || x.max < xs[xs.length - 1]) ? {min: x.min, max: x.max} : null;
  }

  function hideEverywhere(section, data, options, who, show) {
    options.hidden[who] = !show;
    section.labPlots.forEach(function (plot) {
      plot.labIndexes.forEach(function (index, k) {
        if (arm(data, index) === who && plot.series[k + 1].show !== show) plot.setSeries(k + 1, {show: show});
      });
    });
  }

  function newPlot(section, data, panel, drawn, options) {
    var holder = section.querySelector(".panels"), box = document.createElement("div");
    var title = document.createElement("h3");
    box.className = "panel"; title.textContent = panel.title; box.appendChild(title); holder.appendChild(box);
    var series = [{label: options.x === "time" ? "time" : "step"}].concat(drawn.indexes.map(function (index) {
      var k = panel.series.indexOf(index);
      return {label: data.series[index].label, stroke: PALETTE[k % PALETTE.length], width: 1.5,
              spanGaps: true, points: {show: false}, show: !options.hidden[arm(data, index)]};
    }));
    var plot = new uPlot({
      width: width(holder), height: 260, series: series,
      scales: {x: {time: options.x === "time", distr: options.logX && options.x === "step" ? 3 : 1}, y: {distr: options.log ? 3 : 1}},
      cursor: {drag: {x: true, y: false}}, legend: {live: true},
      hooks: {setSeries: [function (u, i) {
        if (i !== null && !section.labBusy) {
          section.labBusy = true;
          hideEverywhere(section, data, options, arm(data, u.labIndexes[i - 1]), u.series[i].show);
          section.labBusy = false;
        }
      }]}
    }, drawn.table, box);
    plot.labPanel = panel.title; plot.labIndexes = drawn.indexes;
    section.labPlots.push(plot); window.labCharts.push(plot);
    return plot;
  }

  function draw(section, data, options, zooms) {  // every panel anew; `zooms` {panel title: x range} kept
    var holder = section.querySelector(".panels");
    (section.labPlots || []).forEach(function (plot) {
      window.labCharts.splice(window.labCharts.indexOf(plot), 1); plot.destroy();
    });
    holder.textContent = "";
    section.labPlots = [];
    data.panels.forEach(function (panel) {
      var drawn = panelData(data, panel, options);
      if (!drawn) return;
      var plot = newPlot(section, data, panel, drawn, options), zoom = zooms && zooms[panel.title];
      if (zoom) plot.setScale("x", zoom);
    });
  }

  // New rows of the same series: each plot keeps its zoom and hidden series (setData without resetting a zoomed
  // x); a panel or series that came or went draws every panel again, zooms kept.
  function refresh(section, data, options) {
    var plots = section.labPlots, drawn = [], zooms = {};
    plots.forEach(function (plot) { zooms[plot.labPanel] = zoomOf(plot); });
    data.panels.forEach(function (panel) {
      var one = panelData(data, panel, options);
      if (one) drawn.push([panel, one]);
    });
    var same = drawn.length === plots.length && drawn.every(function (pair, k) {
      return plots[k].labPanel === pair[0].title && plots[k].labIndexes.join() === pair[1].indexes.join();
    });
    if (!same) return draw(section, data, options, zooms);
    drawn.forEach(function (pair, k) {
      var zoom = zooms[pair[0].title];
      plots[k].setData(pair[1].table, !zoom);
      if (zoom) plots[k].setScale("x", zoom);
    });
  }

  function setUp(section) {
    var data = JSON.parse(section.querySelector("script.chart-data").textContent);
    var options = {x: "step", smoothing: 0, log: false, logX: false, hidden: {}};
    var redraw = function () { draw(section, data, options); };
    section.querySelector(".x-axis").addEventListener("change", function (e) { options.x = e.target.value; redraw(); });
    section.querySelector(".log-y").addEventListener("change", function (e) { options.log = e.target.checked; redraw(); });
    section.querySelector(".log-x").addEventListener("change", function (e) { options.logX = e.target.checked; redraw(); });
    var slider = section.querySelector(".smoothing");
    slider.addEventListener("input", function () {
      options.smoothing = parseFloat(slider.value); slider.nextElementSibling.textContent = slider.value; redraw();
    });
    redraw();
    window.addEventListener("resize", function () {
      var size = width(section.querySelector(".panels"));
      section.labPlots.forEach(function (plot) { plot.setSize({width: size, height: 260}); });
    });
    if (data.run && data.live && window.labServed === true) poll(section, data, options);
  }

  function poll(section, data, options) {  // `lab serve`: the run's rows as they arrive, while an attempt runs
    var mark = document.createElement("p"), timer = null;
    mark.className = "live";
    mark.textContent = "running: refreshed every 5 s";
    section.insertBefore(mark, section.firstChild);
    var url = new URL("live/" + encodeURIComponent(data.run) + ".json", SITE_ROOT);
    var stop = function (text) { clearInterval(timer); mark.textContent = text; };
    var fetchRows = function () {
      fetch(url, {cache: "no-store"}).then(function (r) {
        if (!r.ok) throw new Error(r.status);
        return r.json();
      }).then(function (fresh) {
        data.panels = fresh.panels; data.series = fresh.series; refresh(section, data, options);
        if (!fresh.live) stop("finished: reload for the whole page");
      }).catch(function () { stop("no longer refreshed: the server did not answer"); });
    };
    timer = setInterval(fetchRows, POLL_MS);
  }

  var DURATION = /^(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+(?:\.\d+)?)s)?(?:\s|\(|$)/;

  function cellKey(cell) {  // [0, number] (numbers and durations, in seconds) before [1, text]
    var text = cell.textContent.trim();
    if (/^-?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?%?$/i.test(text)) return [0, parseFloat(text)];
    var d = DURATION.exec(text);
    if (d && (d[1] || d[2] || d[3])) return [0, (+d[1] || 0) * 3600 + (+d[2] || 0) * 60 + (+d[3] || 0)];
    return [1, text.toLowerCase()];
  }

  function compareKeys(x, y) {
    if (x[0] !== y[0]) return x[0] - y[0];
    return x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0;
  }

  function sortable(table) {
    table.querySelectorAll("thead th").forEach(function (th, column) {
      th.addEventListener("click", function () {
        var up = th.getAttribute("aria-sort") !== "ascending", body = table.tBodies[0];
        table.querySelectorAll("thead th").forEach(function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", up ? "ascending" : "descending");
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          return compareKeys(cellKey(a.cells[column]), cellKey(b.cells[column])) * (up ? 1 : -1);
        });
        rows.forEach(function (row) { body.appendChild(row); });
      });
    });
  }

  document.querySelectorAll("section.charts").forEach(setUp);
  document.querySelectorAll("table.sortable").forEach(sortable);
  window.labChartsDrawn = performance.now();
})();
