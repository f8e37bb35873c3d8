// Live figures of the flow page: each server-sent "flow" event carries the latest sample; each
// element with data-figure="name" shows figure `name` (a dash when it cannot be read).
(function () {
  if (!document.querySelector("[data-figure]") || !window.EventSource) return;
  var live = document.getElementById("live");
  var source = new EventSource("/events");
  source.addEventListener("flow", function (event) {
    var figures = JSON.parse(event.data);
    if (live) live.textContent = figures.ready ? "updated " + new Date(figures.at * 1000).toLocaleTimeString() : "waiting for the first sample";
    document.querySelectorAll("[data-figure]").forEach(function (el) {
      var name = el.getAttribute("data-figure");
      if (!(name in figures)) return;
      var value = figures[name];
      el.textContent = value === null || value === undefined ? "-" : String(value);
    });
  });
  source.onerror = function () { if (live) live.textContent = "reconnecting"; };
})();
