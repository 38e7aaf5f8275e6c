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
  // Detection runs in a task on the server: the status card follows the run (meters checked so far), then says
  // what it found, cases opened and alerts raised. A run under way when the page opens is followed too.
  var detectButton = document.getElementById("rp-detect"), card = document.getElementById("rp-detect-result");
  function showRun(r) {
    var title = document.getElementById("rp-detect-title"), detail = document.getElementById("rp-detect-detail");
    card.hidden = false;
    card.classList.toggle("is-error", r.state === "failed");
    detectButton.disabled = r.state === "queued" || r.state === "running";
    if (r.state === "queued" || r.state === "running") {
      title.innerHTML = '<span class="hes-spinner"></span> ' + R.esc(R.t("Running detection…"));
      detail.textContent = r.state === "queued" ? R.t("Waiting for the task queue.") :
        R.t("Meters checked: {checked} of {meters} ({progress}%)", {checked: r.checked, meters: r.meters, progress: r.progress});
      if (r.status_url) window.setTimeout(function () { R.load(r.status_url, showRun); }, 1000);
      return;
    }
    if (r.state === "failed") {
      title.textContent = R.t("Detection failed: {error}", {error: r.message || ""});
      detail.textContent = "";
      return;
    }
    var s = r.result;
    title.textContent = R.t("Detection finished — meters checked: {meters}, new findings: {findings}.",
      {meters: s.meters, findings: s.new_findings});
    var rules = Object.keys(s.by_rule).map(function (k) { return k + " " + s.by_rule[k]; }).join(", ");
    detail.textContent = R.t("Cases opened: {cases} · alerts raised: {alerts}",
      {cases: s.investigations_opened, alerts: s.alerts_raised}) + (rules ? " · " + R.t("by rule: {rules}", {rules: rules}) : "");
    refresh();
  }
  detectButton.addEventListener("click", function () {
    detectButton.disabled = true;
    showRun({state: "queued"});
    R.post(base + "detect", {}, showRun, function (message) {
      card.classList.add("is-error");
      document.getElementById("rp-detect-title").textContent = R.t("Detection failed: {error}", {error: message});
      document.getElementById("rp-detect-detail").textContent = "";
      detectButton.disabled = false;
    });
  });
  R.load(base + "detect/latest", function (r) { if (r.state === "queued" || r.state === "running") showRun(r); });
  document.getElementById("rp-state").addEventListener("change", refresh);
  refresh();
})();
