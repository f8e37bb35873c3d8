// Live figures and charts of the flow page. Each server-sent "flow" event carries the latest
// sample: each element with data-figure="name" shows figure `name` (a dash when it cannot be
// read). Each "charts" event carries the charts redrawn by the server (series -> SVG markup,
// drawn and escaped there): each element with data-chart="series" gets its new chart.
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
  source.addEventListener("charts", function (event) {
    var drawn = JSON.parse(event.data);
    Object.keys(drawn).forEach(function (name) {
      var box = document.querySelector('[data-chart="' + CSS.escape(name) + '"]');
      if (!box) {  // a topic or partition that appeared after the page was drawn
        var group = document.getElementById(/^(part|part_out):|^lag:.+\//.test(name) ? "partition-charts" : "charts");
        if (!group) return;
        box = document.createElement("div");
        box.className = "chart";
        box.setAttribute("data-chart", name);
        group.appendChild(box);
      }
      box.innerHTML = drawn[name];
    });
  });
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
