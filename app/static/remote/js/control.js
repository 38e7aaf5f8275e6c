/* Remote Control: disconnect / reconnect with a confirmation, relay state read back, recent commands. */
(function () {
  "use strict";

  var $ = function (id) { return document.getElementById(id); };
  var busy = false;
  var PILL = { succeeded: "success", failed: "danger", expired: "danger", cancelled: "warning", queued: "info", sent: "info" };
  var STATES = {
    connected: ["on", "fa-plug", "Connected", "Power is supplied."],
    disconnected: ["off", "fa-power-off", "Disconnected", "The relay is open; no power is supplied."],
    ready_for_reconnection: ["warn", "fa-hand-pointer-o", "Ready for reconnection", "The customer must press the meter's button."],
    unknown: ["", "fa-question", "Unknown", "Not read from the meter yet."]
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
    if (r.relay_state) return "relay " + r.relay_state.replace(/_/g, " ") + " (output " + (r.output_state ? "on" : "off") + ", control state " + r.control_state + ")";
    if (r.values) return r.values.map(function (v) { return v.name + ": " + (v.value != null ? v.value : v.error || ""); }).join("; ");
    return r.waiting || "";
  }

  function loadHistory() {
    var m = RM.meter();
    var q = "(filters:!((col:meter_id,opr:eq,value:" + m.id + ")),order_column:id,order_direction:desc,page_size:10)";
    HES.api("/api/v1/command/?q=" + encodeURIComponent(q)).then(function (data) {
      var rows = data.result || [];
      $("rc-history").innerHTML = rows.length ? rows.map(function (c) {
        return "<tr><td>" + HES.escape(HES.formatTime(c.created_at)) + "</td><td>" + HES.escape(c.kind) + '</td><td><span class="hes-pill pill-' +
          (PILL[c.state] || "info") + '">' + HES.escape(c.state) + "</span></td><td>" + HES.escape(describe(c)) + "</td><td>" +
          HES.escape(c["requested_by.username"] || "") + "</td></tr>";
      }).join("") : '<tr><td colspan="5" class="text-muted">No command was sent to this meter yet.</td></tr>';
    });
    $("rc-export").href = "/api/v1/command/export?meter=" + encodeURIComponent(m.number);
  }

  function run(kind, body) {
    var m = RM.meter();
    busy = true;
    setButtons();
    paintRelay(m.relay_state, kind === "read" ? "Reading the relay…" : "Sending " + kind + " to " + m.number + "…");
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
          HES.toast("The meter is offline: the " + kind + " is stored and sent when it connects.", "warning");
        } else {
          HES.toast(kind + " on " + m.number + ": " + c.state + (c.reason ? " — " + c.reason : ""), c.state === "succeeded" ? "success" : "danger");
        }
        paintRelay(state || m.relay_state, c.reason || r.note);
        $("rc-facts").innerHTML = r.relay_state ? [
          ["Output state (attr 2)", r.output_state ? "on" : "off"], ["Control state (attr 3)", r.control_state],
          ["Read at", HES.formatTime(c.finished_at)]].map(function (f) {
          return "<div><dt>" + f[0] + "</dt><dd>" + HES.escape(f[1]) + "</dd></div>"; }).join("") : "";
        return RM.reload();
      })
      .catch(function (error) { HES.toast(kind + " not sent: " + error.message, "danger"); })
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
    RM.confirm("Disconnect meter " + m.number + (m.customer ? " (" + m.customer.name + ")" : "") + "? The customer loses power.", function () { run("disconnect"); });
  });
  $("rc-reconnect").addEventListener("click", function () {
    var m = RM.meter();
    RM.confirm("Reconnect meter " + m.number + "? Power is restored.", function () { run("reconnect"); });
  });
  $("rc-read").addEventListener("click", function () { run("read", { points: ["relay_output_state", "relay_control_state"] }); });
})();
