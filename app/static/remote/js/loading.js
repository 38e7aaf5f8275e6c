/* Remote Loading: validate the 20-digit token in the browser (the server validates again), send it through
   the token gateway, and show the status the meter reports and the credit read back; token history. */
(function () {
  "use strict";

  var $ = function (id) { return document.getElementById(id); };
  var pending = null;
  var t = HES.t, word = HES.word;
  var PILL = { succeeded: "success", failed: "danger", expired: "danger", cancelled: "warning", queued: "info", sent: "info" };

  function digits() { return $("rl-token").value.replace(/[\s-]/g, ""); }

  function validate() {
    var d = digits();
    var ok = /^\d{20}$/.test(d);
    $("rl-token").classList.toggle("valid", ok);
    $("rl-token").classList.toggle("invalid", d.length > 0 && !ok);
    $("rl-hint").textContent = ok ? t("20 digits — ready to send.") : (/\D/.test(d) ? t("Only digits, please.") : t("{n} of 20 digits.", { n: d.length }));
    $("rl-send").disabled = !ok || !RM.meter() || !!pending;
    return ok;
  }

  function money(v) { return v == null ? "—" : Number(v).toLocaleString(HES.locale, { minimumFractionDigits: 2, maximumFractionDigits: 2 }); }

  function showOutcome(c) {
    var r = c.result || {};
    var box = $("rl-state");
    $("rl-outcome").hidden = false;
    box.className = "rm-big-state " + (c.state === "succeeded" ? "on" : (c.state === "failed" || c.state === "expired" ? "off" : "warn"));
    box.querySelector(".rm-icon").innerHTML = '<i class="fa ' + (c.state === "succeeded" ? "fa-check" : (PILL[c.state] === "danger" ? "fa-times" : "fa-hourglass-half")) + '"></i>';
    $("rl-state-title").textContent = c.state === "succeeded" ? t("Token accepted") : (c.state === "queued" || c.state === "sent" ? t("Sending…") : t("Token not loaded"));
    $("rl-state-text").textContent = c.reason || (r.waiting ? t("The meter is offline: the token is stored and sent when it connects.") : "");
    $("rl-facts").innerHTML = [
      [t("Meter token status"), r.token_status == null ? "—" : r.token_status + " — " + t(r.token_status_text)],
      [t("Credit before"), money(r.credit_before)],
      [t("Credit now (read back)"), money(r.credit)],
      [t("Command"), "#" + c.id + " · " + t(word(c.state))]
    ].map(function (f) { return "<div><dt>" + HES.escape(f[0]) + "</dt><dd>" + HES.escape(f[1]) + "</dd></div>"; }).join("");
  }

  function loadHistory() {
    var m = RM.meter();
    if (!m) return;
    HES.api("/api/v1/meterlookup/" + m.id + "/tokens").then(function (data) {
      var rows = data.result || [];
      $("rl-history").innerHTML = rows.length ? rows.map(function (tk) {
        return "<tr><td>" + HES.escape(HES.formatTime(tk.created_at)) + '</td><td class="rm-mono">' + HES.escape(tk.token || "") +
          '</td><td><span class="hes-pill pill-' + (PILL[tk.state] || "info") + '">' + HES.escape(t(word(tk.state))) + "</span></td><td>" +
          HES.escape(tk.token_status_text ? t(tk.token_status_text) : tk.reason || "") + "</td><td>" + money(tk.credit) + "</td><td>" + HES.escape(tk.requested_by || "") + "</td></tr>";
      }).join("") : '<tr><td colspan="6" class="text-muted">' + HES.escape(t("No token was sent to this meter yet.")) + "</td></tr>";
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
    $("rl-send").innerHTML = '<span class="hes-spinner"></span> ' + HES.escape(t("Sending…"));
    HES.api("/api/v1/command/token", { method: "POST", body: { meter_id: m.id, token: digits(), idempotency_key: pending } })
      .then(function (data) {
        showOutcome(data.result);
        return RM.follow(data.result, showOutcome);
      })
      .then(function (c) {
        HES.toast(c.state === "succeeded" ? t("Token loaded on {number}.", { number: m.number }) : t("Token not loaded: {reason}", { reason: c.reason || t(word(c.state)) }),
                  c.state === "succeeded" ? "success" : "danger");
        if (c.state === "succeeded") $("rl-token").value = "";
        RM.reload();
      })
      .catch(function (error) { HES.toast(t("Not sent: {error}", { error: error.message }), "danger"); })
      .then(function () {
        pending = null;
        $("rl-send").innerHTML = '<i class="fa fa-paper-plane"></i> ' + HES.escape(t("Load token"));
        validate();
        loadHistory();
      });
  });
})();
