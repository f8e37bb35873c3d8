// Live figures of the flow page: each server-sent "flow" event carries the latest sample; each
// element with data-figure="name" shows figure `name` (a dash when it cannot be read).
(function () {
  if (!document.querySelector("[data-figure]") || !window.EventSource) return;
  var live = document.getElementById("live");
  var source = new EventSource("/events");
  source.addEventListener("flow", function (event) {
    var figures = JSON.parse(event.data);
    if (live) live.textContent = figures.ready ? "updated " + new Date(figures.at * 1000).toLocaleTimeString() : "waiting for the first sample";
    addTopicRows(figures);
    document.querySelectorAll("[data-figure]").forEach(function (el) {
      var name = el.getAttribute("data-figure");
      if (!(name in figures)) return;
      var value = figures[name];
      el.textContent = value === null || value === undefined ? "-" : String(value);
    });
  });
  // a topic created after the page was drawn gets its row (text only, never markup)
  function addTopicRows(figures) {
    var table = document.getElementById("topics");
    if (!table) return;
    Object.keys(figures).sort().forEach(function (name) {
      var m = /^topic\.(.+)\.records$/.exec(name);
      if (!m || document.querySelector('[data-figure="' + CSS.escape(name) + '"]')) return;
      var row = table.insertRow(-1);
      row.insertCell(-1).textContent = m[1];
      ["records", "rate"].forEach(function (what) {
        var span = document.createElement("span");
        span.className = "figure";
        span.setAttribute("data-figure", "topic." + m[1] + "." + what);
        row.insertCell(-1).appendChild(span);
      });
    });
  }
  source.onerror = function () { if (live) live.textContent = "reconnecting"; };
})();
