/* The completeness report page. */
(function () {
  "use strict";
  var R = window.HesReport, base = document.getElementById("rp-root").dataset.base;
  document.getElementById("rp-end").value = R.isoDate(0);
  document.getElementById("rp-start").value = R.isoDate(-6);
  function refresh() {
    R.links(base);
    R.load(base + "?" + R.query(), function (d) {
      var s = d.summary;
      document.getElementById("k-pct").textContent = R.num(s.completeness_pct, 1);
      document.getElementById("k-ontime").textContent = R.num(s.on_time_pct, 1);
      document.getElementById("k-received").textContent = R.num(s.received, 0);
      document.getElementById("k-expected").textContent = R.num(s.expected, 0);
      document.getElementById("k-meters").textContent = s.meters;
      R.chart("rp-chart", d.days.map(function (x) { return x.date; }),
              [{label: R.t("Received %"), data: d.days.map(function (x) { return x.completeness_pct; })},
               {label: R.t("On time %"), data: d.days.map(function (x) { return x.on_time_pct; })}]);
      R.table("rp-meters", d.worst_meters, function (m) { return [R.esc(m.meter), R.esc(m.area), m.expected, m.received, m.on_time, R.num(m.completeness_pct, 1)]; });
      R.table("rp-areas", d.areas, function (a) { return [R.esc(a.area), a.meters, R.num(a.completeness_pct, 1), R.num(a.on_time_pct, 1)]; });
    });
  }
  document.getElementById("rp-filters").addEventListener("submit", refresh);
  refresh();
})();
