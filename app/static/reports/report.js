/* HES Core report pages: filters as a query string, download links, JSON loading, tables and charts. */
window.HesReport = (function () {
  "use strict";
  var H = window.HES, t = H.t;
  // The filter form only re-queries the page's API; it never submits.
  document.addEventListener("submit", function (e) { if (e.target.id === "rp-filters") e.preventDefault(); }, true);
  function query(extra) {
    var form = document.getElementById("rp-filters"), params = new URLSearchParams();
    if (form) new FormData(form).forEach(function (v, k) { if (v !== "") params.set(k, v); });
    var area = document.body.getAttribute("data-area") || (document.getElementById("rp-root") || {}).dataset.area;
    if (area) params.set("area", area);
    Object.keys(extra || {}).forEach(function (k) { if (extra[k] !== "" && extra[k] != null) params.set(k, extra[k]); });
    return params.toString();
  }
  function links(base) {
    var q = query();
    ["csv", "pdf"].forEach(function (kind) {
      var a = document.getElementById("rp-" + kind);
      if (a) a.href = base + kind + (q ? "?" + q : "");
    });
  }
  function load(url, done) {
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.json().then(function (body) { return {ok: r.ok, body: body}; }); })
      .then(function (res) {
        if (!res.ok) { toast(res.body.message || t("Request failed")); return; }
        done(res.body);
      });
  }
  // POST JSON; ``failed(message)`` (default: a toast) on an error answer, ``always()`` after either.
  function post(url, payload, done, failed, always) {
    var token = document.querySelector("meta[name=csrf-token]");
    failed = failed || function (message) { toast(message); };
    fetch(url, {method: "POST", credentials: "same-origin", body: JSON.stringify(payload || {}),
                headers: {"Content-Type": "application/json", "X-CSRFToken": token ? token.content : ""}})
      .then(function (r) { return r.json().then(function (body) { return {ok: r.ok, body: body}; }); })
      .then(function (res) { if (!res.ok) { failed(res.body.message || t("Request failed")); return; } done(res.body); })
      .catch(function () { failed(t("Request failed")); })
      .then(function () { if (always) always(); });
  }
  function toast(text, kind) { H.toast(text, kind || "danger"); }
  function esc(v) { return v == null ? "" : String(v).replace(/[&<>"]/g, function (c) { return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]; }); }
  function table(tbodyId, rows, cells, empty) {
    var body = document.getElementById(tbodyId);
    if (!rows.length) { body.innerHTML = '<tr><td colspan="20"><div class="hes-empty">' + esc(empty || t("No data for these filters.")) + "</div></td></tr>"; return; }
    body.innerHTML = rows.map(function (r) { return "<tr>" + cells(r).map(function (c) { return "<td>" + c + "</td>"; }).join("") + "</tr>"; }).join("");
  }
  var charts = {};
  function chart(canvasId, labels, datasets, type) {
    var css = getComputedStyle(document.documentElement), text = css.getPropertyValue("--hes-muted") || "#64748b";
    var palette = ["#0f766e", "#f59e0b", "#dc2626", "#6366f1", "#0ea5e9"];
    if (charts[canvasId]) charts[canvasId].destroy();
    charts[canvasId] = new window.Chart(document.getElementById(canvasId), {
      type: type || "bar",
      data: {labels: labels, datasets: datasets.map(function (d, i) {
        return Object.assign({backgroundColor: palette[i % 5], borderColor: palette[i % 5], borderRadius: 6, tension: 0.3,
                              pointRadius: 0, borderWidth: 2, maxBarThickness: 40}, d); })},
      options: {locale: H.locale, responsive: true, maintainAspectRatio: false, animation: {duration: 300},
                plugins: {legend: {display: datasets.length > 1, labels: {color: text}}},
                scales: {x: {grid: {display: false}, ticks: {color: text, maxTicksLimit: 16}},
                         y: {beginAtZero: true, ticks: {color: text}}}}
    });
  }
  function num(v, d) { return v == null ? "—" : Number(v).toLocaleString(H.locale, {minimumFractionDigits: d == null ? 3 : d, maximumFractionDigits: d == null ? 3 : d}); }
  // Dates relative to today in the utility's zone (the server's data-today), not the browser's clock or UTC.
  function isoDate(offsetDays) {
    var root = document.getElementById("rp-root"), today = root && root.dataset.today;
    var d = today ? new Date(today + "T00:00:00Z") : new Date();
    d.setUTCDate(d.getUTCDate() + offsetDays);
    return d.toISOString().slice(0, 10);
  }
  return {query: query, links: links, load: load, post: post, table: table, chart: chart, num: num, esc: esc, isoDate: isoDate,
          toast: toast, t: t};
})();
