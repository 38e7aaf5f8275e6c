/* Event Analysis: filters → counts per type per day (chart), paged event table, CSV/PDF of the same filters. */
(function () {
  "use strict";
  var root = document.getElementById("events-page");
  if (!root || !window.HES) return;
  var H = window.HES, api = root.getAttribute("data-api"), page = 0, pageSize = 50, total = 0, chart = null;
  var el = function (id) { return document.getElementById(id); };
  var palette = ["#e5484d", "#f5a524", "#3e63dd", "#30a46c", "#8e4ec6", "#0091ff", "#d6409f", "#12a594", "#978365", "#687076"];

  function filters() {
    var f = [];
    if (el("ev-type").value) f.push("(col:event_type,opr:eq,value:" + el("ev-type").value + ")");
    if (el("ev-severity").value) f.push("(col:severity,opr:eq,value:" + el("ev-severity").value + ")");
    if (el("ev-meter").value.trim()) f.push("(col:meter_id,opr:meter_number,value:'" + el("ev-meter").value.trim().replace(/'/g, "") + "')");
    if (el("ev-from").value) f.push("(col:ts,opr:gt,value:'" + el("ev-from").value + "T00:00:00+00:00')");
    if (el("ev-to").value) f.push("(col:ts,opr:lt,value:'" + el("ev-to").value + "T23:59:59+00:00')");
    var area = root.getAttribute("data-area");
    if (area) f.push("(col:meter_id,opr:in_area,value:" + area + ")");
    return "filters:!(" + f.join(",") + ")";
  }

  var titles = {};
  function titleOf(type) { return titles[type] ? H.t(titles[type]) : H.t(H.word(type)); }

  function drawChart(days) {
    var labels = [], types = {};
    days.forEach(function (d) {
      if (labels.indexOf(d.day) < 0) labels.push(d.day);
      types[d.type] = types[d.type] || {};
      types[d.type][d.day] = d.count;
    });
    var datasets = Object.keys(types).map(function (t, i) {
      return { label: titleOf(t), key: t, backgroundColor: palette[i % palette.length], data: labels.map(function (d) { return types[t][d] || 0; }) };
    });
    if (chart) chart.destroy();
    if (typeof window.Chart !== "function") return;
    chart = new window.Chart(el("ev-chart"), {
      type: "bar", data: { labels: labels, datasets: datasets },
      options: { responsive: true, maintainAspectRatio: false, scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } },
        onClick: function (_e, items) {
          if (!items.length) return;
          el("ev-type").value = datasets[items[0].datasetIndex].key;
          var day = labels[items[0].index];
          el("ev-from").value = day; el("ev-to").value = day; page = 0; load();
        } }
    });
  }

  function load() {
    var q = "(" + filters() + ")";
    el("ev-csv").href = api + "export?q=" + encodeURIComponent(q);
    el("ev-pdf").href = api + "pdf?q=" + encodeURIComponent(q);
    H.api(api + "summary?q=" + encodeURIComponent(q)).then(function (s) {
      titles = s.titles || {};
      drawChart(s.days);
      el("ev-types").innerHTML = Object.keys(s.types).map(function (type) {
        return '<span class="hes-pill pill-info">' + H.escape(titleOf(type)) + " · " + s.types[type] + "</span>";
      }).join(" ") || '<span class="text-muted">—</span>';
    }).catch(function (err) { H.toast(err.message || H.t("Could not load the summary"), "danger"); });
    var listQ = "(" + filters() + ",order_column:ts,order_direction:desc,page:" + page + ",page_size:" + pageSize + ")";
    H.api(api + "?q=" + encodeURIComponent(listQ)).then(function (data) {
      total = data.count;
      el("ev-page").textContent = page + 1;
      el("ev-range").textContent = total ? H.t("{first}–{last} of {total}", { first: page * pageSize + 1, last: Math.min(total, (page + 1) * pageSize), total: total }) : "0";
      el("ev-rows").innerHTML = data.result.length ? data.result.map(function (e) {
        return "<tr><td>" + H.formatTime(e.ts) + "</td><td>" + H.escape(e.meter ? e.meter.number : "") + "</td><td>" +
          H.escape(titleOf(e.event_type)) + "</td><td>" + e.code + "</td><td>" + H.escape(H.t(H.word(e.severity))) + "</td><td>" +
          H.escape(H.t(H.word(e.source))) + "</td><td>" + H.escape(e.log || "") + "</td></tr>";
      }).join("") : '<tr><td colspan="7"><div class="hes-empty">' + H.escape(H.t("No events match these filters.")) + "</div></td></tr>";
    }).catch(function (err) { H.toast(err.message || H.t("Could not load events"), "danger"); });
  }

  ["ev-type", "ev-severity", "ev-from", "ev-to"].forEach(function (id) { el(id).addEventListener("change", function () { page = 0; load(); }); });
  var typing = null;
  el("ev-meter").addEventListener("input", function () { clearTimeout(typing); typing = setTimeout(function () { page = 0; load(); }, 400); });
  el("ev-prev").addEventListener("click", function () { if (page > 0) { page--; load(); } });
  el("ev-next").addEventListener("click", function () { if ((page + 1) * pageSize < total) { page++; load(); } });
  load();
})();
