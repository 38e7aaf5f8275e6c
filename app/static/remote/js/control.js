/* Remote Control: disconnect / reconnect with a confirmation, relay state read back, recent commands. */
(function () {
  "use strict";

  var $ = function (id) { return document.getElementById(id); };
  var t = window.HES.t, word = window.HES.word;
  var busy = false;
  var PILL = { succeeded: "success", failed: "danger", expired: "danger", cancelled: "warning", queued: "info", sent: "info" };
  var STATES = {
    connected: ["on", "fa-plug", t("Connected"), t("Power is supplied.")],
    disconnected: ["off", "fa-power-off", t("Disconnected"), t("The relay is open; no power is supplied.")],
    ready_for_reconnection: ["warn", "fa-hand-pointer-o", t("Ready for reconnection"), t("The customer must press the meter's button.")],
    unknown: ["", "fa-question", t("Unknown"), t("Not read from the meter yet.")]
  };

  function paintRelay(state, text) {
    var s = STATES[state] || STATES.unknown;
    $("rc-state").className = "rm-big-state " + s[0];
    $("rc-state").querySelector(".rm-icon").innerHTML = '<i class="fa ' + s[1] + '"></i>';
    $("rc-state-title").textContent = s[2];
    $("rc-state-text").textContent = text || s[3];
  }

  function describe(c) {
    var r = c.result || {};
    if (c.reason) return c.reason;
    if (r.relay_state) {
      var facts = { state: t(word(r.relay_state)).toLowerCase(), control: r.control_state };
      return r.output_state ? t("Relay {state} (output on, control state {control})", facts) : t("Relay {state} (output off, control state {control})", facts);
    }
    if (r.values) return r.values.map(function (v) { return v.name + ": " + (v.value != null ? v.value : v.error || ""); }).join("; ");
    return r.waiting || "";
  }

  function loadHistory() {
    var m = RM.meter();
    var q = "(filters:!((col:meter_id,opr:eq,value:" + m.id + ")),order_column:id,order_direction:desc,page_size:10)";
    HES.api("/api/v1/command/?q=" + encodeURIComponent(q)).then(function (data) {
      var rows = data.result || [];
      $("rc-history").innerHTML = rows.length ? rows.map(function (c) {
        return "<tr><td>" + HES.escape(HES.formatTime(c.created_at)) + "</td><td>" + HES.escape(t(word(c.kind))) + '</td><td><span class="hes-pill pill-' +
          (PILL[c.state] || "info") + '">' + HES.escape(t(word(c.state))) + "</span></td><td>" + HES.escape(describe(c)) + "</td><td>" +
          HES.escape(c["requested_by.username"] || "") + "</td></tr>";
      }).join("") : '<tr><td colspan="5" class="text-muted">' + HES.escape(t("No command was sent to this meter yet.")) + "</td></tr>";
    });
    $("rc-export").href = "/api/v1/command/export?meter=" + encodeURIComponent(m.number);
  }

  function run(kind, body) {
    var m = RM.meter();
    busy = true;
    setButtons();
    paintRelay(m.relay_state, kind === "read" ? t("Reading the relay…")
      : kind === "disconnect" ? t("Sending disconnect to {number}…", { number: m.number }) : t("Sending reconnect to {number}…", { number: m.number }));
    return HES.api("/api/v1/command/", { method: "POST", body: Object.assign({ kind: kind, meter_id: m.id, idempotency_key: RM.key() }, body || {}) })
      .then(function (data) { return RM.follow(data.result); })
      .then(function (c) {
        var r = c.result || {};
        var state = r.relay_state || (r.values && r.values.length && r.values[0].value != null ? null : null);
        if (kind === "read" && r.values) {
          var out = r.values.find(function (v) { return v.key === "relay_output_state"; });
          var ctl = r.values.find(function (v) { return v.key === "relay_control_state"; });
          state = ctl && ctl.value === 2 ? "ready_for_reconnection" : (out ? (out.value ? "connected" : "disconnected") : null);
        }
        if (c.state === "queued") {
          HES.toast(t("The meter is offline: the command is stored and sent when it connects."), "warning");
        } else {
          HES.toast(t("{kind} on {number}: {state}", { kind: t(word(kind)), number: m.number, state: t(word(c.state)).toLowerCase() }) +
            (c.reason ? " — " + c.reason : ""), c.state === "succeeded" ? "success" : "danger");
        }
        paintRelay(state || m.relay_state, c.reason || r.note);
        $("rc-facts").innerHTML = r.relay_state ? [
          [t("Output state (attr 2)"), r.output_state ? t("on") : t("off")], [t("Control state (attr 3)"), r.control_state],
          [t("Read at"), HES.formatTime(c.finished_at)]].map(function (f) {
          return "<div><dt>" + HES.escape(f[0]) + "</dt><dd>" + HES.escape(f[1]) + "</dd></div>"; }).join("") : "";
        return RM.reload();
      })
      .catch(function (error) { HES.toast(t("{kind} not sent: {error}", { kind: t(word(kind)), error: error.message }), "danger"); })
      .then(function () { busy = false; setButtons(); loadHistory(); });
  }

  function setButtons() {
    ["rc-disconnect", "rc-reconnect", "rc-read"].forEach(function (id) { $(id).disabled = busy || !RM.meter(); });
  }

  RM.onMeter(function (m, why) {
    $("rc-empty").hidden = true;
    $("rc-work").hidden = false;
    if (!busy) paintRelay(m.relay_state);
    if (why !== "status") loadHistory();
    setButtons();
  });

  $("rc-disconnect").addEventListener("click", function () {
    var m = RM.meter();
    RM.confirm(t("Disconnect meter {meter}? The customer loses power.", { meter: m.number + (m.customer ? " (" + m.customer.name + ")" : "") }), function () { run("disconnect"); });
  });
  $("rc-reconnect").addEventListener("click", function () {
    var m = RM.meter();
    RM.confirm(t("Reconnect meter {number}? Power is restored.", { number: m.number }), function () { run("reconnect"); });
  });
  $("rc-read").addEventListener("click", function () { run("read", { points: ["relay_output_state", "relay_control_state"] }); });
})();
