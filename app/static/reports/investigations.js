/* The investigations report page. */
(function () {
  "use strict";
  var R = window.HesReport, base = document.getElementById("rp-root").dataset.base, current = null;
  function refresh() {
    R.links(base);
    R.load(base + "?" + R.query(), function (d) {
      var s = d.summary;
      document.getElementById("k-open").textContent = s.open;
      document.getElementById("k-theft").textContent = s.theft_confirmed;
      document.getElementById("k-closed").textContent = s.closed;
      document.getElementById("k-energy").textContent = R.num(s.energy_recovered_kwh, 1);
      document.getElementById("k-amount").textContent = R.num(s.amount_recovered, 2);
      R.table("rp-cases", d.result, function (c) {
        return ['<a href="#" data-case="' + c.id + '">' + c.id + "</a>", R.esc(c.meter), R.esc(c.area), R.esc(c.rules.join(", ")),
                R.num(c.score, 2), R.esc(c.assigned_to || "—"),
                '<span class="hes-pill ' + (c.state === "open" ? "pill-warning" : "pill-success") + '">' + R.esc(R.t(window.HES.word(c.outcome || c.state))) + "</span>"];
      }, R.t("No cases."));
      R.table("rp-precision", d.precision, function (p) {
        return [R.esc(p.rule), p.closed, p.theft_confirmed, p.meter_fault, p.false_alarm, p.precision == null ? "—" : R.num(100 * p.precision, 0) + "%"];
      }, R.t("No closed cases yet."));
    });
  }
  function show(id) {
    R.load(base + id, function (c) {
      current = c;
      document.getElementById("rp-case").hidden = false;
      document.getElementById("c-title").textContent = "#" + c.id + " · " + c.meter + (c.customer ? " · " + c.customer : "");
      document.getElementById("c-state").textContent = R.t(window.HES.word(c.state)) + (c.outcome ? " · " + R.t(window.HES.word(c.outcome)) : "");
      document.getElementById("c-reason").textContent = c.reason || "";
      document.getElementById("c-findings").innerHTML = c.findings.map(function (f) { return "<li><b>" + R.esc(f.rule) + "</b> " + R.esc(f.as_of) + " (" + R.num(f.score, 2) + "): " + R.esc(f.reason) + "</li>"; }).join("");
      document.getElementById("c-notes").innerHTML = c.notes.map(function (n) { return "<li><small>" + R.esc(n.at.slice(0, 16)) + " · " + R.esc(n.author) + "</small><br>" + R.esc(n.text) + "</li>"; }).join("");
      document.getElementById("c-close-box").hidden = c.state !== "open";
    });
  }
  function act(path, payload) { R.post(base + current.id + "/" + path, payload, function () { show(current.id); refresh(); }); }
  document.getElementById("rp-cases").addEventListener("click", function (e) {
    var a = e.target.closest("[data-case]"); if (a) { e.preventDefault(); show(a.dataset.case); }
  });
  document.getElementById("c-note-btn").addEventListener("click", function () { act("note", {text: document.getElementById("c-note").value}); });
  document.getElementById("c-assign-btn").addEventListener("click", function () { act("assign", {username: document.getElementById("c-user").value}); });
  document.getElementById("c-close-btn").addEventListener("click", function () {
    act("close", {outcome: document.getElementById("c-outcome").value, energy_recovered_kwh: document.getElementById("c-energy").value,
                  amount_recovered: document.getElementById("c-amount").value});
  });
  document.getElementById("rp-detect").addEventListener("click", function () {
    R.post(base + "detect", {}, function (r) { R.toast(R.t("{findings} new findings on {meters} meters", {findings: r.new_findings, meters: r.meters}), "success"); refresh(); });
  });
  document.getElementById("rp-state").addEventListener("change", refresh);
  refresh();
})();
