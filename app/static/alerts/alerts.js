/* Active Alerts inbox: server-paged list (REST API), bulk acknowledge/resolve, live via Socket.IO. */
(function () {
  "use strict";
  var root = document.getElementById("alerts-page");
  if (!root || !window.HES) return;
  var H = window.HES, api = root.getAttribute("data-api"), page = 0, pageSize = 25, total = 0;
  var el = function (id) { return document.getElementById(id); };
  var titles = JSON.parse(root.getAttribute("data-titles") || "{}");
  var english = /^en\b/.test(H.locale);

  /* A stored title is written in English when the alert is raised ("Communication lost on meter BS001"); in another
     language a known alert type shows its translated name (the meter has its own column), the stored title on hover. */
  function titleOf(a) { return !english && titles[a.alert_type] ? titles[a.alert_type] : H.t(a.title); }

  function rison() {
    var filters = ["(col:state,opr:eq,value:" + el("al-state").value + ")"];
    if (el("al-severity").value) filters.push("(col:severity,opr:eq,value:" + el("al-severity").value + ")");
    var area = root.getAttribute("data-area");
    if (area) filters.push("(col:area_id,opr:in_area,value:" + area + ")");
    return "(filters:!(" + filters.join(",") + "),order_column:last_at,order_direction:desc,page:" + page +
      ",page_size:" + pageSize + ")";
  }

  function severityPill(sev) {
    var kind = sev === "critical" ? "danger" : sev === "warning" ? "warning" : "info";
    return '<span class="hes-pill pill-' + kind + '">' + H.escape(H.t(H.word(sev))) + "</span>";
  }

  function render(rows) {
    var body = el("al-rows");
    if (!rows.length) {
      body.innerHTML = '<tr><td colspan="8"><div class="hes-empty"><i class="fa fa-check-circle fa-2x"></i><br>' +
        H.escape(H.t("No alerts here. All quiet.")) + "</div></td></tr>";
      return;
    }
    body.innerHTML = rows.map(function (a) {
      return '<tr data-id="' + a.id + '"><td><input type="checkbox" class="al-check" value="' + a.id + '"></td><td>' +
        severityPill(a.severity) + "</td><td><b title=\"" + H.escape(a.title) + "\">" + H.escape(titleOf(a)) + '</b><br><span class="text-muted small">' +
        H.escape(a.alert_type) + " · " + H.escape(H.t(H.word(a.kind))) + "</span></td><td>" +
        (a.meter && a.meter.number ? '<a href="/events/?meter=' + encodeURIComponent(a.meter.number) + '">' +
          H.escape(a.meter.number) + "</a>" : "—") + "</td><td>" + a.count + "</td><td>" + H.formatTime(a.first_at) +
        "</td><td>" + H.formatTime(a.last_at) + "</td><td>" + H.escape(a.ack_comment || "") + "</td></tr>";
    }).join("");
  }

  function load() {
    var q = rison();
    el("al-csv").href = api + "export?q=" + encodeURIComponent(q.replace(/,page:\d+,page_size:\d+/, ""));
    el("al-pdf").href = api + "pdf?q=" + encodeURIComponent(q.replace(/,page:\d+,page_size:\d+/, ""));
    return H.api(api + "?q=" + encodeURIComponent(q)).then(function (data) {
      total = data.count;
      el("al-total").textContent = total;
      el("al-page").textContent = page + 1;
      el("al-range").textContent = total ? H.t("{first}–{last} of {total}", { first: page * pageSize + 1, last: Math.min(total, (page + 1) * pageSize), total: total }) : "0";
      if (el("al-state").value === "active") H.setAlertCount(total);
      render(data.result);
      selectionChanged();
    }).catch(function (err) { H.toast(err.message || H.t("Could not load alerts"), "danger"); });
  }

  function selected() {
    return Array.prototype.map.call(document.querySelectorAll(".al-check:checked"), function (c) { return Number(c.value); });
  }

  function selectionChanged() {
    var n = selected().length, state = el("al-state").value;
    el("al-ack").disabled = !n || state !== "active";
    el("al-resolve").disabled = !n || state === "resolved";
  }

  function act(action, done) {
    var ids = selected();
    if (!ids.length) return;
    H.api(api + action, { method: "POST", body: { ids: ids, comment: el("al-comment").value || null } })
      .then(function () { H.toast(H.t(done, { n: ids.length }), "success"); el("al-comment").value = ""; load(); })
      .catch(function (err) { H.toast(err.message || H.t("Failed"), "danger"); });
  }

  el("al-rows").addEventListener("change", selectionChanged);
  el("al-check-all").addEventListener("change", function (e) {
    Array.prototype.forEach.call(document.querySelectorAll(".al-check"), function (c) { c.checked = e.target.checked; });
    selectionChanged();
  });
  el("al-ack").addEventListener("click", function () { act("acknowledge", H.t("{n} alert(s) acknowledged")); });
  el("al-resolve").addEventListener("click", function () { act("resolve", H.t("{n} alert(s) resolved")); });
  el("al-state").addEventListener("change", function () { page = 0; load(); });
  el("al-severity").addEventListener("change", function () { page = 0; load(); });
  el("al-prev").addEventListener("click", function () { if (page > 0) { page--; load(); } });
  el("al-next").addEventListener("click", function () { if ((page + 1) * pageSize < total) { page++; load(); } });
  var pending = null;
  function soon() { clearTimeout(pending); pending = setTimeout(load, 300); }
  H.on("alert_raised", soon);
  H.on("alert_acknowledged", soon);
  H.on("alert_resolved", soon);
  load();
})();
