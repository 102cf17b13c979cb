// The lab's pages: charts (uPlot) from each <script type="application/json" class="chart-data">, tables that
// sort, and under `lab serve` the running attempts' rows polled from /live/<run>.json. No request leaves the page's
// own folder or server.
"use strict";
(function () {
  var PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                 "#bcbd22", "#17becf"];
  var CELLS = 4e6;  // a chart whose series differ in x is joined on the union of x: at most about this many cells
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

  function decimated(xs, ys, cap) {  // every (len / cap)-th point, keeping the last
    if (xs.length <= cap) return [xs, ys];
    var step = xs.length / cap, kx = [], ky = [];
    for (var i = 0; i < cap; i++) { var j = Math.floor(i * step); kx.push(xs[j]); ky.push(ys[j]); }
    kx.push(xs[xs.length - 1]); ky.push(ys[ys.length - 1]);
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

  function panelData(data, panel, options) {
    var columns = panel.series.map(function (index) {
      var s = data.series[index], xs = s[options.x], ys = smooth(s.value, options.smoothing), kx = [], ky = [];
      for (var i = 0; i < xs.length; i++) {
        if (xs[i] === null || (options.log && !(ys[i] > 0))) continue;
        kx.push(xs[i]); ky.push(ys[i]);
      }
      return [kx, ky];
    }).filter(function (c) { return c[0].length; });
    return columns.length ? aligned(columns) : null;
  }

  function draw(section, data, options) {
    var holder = section.querySelector(".panels");
    (section.labPlots || []).forEach(function (plot) {
      window.labCharts.splice(window.labCharts.indexOf(plot), 1); plot.destroy();
    });
    holder.textContent = "";
    section.labPlots = [];
    var width = Math.max(320, Math.min(560, holder.clientWidth / 2 - 16));
    data.panels.forEach(function (panel) {
      var table = panelData(data, panel, options);
      if (!table) return;
      var box = document.createElement("div"), title = document.createElement("h3");
      box.className = "panel"; title.textContent = panel.title; box.appendChild(title); holder.appendChild(box);
      var series = [{label: options.x === "time" ? "time" : "step"}].concat(panel.series.map(function (index, k) {
        return {label: data.series[index].label, stroke: PALETTE[k % PALETTE.length], width: 1.5,
                spanGaps: true, points: {show: false}, show: !(options.hidden[data.series[index].label])};
      }));
      var plot = new uPlot({
        width: width, height: 260, series: series, scales: {x: {time: options.x === "time"},
        y: {distr: options.log ? 3 : 1}}, cursor: {drag: {x: true, y: false}}, legend: {live: true},
        hooks: {setSeries: [function (u, i) {
          if (i !== null) options.hidden[u.series[i].label] = !u.series[i].show;
        }]}
      }, table, box);
      plot.labPanel = panel.title;
      section.labPlots.push(plot); window.labCharts.push(plot);
    });
  }

  function setUp(section) {
    var data = JSON.parse(section.querySelector("script.chart-data").textContent);
    var options = {x: "step", smoothing: 0, log: false, hidden: {}};
    var redraw = function () { draw(section, data, options); };
    section.querySelector(".x-axis").addEventListener("change", function (e) { options.x = e.target.value; redraw(); });
    section.querySelector(".log-y").addEventListener("change", function (e) { options.log = e.target.checked; redraw(); });
    var slider = section.querySelector(".smoothing");
    slider.addEventListener("input", function () {
      options.smoothing = parseFloat(slider.value); slider.nextElementSibling.textContent = slider.value; redraw();
    });
    redraw();
    if (data.run && location.protocol.indexOf("http") === 0) poll(section, data, redraw);
  }

  function poll(section, data, redraw) {  // `lab serve`: the run's rows as they arrive, while an attempt runs
    var mark = document.createElement("p"), running = data.live;
    mark.className = "live";
    section.insertBefore(mark, section.firstChild);
    var fetchRows = function () {
      fetch("/live/" + encodeURIComponent(data.run) + ".json", {cache: "no-store"}).then(function (r) {
        return r.json();
      }).then(function (fresh) {
        data.panels = fresh.panels; data.series = fresh.series; redraw();
        if (fresh.live) { running = true; mark.textContent = "running: refreshed every 5 s"; }
        else { clearInterval(timer); mark.textContent = running ? "finished: reload for the whole page" : ""; }
      }).catch(function () {});
    };
    var timer = setInterval(fetchRows, 5000);
    fetchRows();
  }

  function cellKey(cell) {
    var text = cell.textContent.trim(), number = parseFloat(text);
    return /^-?[\d.]+(e[-+]?\d+)?%?$/i.test(text) && !isNaN(number) ? number : text.toLowerCase();
  }

  function sortable(table) {
    table.querySelectorAll("thead th").forEach(function (th, column) {
      th.addEventListener("click", function () {
        var up = th.getAttribute("aria-sort") !== "ascending", body = table.tBodies[0];
        table.querySelectorAll("thead th").forEach(function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", up ? "ascending" : "descending");
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = cellKey(a.cells[column]), y = cellKey(b.cells[column]);
          if (typeof x !== typeof y) { x = String(x); y = String(y); }
          return (x < y ? -1 : x > y ? 1 : 0) * (up ? 1 : -1);
        });
        rows.forEach(function (row) { body.appendChild(row); });
      });
    });
  }

  document.querySelectorAll("section.charts").forEach(setUp);
  document.querySelectorAll("table.sortable").forEach(sortable);
  window.labChartsDrawn = performance.now();
})();
