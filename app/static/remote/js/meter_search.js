/* The meter search of the Remote and Meter Reading/Setting pages: search by number, show the customer and the
   live status (meter_status_changed), and hand the chosen meter to the page (window.RM.onMeter). */
(function () {
  "use strict";

  var $ = function (id) { return document.getElementById(id); };
  var root = document.querySelector("[data-rm-page]");
  var input = $("rm-search");
  var list = $("rm-results");
  var meter = null;
  var listeners = [];
  var timer = null;

  function statusHtml(online) {
    return '<span class="hes-status ' + (online ? "on" : "off") + '"><span class="hes-dot ' + (online ? "on" : "off") + '"></span>' +
      HES.escape(online ? HES.t("Online") : HES.t("Offline")) + "</span>";
  }

  function fact(label, value) {
    return "<div><dt>" + HES.escape(label) + "</dt><dd>" + (value == null || value === "" ? '<span class="text-muted">—</span>' : value) + "</dd></div>";
  }

  function paintCard() {
    var m = meter;
    var c = m.customer || {};
    $("rm-card").hidden = false;
    $("rm-number").textContent = m.number;
    $("rm-status").innerHTML = statusHtml(m.online);
    $("rm-facts").innerHTML = [
      fact(HES.t("Customer"), HES.escape(c.name || "")),
      fact(HES.t("Account"), HES.escape(c.account_number || "")),
      fact(HES.t("Address"), HES.escape(c.address || "")),
      fact(HES.t("Phone"), HES.escape(c.phone || "")),
      fact(HES.t("Brand"), HES.escape(m.brand.title)),
      fact(HES.t("Area"), HES.escape(m.area || "")),
      fact(HES.t("Mode"), m.comm_mode === "dial_in" ? HES.escape(HES.t("Dials in"))
        : HES.escape(HES.t("Dial-out (SIM {sim})", { sim: m.sim ? m.sim.ip_address + ":" + m.sim.port : "—" }))),
      fact(HES.t("Last seen"), m.last_seen ? HES.escape(HES.formatTime(m.last_seen)) + '<span class="hes-sub">' + HES.ago(m.last_seen) + "</span>" : ""),
      fact(HES.t("Relay"), HES.escape(HES.t(HES.word(m.relay_state || "unknown")))),
      fact(HES.t("Credit"), m.credit_balance == null ? "" : HES.escape(Number(m.credit_balance).toLocaleString(HES.locale, { minimumFractionDigits: 2, maximumFractionDigits: 2 }))),
      fact(HES.t("Firmware"), HES.escape(m.firmware_version || ""))
    ].join("");
  }

  function select(id) {
    return HES.api("/api/v1/meterlookup/" + id).then(function (data) {
      meter = data.result;
      paintCard();
      Array.prototype.forEach.call(list.querySelectorAll("a"), function (a) { a.classList.toggle("active", a.getAttribute("data-id") == id); });
      var url = new URL(window.location.href);
      url.searchParams.set("meter", id);
      window.history.replaceState(null, "", url.toString());
      listeners.forEach(function (fn) { fn(meter); });
      return meter;
    }).catch(function (error) { HES.toast(HES.t("Could not load the meter: {error}", { error: error.message }), "danger"); });
  }

  function search() {
    var q = input.value.trim();
    if (!q) { list.innerHTML = ""; return; }
    HES.api(HES.withParams("/api/v1/meterlookup/search", { q: q, area: root.getAttribute("data-area") || "" })).then(function (data) {
      var rows = data.result || [];
      if (!rows.length) {
        list.innerHTML = '<li class="text-muted" style="padding:8px 10px">' + HES.escape(HES.t("No meter matches “{q}”.", { q: q })) + "</li>";
        return;
      }
      list.innerHTML = rows.map(function (m) {
        return '<li><a href="#" data-id="' + m.id + '"><span class="hes-dot ' + (m.online ? "on" : "off") + '"></span><span><b>' +
          HES.escape(m.number) + '</b><span class="rm-sub">' + HES.escape(m.customer || m.brand) + "</span></span></a></li>";
      }).join("");
      if (rows.length === 1 || rows[0].number === q) select(rows[0].id);
    });
  }

  input.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(search, 250); });
  input.addEventListener("keydown", function (e) { if (e.key === "Enter") { e.preventDefault(); clearTimeout(timer); search(); } });
  list.addEventListener("click", function (e) {
    var a = e.target.closest("a[data-id]");
    if (!a) return;
    e.preventDefault();
    select(a.getAttribute("data-id"));
  });

  HES.on("meter_status_changed", function (p) {
    if (!meter || p.meter_id !== meter.id) return;
    meter.online = p.online;
    meter.last_seen = p.last_seen || meter.last_seen;
    paintCard();
    listeners.forEach(function (fn) { fn(meter, "status"); });
  });

  /* Wait for a command's final state: Socket.IO command_updated, with polling as the fallback. */
  var FINAL = { succeeded: 1, failed: 1, expired: 1, cancelled: 1 };
  function follow(command, onUpdate) {
    return new Promise(function (resolve) {
      var done = false;
      function take(c) {
        if (done || !c || c.id !== command.id) return;
        onUpdate && onUpdate(c);
        if (FINAL[c.state] || (c.state === "queued" && c.result && c.result.waiting)) { done = true; clearInterval(poll); resolve(c); }
      }
      HES.on("command_updated", take);
      var poll = setInterval(function () {
        HES.api("/api/v1/command/" + command.id).then(function (d) { take(d.result); }).catch(function () {});
      }, 1500);
      take(command);
    });
  }

  function idempotencyKey() {
    return (window.crypto && crypto.randomUUID) ? crypto.randomUUID() : String(Date.now()) + Math.random().toString(16).slice(2);
  }

  function confirmThen(text, run) {
    var modal = window.jQuery("#modal-confirm");
    if (!modal.length) { if (window.confirm(text)) run(); return; }
    modal.find(".modal-text").text(text);
    modal.find("#modal-confirm-ok").off("click").on("click", function (event) { event.preventDefault(); modal.modal("hide"); run(); });
    modal.modal("show");
  }

  window.RM = {
    onMeter: function (fn) { listeners.push(fn); if (meter) fn(meter); },
    meter: function () { return meter; },
    reload: function () { return meter ? select(meter.id) : Promise.resolve(null); },
    follow: follow,
    key: idempotencyKey,
    confirm: confirmThen,
    status: statusHtml
  };

  var initial = root.getAttribute("data-meter");
  if (initial) select(initial);
})();
