/* My Meters island: paints the customer's summary (meter cards, token history, alerts), draws the consumption
   chart of the selected meter (daily / monthly, from /api/v1/my/consumption), follows meter_status_changed,
   command_updated and alert_* over Socket.IO (a 60 s re-fetch is the fallback), and loads prepaid tokens:
   validated here, validated again by the server, then followed until the meter answers. */
(function () {
  "use strict";

  var root = document.getElementById("my-meters");
  var dataEl = document.getElementById("my-meters-data");
  if (!root || !dataEl || !window.HES) return;
  var HES = window.HES, t = HES.t;
  var $ = function (id) { return document.getElementById(id); };
  var summaryUrl = root.getAttribute("data-summary-url");
  var consumptionUrl = root.getAttribute("data-consumption-url");
  var REFRESH_MS = 60000;
  var POLL_MS = 1500;
  var FINAL = { succeeded: true, failed: true, expired: true, cancelled: true };
  var STATE_PILL = { succeeded: "success", failed: "danger", expired: "danger", cancelled: "warning", queued: "info", sent: "info" };
  var RELAY = {
    connected: [t("Connected"), "success"], disconnected: [t("Disconnected"), "danger"],
    ready_for_reconnection: [t("Ready to reconnect"), "warning"], unknown: [t("Unknown"), "none"]
  };

  var state = { summary: JSON.parse(dataEl.textContent), meterId: null, period: "daily", chart: null, pending: null };
  var refreshTimer = null;
  var consumptionSeq = 0;

  function meters() { return state.summary.meters || []; }
  function meterById(id) { return meters().filter(function (m) { return m.id === id; })[0] || null; }
  function selected() { return meterById(state.meterId); }
  function card(id) { return root.querySelector('.mm-meter[data-meter-id="' + id + '"]'); }
  function money(v) { return v == null ? "—" : Number(v).toLocaleString(HES.locale, { minimumFractionDigits: 2, maximumFractionDigits: 2 }); }
  function kwh(v) { return v == null ? "—" : Number(v).toLocaleString(HES.locale, { maximumFractionDigits: 1 }) + " kWh"; }
  function groups(token) { return String(token || "").replace(/(\d{4})(?=\d)/g, "$1 "); }
  var dayFormat = new Intl.DateTimeFormat(HES.locale, { timeZone: HES.timezone, year: "numeric", month: "short", day: "2-digit" });
  var timeFormat = new Intl.DateTimeFormat(HES.locale, { timeZone: HES.timezone, hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  function stacked(iso) {
    if (!iso) return "—";
    var when = new Date(iso);
    return '<span class="mm-day">' + HES.escape(dayFormat.format(when)) + '</span><small class="mm-time">' + HES.escape(timeFormat.format(when)) + "</small>";
  }
  function cssVar(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }

  function flash(el) {
    if (!el) return;
    el.classList.remove("hes-flash");
    void el.offsetWidth;  // restart the highlight animation
    el.classList.add("hes-flash");
  }

  /* ---- meter cards ---- */
  function paintStatus(el, online, lastSeen) {
    var status = el.querySelector('[data-field="status"]');
    var cls = online ? "on" : "off";
    status.className = "hes-status " + cls;
    status.innerHTML = '<span class="hes-dot ' + cls + '"></span><span>' + HES.escape(online ? t("Online") : t("Offline")) + "</span>";
    var seen = el.querySelector('[data-field="last_seen"]');
    seen.setAttribute("data-iso", lastSeen || "");
    seen.textContent = lastSeen ? HES.formatTime(lastSeen) : t("never");
    seen.title = lastSeen ? HES.ago(lastSeen) : "";
  }

  function paintCard(m) {
    var el = card(m.id);
    if (!el) return;
    var before = el.getAttribute("data-painted");
    paintStatus(el, m.online, m.last_seen);
    el.querySelector('[data-field="credit"]').textContent = money(m.credit_balance);
    var relay = RELAY[m.relay_state] || [m.relay_state, "none"];
    var pill = el.querySelector('[data-field="relay"]');
    pill.className = "hes-pill pill-" + relay[1];
    pill.textContent = relay[0];
    var painted = [m.online, m.last_seen, m.credit_balance, m.relay_state].join("|");
    if (before && before !== painted) flash(el);
    el.setAttribute("data-painted", painted);
  }

  function select(id) {
    if (!meterById(id)) return;
    var changed = state.meterId !== id;
    state.meterId = id;
    Array.prototype.forEach.call(root.querySelectorAll(".mm-meter"), function (el) {
      var on = Number(el.getAttribute("data-meter-id")) === id;
      el.classList.toggle("selected", on);
      el.setAttribute("aria-pressed", on ? "true" : "false");
    });
    $("mm-meter").value = String(id);
    $("mm-token-meter").textContent = selected().number;
    paintTokens();
    if (changed) {
      if ($("mm-token-outcome")) $("mm-token-outcome").hidden = true;
      validateToken();
      loadConsumption();
    }
  }

  /* ---- token history and entry ---- */
  function paintTokens() {
    var m = selected();
    var rows = (m && m.tokens) || [];
    $("mm-tokens").querySelector("tbody").innerHTML = rows.length ? rows.map(function (tk) {
      var result = tk.token_status_text || tk.reason || (tk.state === "queued" ? t("waiting for the meter") : "");
      return "<tr><td>" + stacked(tk.created_at) + (tk.by_you ? "" : '<small class="mm-time">' + HES.escape(t("by the utility")) + "</small>") +
        '</td><td class="mm-mono">' + HES.escape(groups(tk.token)) + '</td><td><span class="hes-pill pill-' + (STATE_PILL[tk.state] || "info") +
        '">' + HES.escape(t(HES.word(tk.state))) + "</span> " + HES.escape(result) + '</td><td class="text-right">' + money(tk.credit) + "</td></tr>";
    }).join("") : '<tr><td colspan="4"><div class="hes-empty"><i class="fa fa-credit-card"></i><b>' + HES.escape(t("No tokens yet")) + "</b>" +
      HES.escape(t("Tokens loaded on this meter will be listed here.")) + "</div></td></tr>";
  }

  function digits() { return $("mm-token") ? $("mm-token").value.replace(/[\s-]/g, "") : ""; }

  function validateToken() {
    var input = $("mm-token");
    if (!input) return false;
    var d = digits();
    var ok = /^\d{20}$/.test(d);
    input.classList.toggle("valid", ok);
    input.classList.toggle("invalid", d.length > 0 && !ok);
    $("mm-token-hint").textContent = ok ? t("20 digits — ready to load on {number}.", { number: selected().number }) :
      (/\D/.test(d) ? t("Only digits, please (spaces and dashes are fine).") : (d.length ? t("{n} of 20 digits.", { n: d.length }) : t("20 digits; spaces are fine.")));
    $("mm-token-send").disabled = !ok || !!state.pending;
    return ok;
  }

  function showOutcome(c) {
    var r = c.result || {};
    var box = $("mm-token-outcome");
    var waiting = c.state === "queued" && r.waiting;
    var good = c.state === "succeeded";
    var bad = c.state === "failed" || c.state === "expired" || c.state === "cancelled";
    box.hidden = false;
    box.className = "mm-outcome" + (good ? " on" : (bad ? " off" : ""));
    box.querySelector(".mm-outcome-icon").innerHTML = '<i class="fa ' + (good ? "fa-check" : (bad ? "fa-times" : "fa-hourglass-half")) + '"></i>';
    $("mm-outcome-title").textContent = good ? t("Token accepted") : (bad ? t("Token not loaded") : (waiting ? t("Stored — waiting for your meter") : t("Sending to your meter…")));
    $("mm-outcome-text").textContent = c.reason || (waiting ? t("Your meter is offline; the token is sent as soon as it connects.") : "");
    var status = r.token_status == null ? "—" : r.token_status_text || String(r.token_status);
    $("mm-outcome-facts").innerHTML = [
      [t("Meter's answer"), status], [t("Credit before"), money(r.credit_before)], [t("Credit now (read back)"), money(r.credit)],
      [t("Reference"), "#" + c.id + " · " + t(HES.word(c.state))]
    ].map(function (f) { return "<div><dt>" + HES.escape(f[0]) + "</dt><dd>" + HES.escape(f[1]) + "</dd></div>"; }).join("");
  }

  function follow(command) {
    return new Promise(function (resolve) {
      var done = false;
      var poll = null;
      function take(c) {
        if (done || !c || c.id !== command.id) return;
        showOutcome(c);
        if (FINAL[c.state] || (c.state === "queued" && c.result && c.result.waiting)) {
          done = true;
          clearInterval(poll);
          resolve(c);
        }
      }
      HES.on("command_updated", take);
      poll = setInterval(function () {
        HES.api("/api/v1/command/" + command.id).then(function (d) { take(d.result); }).catch(function () {});
      }, POLL_MS);
      take(command);
    });
  }

  function key() {
    return (window.crypto && crypto.randomUUID) ? crypto.randomUUID() : String(Date.now()) + Math.random().toString(16).slice(2);
  }

  function submitToken(event) {
    event.preventDefault();
    if (!validateToken() || state.pending) return;
    var m = selected();
    var send = $("mm-token-send");
    state.pending = key();
    send.disabled = true;
    send.innerHTML = '<span class="hes-spinner"></span> ' + HES.escape(t("Sending…"));
    HES.api("/api/v1/command/token", { method: "POST", body: { meter_id: m.id, token: digits(), idempotency_key: state.pending } })
      .then(function (data) { return follow(data.result); })
      .then(function (c) {
        if (c.state === "succeeded") {
          HES.toast(c.result && c.result.credit != null ? t("Token loaded on {number} — credit {credit}.", { number: m.number, credit: money(c.result.credit) })
            : t("Token loaded on {number}.", { number: m.number }), "success");
          $("mm-token").value = "";
        } else if (FINAL[c.state]) {
          HES.toast(t("Token not loaded: {reason}", { reason: c.reason || t(HES.word(c.state)) }), "danger");
        } else {
          HES.toast(t("Token stored; it is sent when meter {number} connects.", { number: m.number }), "info");
        }
      })
      .catch(function (error) { HES.toast(t("Not sent: {error}", { error: error.message }), "danger"); })
      .then(function () {
        state.pending = null;
        send.innerHTML = '<i class="fa fa-paper-plane"></i> ' + HES.escape(t("Load token"));
        validateToken();
        refresh();
      });
  }

  /* ---- alerts ---- */
  function alertItem(a, active) {
    var icon = a.severity === "critical" ? "fa-exclamation-triangle" : (a.severity === "warning" ? "fa-exclamation-circle" : "fa-info-circle");
    var when = active ? t("since {time}", { time: HES.formatTime(a.first_at) }) + (a.count > 1 ? " · " + a.count + "×" : "") :
      t(HES.word(a.state)) + " · " + HES.formatTime(a.resolved_at || a.last_at);
    return '<li class="sev-' + HES.escape(a.severity) + (active ? " is-active" : "") + '"><span class="mm-alert-icon"><i class="fa ' + icon +
      '"></i></span><div class="mm-alert-body"><b>' + HES.escape(t(a.title)) + "</b><small>" + HES.escape(t("Meter {number}", { number: a.number || "" })) + " · " +
      HES.escape(when) + '</small></div><span class="hes-pill pill-' + HES.escape(a.severity) + '">' + HES.escape(t(HES.word(a.severity))) + "</span></li>";
  }

  function paintAlerts(alerts) {
    $("mm-alerts-active").innerHTML = alerts.active.length ? alerts.active.map(function (a) { return alertItem(a, true); }).join("") :
      '<li><div class="hes-empty"><i class="fa fa-check-circle-o"></i><b>' + HES.escape(t("All clear")) + "</b>" +
      HES.escape(t("No active alerts on your meters.")) + "</div></li>";
    $("mm-alerts-recent").innerHTML = alerts.recent.length ? alerts.recent.map(function (a) { return alertItem(a, false); }).join("") :
      '<li class="text-muted">' + HES.escape(t("Nothing in the last 30 days.")) + "</li>";
    var count = $("mm-alert-count");
    count.textContent = t("{n} active", { n: alerts.active.length });
    count.className = "hes-pill pill-" + (alerts.active.length ? "danger" : "success");
  }

  /* ---- consumption chart ---- */
  function paintChart(data) {
    var daily = data.period === "daily";
    var labels = data.points.map(function (p) { return p.period; });
    var values = data.points.map(function (p) { return p.import_kwh; });
    $("mm-total").innerHTML = HES.escape(Number(data.total_kwh).toLocaleString(HES.locale, { maximumFractionDigits: 1 })) + " <small>kWh</small>";
    var weekly = data.period === "weekly";
    $("mm-average-label").textContent = daily ? t("Average per day") : weekly ? t("Average per week") : t("Average per month");
    $("mm-average").textContent = kwh(data.average_kwh);
    $("mm-with-data").textContent = t("{n} of {total}", { n: data.periods_with_data, total: data.points.length });
    var hint = { number: data.number, zone: data.timezone };
    $("mm-chart-hint").textContent = daily ? t("kWh imported by {number}, per day ({zone})", hint)
      : weekly ? t("kWh imported by {number}, per week ({zone})", hint) : t("kWh imported by {number}, per month ({zone})", hint);
    $("mm-chart-empty").hidden = data.periods_with_data > 0;
    root.setAttribute("data-chart", data.period + ":" + data.meter_id);
    if (typeof window.Chart !== "function") return;
    var text = cssVar("--hes-muted");
    var grid = cssVar("--hes-border");
    var fill = function (context) {
      var area = context.chart.chartArea;
      if (!area) return "rgba(37, 99, 235, 0.15)";
      var gradient = context.chart.ctx.createLinearGradient(0, area.bottom, 0, area.top);
      gradient.addColorStop(0, "rgba(37, 99, 235, 0.02)");
      gradient.addColorStop(1, "rgba(20, 184, 166, 0.35)");
      return gradient;
    };
    if (state.chart) state.chart.destroy();
    state.chart = new window.Chart($("mm-chart").getContext("2d"), {
      type: "line",  // the customer asked for a line chart of consumption
      data: { labels: labels, datasets: [{ label: "kWh", data: values, backgroundColor: fill, fill: true, borderColor: "#2563eb",
                                          borderWidth: 2, tension: 0.3, pointRadius: daily ? 2 : 4, spanGaps: false }] },
      options: {
        locale: HES.locale, responsive: true, maintainAspectRatio: false, animation: { duration: 450 },
        plugins: {
          legend: { display: false },
          tooltip: { callbacks: { label: function (item) { return item.raw == null ? " " + t("no data") : " " + item.raw.toLocaleString(HES.locale) + " kWh"; } } }
        },
        scales: {
          x: { grid: { display: false }, ticks: { color: text, maxRotation: 0, autoSkip: true, maxTicksLimit: daily ? 10 : 12,
            callback: function (value) { var l = this.getLabelForValue(value); return daily ? l.slice(5) : l; } } },
          y: { beginAtZero: true, grid: { color: grid }, border: { display: false }, ticks: { color: text },
               title: { display: true, text: "kWh", color: text } }
        }
      }
    });
  }

  function loadConsumption() {
    var box = $("mm-chart-box");
    var seq = ++consumptionSeq;
    box.classList.add("hes-loading");
    return HES.api(HES.withParams(consumptionUrl, { meter_id: state.meterId, period: state.period }))
      .then(function (data) { if (seq === consumptionSeq) paintChart(data); })
      .catch(function (error) { HES.toast(t("Consumption not available: {error}", { error: error.message }), "danger"); })
      .then(function () { if (seq === consumptionSeq) box.classList.remove("hes-loading"); });
  }

  /* ---- the whole summary ---- */
  function paint(summary) {
    state.summary = summary;
    summary.meters.forEach(paintCard);
    paintAlerts(summary.alerts);
    paintTokens();
    var updated = $("mm-updated");
    updated.setAttribute("data-iso", summary.generated_at);
    updated.textContent = HES.formatTime(summary.generated_at);
  }

  function refresh() {
    clearTimeout(refreshTimer);
    refreshTimer = null;
    return HES.api(summaryUrl).then(paint).catch(function (error) { HES.toast(t("Could not refresh: {error}", { error: error.message }), "warning"); });
  }

  function refreshSoon() {
    if (!refreshTimer) refreshTimer = setTimeout(refresh, 400);
  }

  /* ---- wiring ---- */
  if (!meters().length) {  // nothing to follow: the page shows its empty state
    $("mm-updated").textContent = HES.formatTime(state.summary.generated_at);
    $("mm-refresh").addEventListener("click", function () { window.location.reload(); });
    return;
  }
  Array.prototype.forEach.call(root.querySelectorAll(".mm-meter"), function (el) {
    var id = Number(el.getAttribute("data-meter-id"));
    el.addEventListener("click", function () { select(id); });
    el.addEventListener("keydown", function (event) {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); select(id); }
    });
  });
  $("mm-meter").addEventListener("change", function () { select(Number(this.value)); });
  Array.prototype.forEach.call(root.querySelectorAll("#mm-period [data-period]"), function (button) {
    button.addEventListener("click", function () {
      if (state.period === button.getAttribute("data-period")) return;
      state.period = button.getAttribute("data-period");
      Array.prototype.forEach.call(root.querySelectorAll("#mm-period [data-period]"), function (b) { b.classList.toggle("active", b === button); });
      loadConsumption();
    });
  });
  $("mm-refresh").addEventListener("click", function () { refresh(); loadConsumption(); });
  if ($("mm-token-form")) {
    $("mm-token").addEventListener("input", validateToken);
    $("mm-token-form").addEventListener("submit", submitToken);
  }

  HES.on("meter_status_changed", function (e) {
    var m = e && meterById(e.meter_id);
    if (!m) return;
    m.online = !!e.online;
    m.last_seen = e.last_seen || m.last_seen;
    paintCard(m);
  });
  HES.on("command_updated", function (c) {
    if (c && meterById(c.meter_id) && FINAL[c.state]) refreshSoon();
  });
  HES.on("alert_raised", function (a) {
    if (!a || !meterById(a.meter_id)) return;
    HES.toast(t("Alert on meter {number}: {what}", { number: a.number || "", what: t(a.title || a.alert_type) }), "danger");
    refreshSoon();
  });
  HES.on("alert_acknowledged", refreshSoon);
  HES.on("alert_resolved", refreshSoon);
  setInterval(function () { if (!state.pending) refresh(); }, REFRESH_MS);

  paint(state.summary);
  if (meters().length) select(meters()[0].id);

  window.hesMyMeters = { refresh: refresh, select: select, state: state, loadConsumption: loadConsumption };
})();
