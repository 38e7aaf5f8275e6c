/* The technical loss report page. */
(function () {
  "use strict";
  var R = window.HesReport, base = document.getElementById("rp-root").dataset.base;
  document.getElementById("rp-end").value = R.isoDate(0);
  document.getElementById("rp-start").value = R.isoDate(-29);
  function refresh() {
    R.links(base);
    R.load(base + "?" + R.query(), function (d) {
      var periods = Array.from(new Set(d.result.map(function (r) { return r.period; }))).sort();
      function total(key, p) { return d.result.filter(function (r) { return r.period === p; }).reduce(function (a, r) { return a + r[key]; }, 0); }
      R.chart("rp-chart", periods, [{label: R.t("Energy in kWh"), data: periods.map(function (p) { return total("energy_in_kwh", p); })},
                                    {label: R.t("Consumers kWh"), data: periods.map(function (p) { return total("consumers_kwh", p); })}]);
      R.table("rp-rows", d.result, function (r) {
        var hot = r.loss_pct != null && r.loss_pct > d.threshold_pct;
        return [R.esc(r.area), R.esc(r.supply_meter), R.esc(r.period), R.num(r.energy_in_kwh), R.num(r.consumers_kwh), R.num(r.loss_kwh),
                '<span class="hes-pill ' + (hot ? "pill-danger" : "pill-success") + '">' + R.num(r.loss_pct, 2) + "%</span>",
                r.meters_reporting + " / " + r.consumer_meters];
      }, (d.supplied || []).length
        ? R.t("No readings in this period from the supply meters ({meters}) or their consumers.",
              {meters: d.supplied.map(function (s) { return s.supply_meter + " · " + s.area; }).join(", ")})
        : R.t("No area has a supply meter in this scope: set one on the area (Supply meter) to see its balance."));
    });
  }
  document.getElementById("rp-filters").addEventListener("submit", refresh);
  refresh();
})();
