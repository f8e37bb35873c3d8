// Live figures and charts of the flow page. Each server-sent "flow" event carries the latest
// sample: each element with data-figure="name" shows figure `name` (a dash when it cannot be
// read). Each "points" event carries the new point of each chart: the chart (data-chart="series",
// drawn by the server in the samples' own coordinates, see console/charts.py) gets it appended,
// its points older than its span dropped, its viewBox and caption moved on.
(function () {
  if (!document.querySelector("[data-figure]") || !window.EventSource) return;
  var live = document.getElementById("live");
  var source = new EventSource("/events");
  source.addEventListener("flow", function (event) {
    var figures = JSON.parse(event.data);
    if (live) live.textContent = figures.ready ? "updated " + new Date(figures.at * 1000).toLocaleTimeString() : "waiting for the first sample";
    addRows(figures, "topics", /^topic\.(.+)\.records$/, ["records", "rate", "out", "out_rate"], "topic.");
    addRows(figures, "partitions", /^part\.(.+)\.(\d+)\.in$/, ["in", "in_rate", "out", "out_rate", "lag"], "part.");
    document.querySelectorAll("[data-figure]").forEach(function (el) {
      var name = el.getAttribute("data-figure");
      if (!(name in figures)) return;
      var value = figures[name];
      el.textContent = value === null || value === undefined ? "-" : String(value);
    });
  });
  // each "points" event: {at, points: {series: value or null}}, the new point of each chart
  source.addEventListener("points", function (event) {
    var data = JSON.parse(event.data);
    if (typeof data.at !== "number") return;
    var at = data.at - data.origin;  // the charts' x: seconds since the console's start
    Object.keys(data.points).forEach(function (name) {
      var box = document.querySelector('[data-chart="' + CSS.escape(name) + '"]') || newChart(name);
      if (!box) return;
      var value = data.points[name];
      var kept = box.chartPoints || (box.chartPoints = readPoints(box));
      kept.push([at, typeof value === "number" ? value : null]);
      var span = parseFloat(box.getAttribute("data-span")) || 900;
      while (kept.length && !(kept[0][0] >= at - span)) kept.shift();  // a gap's NaN too
      draw(box, kept, at, span);
    });
  });
  var SVG = "http://www.w3.org/2000/svg";
  // the points the server drew: one polyline per stretch of known values, a gap between them
  function readPoints(box) {
    var out = [];
    box.querySelectorAll("polyline").forEach(function (line, i) {
      if (i) out.push([NaN, null]);
      (line.getAttribute("points") || "").trim().split(/\s+/).forEach(function (pair) {
        var xy = pair.split(",");
        if (xy.length === 2) out.push([parseFloat(xy[0]), -parseFloat(xy[1])]);
      });
    });
    return out;
  }
  function draw(box, kept, end, span) {
    var svg = box.querySelector("svg");
    svg.querySelectorAll("polyline").forEach(function (line) { line.remove(); });
    var top = 0, last = null, known = 0, stretch = [];
    function flush() {
      if (!stretch.length) return;
      var line = document.createElementNS(SVG, "polyline");
      line.setAttribute("points", stretch.join(" "));
      svg.appendChild(line);
      stretch = [];
    }
    kept.forEach(function (p) {
      if (p[1] === null) { flush(); return; }
      stretch.push(p[0].toFixed(1) + "," + (-p[1]));
      top = Math.max(top, p[1]); last = p[1]; known += 1;
    });
    flush();
    var height = (top || 1) * 1.1;
    svg.setAttribute("viewBox", (end - span).toFixed(1) + " " + (-height) + " " + span + " " + height);
    var caption = box.querySelector("figcaption");
    var title = box.getAttribute("data-title") || box.getAttribute("data-chart");
    caption.textContent = known >= 2 && last !== null
      ? title + ": " + last.toFixed(2) + (box.getAttribute("data-unit") || "") + " (max " + (top || 1).toFixed(2) + ")"
      : title + ": not enough samples yet";
  }
  // a chart of a topic or partition that appeared after the page was drawn (text only, never markup)
  function newChart(name) {
    var group = document.getElementById(/^(part|part_out):|^lag:.+\//.test(name) ? "partition-charts" : "charts");
    if (!group) return null;
    var box = document.createElement("figure");
    box.className = "chart";
    box.setAttribute("data-chart", name);
    box.setAttribute("data-span", "900");
    box.appendChild(document.createElementNS(SVG, "svg")).setAttribute("preserveAspectRatio", "none");
    box.appendChild(document.createElement("figcaption"));
    group.appendChild(box);
    return box;
  }
  // a topic or partition that appeared after the page was drawn gets its row (text only, never markup)
  function addRows(figures, tableId, pattern, whats, prefix) {
    var table = document.getElementById(tableId);
    if (!table) return;
    Object.keys(figures).sort().forEach(function (name) {
      var m = pattern.exec(name);
      if (!m || document.querySelector('[data-figure="' + CSS.escape(name) + '"]')) return;
      var where = m.slice(1).join(".");
      var row = table.insertRow(-1);
      row.insertCell(-1).textContent = m.slice(1).join("/");
      whats.forEach(function (what) {
        var span = document.createElement("span");
        span.className = "figure";
        span.setAttribute("data-figure", prefix + where + "." + what);
        row.insertCell(-1).appendChild(span);
      });
    });
  }
  source.onerror = function () { if (live) live.textContent = "reconnecting"; };
})();
