/* Dashboard island: paints the summary, follows meter_status_changed / alert_* events over Socket.IO
   (a debounced re-fetch of /api/v1/dashboard/summary, so the counts stay exact for the selected
   area), and re-fetches every 30 s as a fallback when the socket is down. */
(function () {
  "use strict";

  var root = document.getElementById("dashboard");
  if (!root || !window.HES) return;
  var HES = window.HES;
  var summaryUrl = HES.withParams(root.getAttribute("data-summary-url"), { area: root.getAttribute("data-area") });
  var REFRESH_MS = 30000;
  var RING = 389.6;
  var chart = null;
  var pending = null;
  var inFlight = false;

  function field(name) { return root.querySelector('[data-field="' + name + '"]'); }

  function setText(el, text) {
    if (!el || el.textContent === String(text)) return;
    el.textContent = text;
    var card = el.closest(".hes-kpi");
    if (card) {
      card.classList.remove("hes-flash");
      void card.offsetWidth;  // restart the highlight animation
      card.classList.add("hes-flash");
    }
  }

  function cssVar(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }

  function paintEnergy(energy) {
    document.getElementById("energy-total").innerHTML = HES.escape(energy.total_kwh.toLocaleString(HES.locale, { maximumFractionDigits: 1 })) + " <small>kWh</small>";
    var labels = energy.buckets.map(function (b) { return HES.formatClock(b.start) + "–" + HES.formatClock(b.end); });
    var values = energy.buckets.map(function (b) { return b.kwh; });
    document.getElementById("energy-empty").hidden = energy.total_kwh > 0;
    if (typeof window.Chart !== "function") return;
    if (chart) {
      chart.data.labels = labels;
      chart.data.datasets[0].data = values;
      chart.update();
      return;
    }
    var ctx = document.getElementById("energy-chart").getContext("2d");
    var gradient = function (context) {
      var area = context.chart.chartArea;
      if (!area) return "rgba(37, 99, 235, 0.8)";
      var fill = context.chart.ctx.createLinearGradient(0, area.bottom, 0, area.top);
      fill.addColorStop(0, "rgba(37, 99, 235, 0.8)");
      fill.addColorStop(1, "rgba(20, 184, 166, 0.95)");
      return fill;
    };
    var grid = cssVar("--hes-border");
    var text = cssVar("--hes-muted");
    chart = new window.Chart(ctx, {
      type: "bar",
      data: { labels: labels, datasets: [{ label: "kWh", data: values, backgroundColor: gradient, borderRadius: 10, maxBarThickness: 70 }] },
      options: {
        locale: HES.locale, responsive: true, maintainAspectRatio: false, animation: { duration: 500 },
        plugins: {
          legend: { display: false },
          tooltip: { callbacks: { label: function (item) { return " " + item.parsed.y.toLocaleString(HES.locale) + " kWh"; } } }
        },
        scales: {
          x: { grid: { display: false }, ticks: { color: text } },
          y: { beginAtZero: true, grid: { color: grid }, border: { display: false }, ticks: { color: text },
               title: { display: true, text: "kWh", color: text } }
        }
      }
    });
  }

  function paintCompleteness(c) {
    var percent = c.percent == null ? null : c.percent;
    document.getElementById("completeness-percent").textContent = percent == null ? "—" : percent + "%";
    document.getElementById("completeness-ring").setAttribute("stroke-dashoffset", RING * (1 - (percent || 0) / 100));
    document.getElementById("completeness-received").textContent = HES.number(c.received);
    document.getElementById("completeness-expected").textContent = HES.number(c.expected);
    document.getElementById("completeness-meters").textContent = HES.number(c.meters);
    // Counted in the background at fleet scale: the card says when.
    document.getElementById("completeness-as-of").textContent = c.as_of ? HES.t("Counted at {time}", {time: HES.formatTime(c.as_of)}) : "";
  }


  function paintEvents(events) {
    var tbody = document.querySelector("#events-table tbody");
    if (!events.length) return;
    tbody.innerHTML = events.map(function (e) {
      return "<tr><td>" + HES.escape(HES.formatTime(e.ts)) + "</td><td><b>" + HES.escape(e.meter_number) + "</b></td><td>" +
        HES.escape(e.title ? HES.t(e.title) : HES.t(HES.word(e.event_type))) + (e.code ? ' <span class="text-muted">#' + HES.escape(e.code) + "</span>" : "") +
        '</td><td><span class="hes-pill pill-' + HES.escape(e.severity) + '">' + HES.escape(HES.t(HES.word(e.severity))) + "</span></td><td>" +
        HES.escape(HES.t(HES.word(e.source))) + "</td></tr>";
    }).join("");
  }

  function paint(summary) {
    var m = summary.meters;
    setText(field("total"), m.total);
    setText(field("warehouse"), m.warehouse);
    setText(field("online"), m.online);
    setText(field("offline"), m.offline);
    setText(field("online_percent"), m.online_percent == null ? "—" : m.online_percent);
    field("online_bar").style.width = (m.online_percent || 0) + "%";
    setText(field("alerts"), summary.active_alerts);
    field("alerts_note").textContent = summary.active_alerts ? HES.t("need attention") : HES.t("all clear");
    document.getElementById("card-alerts").classList.toggle("alerting", summary.active_alerts > 0);
    HES.setAlertCount(summary.active_alerts);
    var updated = document.getElementById("dash-updated");
    updated.textContent = HES.formatTime(summary.generated_at);
    paintEnergy(summary.energy);
    paintCompleteness(summary.completeness);
    paintEvents(summary.events);
    root.setAttribute("data-generated", summary.generated_at);
  }

  function refresh() {
    if (inFlight) return Promise.resolve();
    inFlight = true;
    root.classList.add("hes-refreshing");
    return HES.api(summaryUrl).then(paint).catch(function (error) {
      HES.toast(HES.t("Could not refresh the dashboard: {error}", { error: error.message }), "warning");
    }).then(function () {
      inFlight = false;
      root.classList.remove("hes-refreshing");
    });
  }

  function soon() {
    clearTimeout(pending);
    pending = setTimeout(refresh, 700);
  }

  paint(JSON.parse(document.getElementById("dashboard-data").textContent));
  Array.prototype.forEach.call(document.querySelectorAll("#events-table td[data-iso]"), function (td) {
    td.textContent = HES.formatTime(td.getAttribute("data-iso"));
  });
  document.getElementById("dash-refresh").addEventListener("click", refresh);
  ["meter_status_changed", "alert_raised", "alert_acknowledged", "alert_resolved", "reading_stored"].forEach(function (name) {
    HES.on(name, soon);
  });
  setInterval(refresh, REFRESH_MS);
  window.hesDashboard = { refresh: refresh };
})();
