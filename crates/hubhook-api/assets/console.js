// hubhook console: the project's own script, small on purpose. Every page works without it;
// it adds live refresh, keeps the two poller editors in step, and asks before deleting.
(function () {
  "use strict";

  // Live refresh: an element with data-refresh="URL" gets that fragment again every 3 s,
  // unless the keyboard focus is inside it (so a refresh never steals focus).
  function refresh() {
    document.querySelectorAll("[data-refresh]").forEach(function (el) {
      if (el.contains(document.activeElement)) return;
      // A session that ended answers with a redirect to the sign-in page: not followed (its
      // page would land inside the table); the whole page reloads and shows the sign-in.
      fetch(el.getAttribute("data-refresh"), { credentials: "same-origin", redirect: "manual" })
        .then(function (r) {
          if (r.type === "opaqueredirect") { window.location.reload(); return null; }
          return r.ok ? r.text() : null;
        })
        .then(function (html) { if (html !== null && html !== el.innerHTML) el.innerHTML = html; })
        .catch(function () {});
    });
  }
  setInterval(refresh, 3000);

  document.addEventListener("DOMContentLoaded", function () {
    var summary = document.getElementById("form-errors");
    if (summary) summary.focus();

    var raw = document.getElementById("f-event-poller-configuration");
    var source = document.getElementById("poller-source");
    if (!raw || !source) return;
    var ticks = document.querySelectorAll("input[name=resource]");
    var fields = document.querySelectorAll("input[data-resource]");

    function parsed() { try { var v = JSON.parse(raw.value); return v && typeof v === "object" ? v : {}; } catch (e) { return null; } }
    function get(block, path) { return path.split(".").reduce(function (n, k) { return n && n[k]; }, block); }
    function set(block, path, value) {
      var keys = path.split("."), node = block;
      keys.slice(0, -1).forEach(function (k) { if (typeof node[k] !== "object" || !node[k]) node[k] = {}; node = node[k]; });
      node[keys[keys.length - 1]] = value;
    }

    // The per-resource editor changed: rewrite the JSON from it (keeping keys it does not show).
    function fromFields() {
      var config = parsed() || {};
      ticks.forEach(function (tick) {
        var r = tick.value;
        if (!tick.checked) { delete config[r]; return; }
        var block = config[r] && typeof config[r] === "object" ? config[r] : JSON.parse(tick.getAttribute("data-default"));
        fields.forEach(function (f) { if (f.getAttribute("data-resource") === r) set(block, f.getAttribute("data-path"), f.value.trim()); });
        config[r] = block;
      });
      raw.value = JSON.stringify(config, null, 2);
      source.value = "fields";
    }

    // The JSON changed: it wins; the ticks and fields follow when it parses.
    function fromRaw() {
      source.value = "raw";
      var config = parsed();
      if (!config) return;
      ticks.forEach(function (tick) {
        var block = config[tick.value];
        tick.checked = !!block;
        if (!block) block = JSON.parse(tick.getAttribute("data-default"));
        fields.forEach(function (f) {
          if (f.getAttribute("data-resource") !== tick.value) return;
          var v = get(block, f.getAttribute("data-path"));
          f.value = v === undefined || v === null ? "" : String(v);
        });
      });
    }

    ticks.forEach(function (t) { t.addEventListener("change", fromFields); });
    fields.forEach(function (f) { f.addEventListener("input", fromFields); });
    raw.addEventListener("input", fromRaw);
  });
})();
