/* Remote Loading: validate the 20-digit token in the browser (the server validates again), send it through
   the token gateway, and show the status the meter reports and the credit read back; token history. */
(function () {
  "use strict";

  var $ = function (id) { return document.getElementById(id); };
  var pending = null;
  var PILL = { succeeded: "success", failed: "danger", expired: "danger", cancelled: "warning", queued: "info", sent: "info" };

  function digits() { return $("rl-token").value.replace(/[\s-]/g, ""); }

  function validate() {
    var d = digits();
    var ok = /^\d{20}$/.test(d);
    $("rl-token").classList.toggle("valid", ok);
    $("rl-token").classList.toggle("invalid", d.length > 0 && !ok);
    $("rl-hint").textContent = ok ? "20 digits — ready to send." : (/\D/.test(d) ? "Only digits, please." : d.length + " of 20 digits.");
    $("rl-send").disabled = !ok || !RM.meter() || !!pending;
    return ok;
  }

  function money(v) { return v == null ? "—" : Number(v).toFixed(2); }

  function showOutcome(c) {
    var r = c.result || {};
    var box = $("rl-state");
    $("rl-outcome").hidden = false;
    box.className = "rm-big-state " + (c.state === "succeeded" ? "on" : (c.state === "failed" || c.state === "expired" ? "off" : "warn"));
    box.querySelector(".rm-icon").innerHTML = '<i class="fa ' + (c.state === "succeeded" ? "fa-check" : (PILL[c.state] === "danger" ? "fa-times" : "fa-hourglass-half")) + '"></i>';
    $("rl-state-title").textContent = c.state === "succeeded" ? "Token accepted" : (c.state === "queued" || c.state === "sent" ? "Sending…" : "Token not loaded");
    $("rl-state-text").textContent = c.reason || (r.waiting ? "The meter is offline: the token is stored and sent when it connects." : "");
    $("rl-facts").innerHTML = [
      ["Meter token status", r.token_status == null ? "—" : r.token_status + " — " + r.token_status_text],
      ["Credit before", money(r.credit_before)],
      ["Credit now (read back)", money(r.credit)],
      ["Command", "#" + c.id + " · " + c.state]
    ].map(function (f) { return "<div><dt>" + f[0] + "</dt><dd>" + HES.escape(f[1]) + "</dd></div>"; }).join("");
  }

  function loadHistory() {
    var m = RM.meter();
    if (!m) return;
    HES.api("/api/v1/meterlookup/" + m.id + "/tokens").then(function (data) {
      var rows = data.result || [];
      $("rl-history").innerHTML = rows.length ? rows.map(function (t) {
        return "<tr><td>" + HES.escape(HES.formatTime(t.created_at)) + '</td><td class="rm-mono">' + HES.escape(t.token || "") +
          '</td><td><span class="hes-pill pill-' + (PILL[t.state] || "info") + '">' + HES.escape(t.state) + "</span></td><td>" +
          HES.escape(t.token_status_text || t.reason || "") + "</td><td>" + money(t.credit) + "</td><td>" + HES.escape(t.requested_by || "") + "</td></tr>";
      }).join("") : '<tr><td colspan="6" class="text-muted">No token was sent to this meter yet.</td></tr>';
    });
  }

  RM.onMeter(function (m, why) {
    $("rl-empty").hidden = true;
    $("rl-work").hidden = false;
    if (why !== "status") { $("rl-outcome").hidden = true; loadHistory(); }
    validate();
  });

  $("rl-token").addEventListener("input", validate);
  $("rl-form").addEventListener("submit", function (e) {
    e.preventDefault();
    if (!validate() || pending) return;
    var m = RM.meter();
    pending = RM.key();
    $("rl-send").disabled = true;
    $("rl-send").innerHTML = '<span class="hes-spinner"></span> Sending…';
    HES.api("/api/v1/command/token", { method: "POST", body: { meter_id: m.id, token: digits(), idempotency_key: pending } })
      .then(function (data) {
        showOutcome(data.result);
        return RM.follow(data.result, showOutcome);
      })
      .then(function (c) {
        HES.toast(c.state === "succeeded" ? "Token loaded on " + m.number + "." : "Token not loaded: " + (c.reason || c.state), c.state === "succeeded" ? "success" : "danger");
        if (c.state === "succeeded") $("rl-token").value = "";
        RM.reload();
      })
      .catch(function (error) { HES.toast("Not sent: " + error.message, "danger"); })
      .then(function () {
        pending = null;
        $("rl-send").innerHTML = '<i class="fa fa-paper-plane"></i> Load token';
        validate();
        loadHistory();
      });
  });
})();
