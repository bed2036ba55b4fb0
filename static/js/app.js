/* Vínculo — small progressive enhancements. Everything works without this file. */
(function () {
  "use strict";
  var body = document.body;
  var serverMs = parseInt(body.getAttribute("data-server-epoch-ms") || "0", 10);
  var loadedAt = Date.now();

  // "Print" buttons (the sync receipt): the browser's print dialog; the page has a print style.
  document.addEventListener("click", function (ev) {
    var button = ev.target.closest ? ev.target.closest("[data-print]") : null;
    if (button) { window.print(); }
  });

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

  // Read-window timers: the clock lives on the server; the browser only counts down from the
  // server's times (offset measured from the server time sent with each page or partial).
  var offset = serverMs ? serverMs - loadedAt : 0;
  var soundOn = false;
  try { soundOn = window.localStorage.getItem("vinculo-sound") === "on"; } catch (e) { soundOn = false; }
  var audio = null;

  function beep(times) {
    if (!soundOn) { return; }
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      for (var i = 0; i < times; i++) {
        var osc = audio.createOscillator(), gain = audio.createGain();
        osc.frequency.value = times > 1 ? 440 : 880;
        osc.connect(gain); gain.connect(audio.destination);
        var t = audio.currentTime + i * 0.35;
        gain.gain.setValueAtTime(0.25, t); gain.gain.exponentialRampToValueAtTime(0.001, t + 0.3);
        osc.start(t); osc.stop(t + 0.3);
      }
    } catch (e) { /* no audio: text and icon still announce */ }
  }

  function fmt(ms) {
    var s = Math.max(0, Math.round(ms / 1000)), m = Math.floor(s / 60);
    s = s % 60;
    return m + ":" + (s < 10 ? "0" : "") + s;
  }

  var LABELS = {
    developing: body.getAttribute("data-t-developing") || "Developing",
    ready: body.getAttribute("data-t-ready") || "Ready to read",
    too_late: body.getAttribute("data-t-too-late") || "Too late",
    left: body.getAttribute("data-t-left") || "left"
  };
  var ICONS = { developing: "◔", ready: "✔", too_late: "✖" };  // in every common font

  function announce(text) {
    var live = document.querySelector("[data-announcer]");
    if (live) { live.textContent = text; }
  }

  var seen = {};

  function tick() {
    var now = Date.now() + offset;
    var timers = document.querySelectorAll(".timer[data-opens]");
    for (var i = 0; i < timers.length; i++) {
      var el = timers[i];
      var opens = parseInt(el.getAttribute("data-opens"), 10), closes = parseInt(el.getAttribute("data-closes"), 10);
      var state = now < opens ? "developing" : (now > closes ? "too_late" : "ready");
      var time = el.querySelector(".timer__time");
      if (time) {
        time.textContent = state === "developing" ? fmt(opens - now) : (state === "ready" ? fmt(closes - now) + " " + LABELS.left : "");
      }
      // The last state seen per device survives htmx swaps: a poll that brings a device in its new
      // state is announced like a countdown that reaches it.
      var key = el.getAttribute("data-key") || "";
      var before = key && Object.prototype.hasOwnProperty.call(seen, key) ? seen[key] : el.getAttribute("data-state");
      if (key) { seen[key] = state; }
      if (el.getAttribute("data-state") !== state) {
        el.setAttribute("data-state", state);
        el.className = "timer timer--" + state;
        var lab = el.querySelector(".timer__label"), ico = el.querySelector(".timer__icon");
        if (lab) { lab.textContent = LABELS[state]; }
        if (ico) { ico.textContent = ICONS[state]; }
      }
      if (before !== state) {
        var row = el.closest("tr, .device");
        var who = row ? (row.querySelector(".callnum") || {}).textContent || "" : "";
        announce((who ? who + ": " : "") + LABELS[state]);
        beep(state === "too_late" ? 3 : 1);
      }
    }
  }

  function resync(root) {
    var holder = root && root.querySelector ? (root.hasAttribute && root.hasAttribute("data-server-epoch-ms") ? root : root.querySelector("[data-server-epoch-ms]")) : null;
    if (holder) {
      var ms = parseInt(holder.getAttribute("data-server-epoch-ms"), 10);
      if (ms) { offset = ms - Date.now(); }
    }
    tick();
  }

  document.addEventListener("htmx:afterSwap", function (ev) { resync(ev.detail && ev.detail.elt); });
  setInterval(tick, 1000);
  tick();

  // Sound needs one tap (browsers block audio until a gesture).
  function paintSound() {
    var buttons = document.querySelectorAll("[data-sound-toggle]");
    for (var i = 0; i < buttons.length; i++) {
      buttons[i].textContent = soundOn ? buttons[i].getAttribute("data-on") : buttons[i].getAttribute("data-off");
      buttons[i].setAttribute("aria-pressed", soundOn ? "true" : "false");
    }
  }
  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest ? ev.target.closest("[data-sound-toggle]") : null;
    if (!btn) { return; }
    soundOn = !soundOn;
    try { window.localStorage.setItem("vinculo-sound", soundOn ? "on" : "off"); } catch (e) { /* private mode */ }
    paintSound();
    beep(1);
  });
  paintSound();
})();
