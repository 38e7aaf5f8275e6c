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
      document.getElementById("c-notes").innerHTML = c.notes.map(function (n) { return "<li><small>" + R.esc(window.HES.formatTime(n.at)) + " · " + R.esc(n.author) + "</small><br>" + R.esc(n.text) + "</li>"; }).join("");
      document.getElementById("c-close-box").hidden = c.state !== "open";
      pickAssignee(c.assigned_to);
    });
  }
  // The users a case can go to, loaded once; the case's assignee is preselected.
  var assignees = null;
  function pickAssignee(username) {
    var select = document.getElementById("c-user");
    var fill = function (users) {
      select.innerHTML = '<option value="">' + R.esc(R.t("Unassigned")) + "</option>" + users.map(function (u) {
        return '<option value="' + R.esc(u.username) + '">' + R.esc(u.name + (u.name !== u.username ? " (" + u.username + ")" : "")) + "</option>";
      }).join("");
      select.value = username || "";
    };
    if (assignees) { fill(assignees); return; }
    R.load(base + "assignees", function (d) { assignees = d.result; fill(assignees); });
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
  // Detection answers in the page: a status card says what the run found, cases opened and alerts raised.
  document.getElementById("rp-detect").addEventListener("click", function () {
    var button = this, card = document.getElementById("rp-detect-result");
    button.disabled = true;
    card.hidden = false;
    card.classList.remove("is-error");
    document.getElementById("rp-detect-title").innerHTML = '<span class="hes-spinner"></span> ' + R.esc(R.t("Running detection…"));
    document.getElementById("rp-detect-detail").textContent = "";
    R.post(base + "detect", {}, function (r) {
      document.getElementById("rp-detect-title").textContent = R.t("Detection finished — meters checked: {meters}, new findings: {findings}.",
        {meters: r.meters, findings: r.new_findings});
      var rules = Object.keys(r.by_rule).map(function (k) { return k + " " + r.by_rule[k]; }).join(", ");
      document.getElementById("rp-detect-detail").textContent = R.t("Cases opened: {cases} · alerts raised: {alerts}",
        {cases: r.investigations_opened, alerts: r.alerts_raised}) + (rules ? " · " + R.t("by rule: {rules}", {rules: rules}) : "");
      refresh();
    }, function (message) {
      card.classList.add("is-error");
      document.getElementById("rp-detect-title").textContent = R.t("Detection failed: {error}", {error: message});
    }, function () { button.disabled = false; });
  });
  document.getElementById("rp-state").addEventListener("change", refresh);
  refresh();
})();
