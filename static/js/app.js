/* Vínculo — small progressive enhancements. Everything works without this file. */
(function () {
  "use strict";
  var body = document.body;
  var serverMs = parseInt(body.getAttribute("data-server-epoch-ms") || "0", 10);
  var loadedAt = Date.now();

  // First-run setup: send the browser's clock so the node can compare it with its own.
  var clockForm = document.querySelector("[data-clock-form]");
  if (clockForm) {
    clockForm.addEventListener("submit", function () {
      var field = clockForm.querySelector("input[name=browser_time_ms]");
      if (field) { field.value = String(Date.now()); }
    });
  }

  // Coordinators: warn while this tablet's clock and the node's differ by more than the limit.
  if (body.getAttribute("data-clock-check") && serverMs) {
    var limit = parseInt(body.getAttribute("data-skew-warn-s") || "120", 10) * 1000;
    var warning = document.getElementById("clock-warning");
    if (warning && Math.abs(loadedAt - serverMs) > limit) { warning.hidden = false; }
  }

  // Idle lock: after the idle time with no touch, reload so the node shows the PIN screen
  // (the node decides; this only makes a forgotten tablet lock itself without a tap).
  var idle = parseInt(body.getAttribute("data-idle-s") || "0", 10);
  if (idle > 0) {
    var last = Date.now();
    ["pointerdown", "keydown", "touchstart"].forEach(function (ev) {
      document.addEventListener(ev, function () { last = Date.now(); }, { passive: true });
    });
    setInterval(function () {
      if (Date.now() - last >= (idle + 2) * 1000) { window.location.reload(); }
    }, 5000);
  }
})();
