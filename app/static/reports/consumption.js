/* The consumption report page. */
(function () {
  "use strict";
  var R = window.HesReport, root = document.getElementById("rp-root"), base = root.dataset.base;
  document.getElementById("rp-end").value = R.isoDate(0);
  document.getElementById("rp-start").value = R.isoDate(-(Number(root.dataset.days) - 1));
  function refresh() {
    R.links(base);
    R.load(base + "?" + R.query(), function (d) {
      var s = d.summary;
      document.getElementById("k-import").textContent = R.num(s.import_kwh);
      document.getElementById("k-export").textContent = R.num(s.export_kwh);
      document.getElementById("k-meters").textContent = s.meters_with_data;
      document.getElementById("k-scope").textContent = s.meters;
      document.getElementById("k-avg").textContent = R.num(s.avg_kwh_per_meter);
      document.getElementById("k-day").textContent = R.num(s.avg_kwh_per_day);
      document.getElementById("rp-range").textContent = s.start + " → " + s.end + " · " + d.timezone;
      var labels = d.series.map(function (p) { return p.period; });
      var sets = [{label: R.t("Import kWh"), data: d.series.map(function (p) { return p.import_kwh; })}];
      if (s.export_kwh) sets.push({label: R.t("Export kWh"), data: d.series.map(function (p) { return p.export_kwh; })});
      R.chart("rp-chart", labels, sets, d.granularity === "hourly" ? "line" : "bar");
      R.table("rp-periods", d.series, function (p) { return [R.esc(p.period), R.num(p.import_kwh), R.num(p.export_kwh), R.num(p.net_kwh), p.meters]; });
      R.table("rp-meters", d.meters, function (m) { return [R.esc(m.meter), R.esc(m.area), R.num(m.import_kwh)]; });
    });
  }
  document.getElementById("rp-filters").addEventListener("submit", refresh);
  refresh();
})();
