/* The leakage report page. */
(function () {
  "use strict";
  var R = window.HesReport, base = document.getElementById("rp-root").dataset.base;
  var keys = ["zero_consumption", "reverse_flow", "tamper", "relay_open_consuming", "credit_exhausted_relay_closed", "long_offline", "below_area_pattern"];
  function refresh() {
    R.links(base);
    R.load(base + "?" + R.query(), function (d) {
      document.getElementById("rp-as-of").textContent = R.t("Counted at {time}", {time: window.HES.formatTime(d.as_of)});
      keys.concat(["tamper_events"]).forEach(function (k) { var el = document.getElementById("k-" + k); if (el) el.textContent = d.totals[k]; });
      R.chart("rp-chart", d.trend.map(function (x) { return x.date; }),
              [{label: R.t("Zero consumption"), data: d.trend.map(function (x) { return x.zero_consumption; })},
               {label: R.t("Reverse flow"), data: d.trend.map(function (x) { return x.reverse_flow; })},
               {label: R.t("Tamper events"), data: d.trend.map(function (x) { return x.tamper_events; })}], "line");
      R.table("rp-areas", d.areas, function (a) { return [R.esc(a.area), a.meters].concat(keys.map(function (k) { return a[k]; })); });
      R.table("rp-exceptions", d.exceptions.slice(0, 500), function (e) {
        return [R.esc(e.meter), R.esc(e.customer), R.esc(e.area), '<span class="hes-pill pill-warning">' + R.esc(R.t(e.label)) + "</span>", R.esc(e.value)];
      }, R.t("No exceptions: nothing leaks here."));
    });
  }
  document.getElementById("rp-filters").addEventListener("submit", refresh);
  refresh();
})();
