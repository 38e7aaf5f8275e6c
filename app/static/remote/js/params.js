/* Meter Reading / Meter Setting: the brand's parameters in collapsible groups; read the selected ones
   (POST /api/v1/meter/<id>/read), values with units and read time; profiles as table + chart; on the
   Setting page, write with a confirmation (a "set" command) and show the value the meter reads back. */
(function () {
  "use strict";

  var $ = function (id) { return document.getElementById(id); };
  var root = document.querySelector("[data-mode]");
  var mode = root.getAttribute("data-mode");
  var points = [];
  var chosen = new Set();
  var profiles = {};
  var chart = null;
  var t = HES.t, word = HES.word;

  function visible(p) { return mode === "set" ? (p.readable || p.writable) : p.readable; }
  function cellId(key) { return "mp-v-" + key; }

  function valueHtml(item) {
    if (item.error) return '<span class="rm-value err"><i class="fa fa-exclamation-triangle"></i> ' + HES.escape(item.error) + "</span>";
    var v = item.value;
    if (v && typeof v === "object") v = JSON.stringify(v);
    return '<span class="rm-value">' + HES.escape(v == null ? "—" : v) + "</span>" + (item.unit ? " " + HES.escape(item.unit) : "") +
      (item.read_at ? '<span class="hes-sub">' + HES.escape(HES.formatTime(item.read_at)) + "</span>" : "");
  }

  function writeControl(p) {
    if (!p.writable || mode !== "set") return "";
    if (p.access === "x") {
      var needs = p.class_id === 115 || (p.datatype && p.datatype !== "int8");
      return '<div class="rm-write">' + (needs ? '<input class="form-control" data-input="' + p.key + '" placeholder="' + HES.escape(p.class_id === 115 ? t("20-digit token") : t("value")) + '">' : "") +
        '<button type="button" class="btn btn-warning btn-sm" data-write="' + p.key + '"><i class="fa fa-bolt"></i> ' + HES.escape(t("Execute")) + "</button></div>";
    }
    var type = p.datatype === "date_time" ? "datetime-local" : "text";
    return '<div class="rm-write"><input class="form-control" type="' + type + '" data-input="' + p.key + '" placeholder="' + HES.escape(p.unit || p.datatype || "") +
      '"><button type="button" class="btn btn-warning btn-sm" data-write="' + p.key + '"><i class="fa fa-pencil"></i> ' + HES.escape(t("Write")) + "</button></div>";
  }

  function paintGroups() {
    var groups = [];
    var byGroup = {};
    points.filter(visible).forEach(function (p) {
      if (!byGroup[p.group]) { byGroup[p.group] = []; groups.push(p.group); }
      byGroup[p.group].push(p);
    });
    $("mp-groups").innerHTML = groups.map(function (g, i) {
      var rows = byGroup[g].map(function (p) {
        var box = p.readable ? '<input type="checkbox" data-key="' + p.key + '"' + (chosen.has(p.key) ? " checked" : "") + ">" : "";
        return "<tr><td style=\"width:28px\">" + box + "</td><td><b>" + HES.escape(p.name) + '</b><span class="rm-obis">' + HES.escape(p.obis) +
          " · " + HES.escape(p.attribute ? t("class {c} attr {n}", { c: p.class_id, n: p.attribute }) : t("class {c} method {n}", { c: p.class_id, n: p.method })) +
          " · " + HES.escape(p.access) + "</span></td>" +
          '<td id="' + cellId(p.key) + '">' + (p.readable ? '<span class="text-muted">—</span>' : '<span class="text-muted">' + HES.escape(t("method")) + "</span>") + "</td>" +
          (mode === "set" ? "<td>" + writeControl(p) + "</td>" : "") + "</tr>";
      }).join("");
      return "<details" + (i < 2 ? " open" : "") + "><summary>" + HES.escape(g) + ' <span class="badge">' + byGroup[g].length +
        '</span></summary><div class="table-responsive"><table class="table table-hover"><tbody>' + rows + "</tbody></table></div></details>";
    }).join("") || '<div class="hes-card"><div class="hes-empty"><i class="fa fa-list"></i><b>' + HES.escape(t("No parameters")) + "</b>" +
      HES.escape(mode === "set" ? t("This brand lists no readable or writable parameters.") : t("This brand lists no readable parameters.")) + "</div></div>";
    paintSelection();
  }

  function paintSelection() {
    $("mp-selected").textContent = t("{n} selected", { n: chosen.size });
    $("mp-read").disabled = !chosen.size;
  }

  function isoOf(input) { return input.value ? new Date(input.value).toISOString() : null; }

  function read(keys) {
    var m = RM.meter();
    var body = { points: keys };
    var hasProfile = keys.some(function (k) { var p = points.find(function (x) { return x.key === k; }); return p && p.profile; });
    if (hasProfile) { body.from = isoOf($("mp-from")); body.to = isoOf($("mp-to")); }
    keys.forEach(function (k) { $(cellId(k)).innerHTML = '<span class="hes-spinner"></span>'; });
    $("mp-read").disabled = true;
    return HES.api("/api/v1/meter/" + m.id + "/read", { method: "POST", body: body }).then(function (data) {
      (data.results || []).forEach(function (item) {
        if (item.rows) { profiles[item.key] = item; item.value = t("{n} rows (below)", { n: item.rows.length }); }
        var cell = $(cellId(item.key));
        if (cell) cell.innerHTML = valueHtml(item);
      });
      paintProfiles();
      HES.toast(t("Read {n} parameter(s) from {number}.", { n: (data.results || []).length, number: m.number }), "success");
    }).catch(function (error) {
      keys.forEach(function (k) { $(cellId(k)).innerHTML = '<span class="rm-value err">' + HES.escape(error.message) + "</span>"; });
      HES.toast(t("Read failed: {error}", { error: error.message }), "danger");
    }).then(paintSelection);
  }

  function paintProfiles() {
    var keys = Object.keys(profiles);
    $("mp-profile").hidden = !keys.length;
    if (!keys.length) return;
    var pick = $("mp-profile-pick");
    var current = pick.value && profiles[pick.value] ? pick.value : keys[keys.length - 1];
    pick.innerHTML = keys.map(function (k) { return "<option value=\"" + k + "\"" + (k === current ? " selected" : "") + ">" + HES.escape(profiles[k].name) + "</option>"; }).join("");
    var prof = profiles[current];
    var columns = prof.columns || [];
    var timeIndex = columns.findIndex(function (c) { return c.class_id === 8; });
    var title = function (c) { return c.class_id === 8 ? t("Time") : (c.name || c.obis) + (c.unit ? " (" + c.unit + ")" : ""); };
    $("mp-profile-title").textContent = prof.name;
    $("mp-profile-hint").textContent = t("{n} rows", { n: prof.rows.length }) + " · " + prof.obis;
    $("mp-profile-table").innerHTML = "<thead><tr>" + columns.map(function (c) { return "<th>" + HES.escape(title(c)) + "</th>"; }).join("") + "</tr></thead><tbody>" +
      prof.rows.slice().reverse().slice(0, 500).map(function (row) {
        return "<tr>" + row.map(function (v, i) {
          var shown = i === timeIndex ? HES.formatTime(v) : typeof v === "number" ? HES.number(v) : v;
          return "<td>" + HES.escape(shown) + "</td>";
        }).join("") + "</tr>";
      }).join("") + "</tbody>";
    // One line per numeric channel, named after it; one y-axis per unit, titled with the unit.
    var palette = ["#2563eb", "#14b8a6", "#f59e0b", "#ef4444", "#8b5cf6"];
    var units = [];
    var datasets = columns.map(function (c, i) {
      if (i === timeIndex || !prof.rows.some(function (r) { return typeof r[i] === "number"; })) return null;
      var unit = c.unit || "";
      if (units.indexOf(unit) < 0) units.push(unit);
      return { label: title(c), data: prof.rows.map(function (r) { return r[i]; }), borderColor: palette[i % palette.length],
        backgroundColor: palette[i % palette.length], pointRadius: 0, borderWidth: 2, tension: .25, yAxisID: "y" + units.indexOf(unit) };
    }).filter(Boolean).slice(0, 5);
    var labels = prof.rows.map(function (r) { return timeIndex >= 0 ? HES.formatTime(r[timeIndex]) : ""; });
    if (chart) chart.destroy();
    if (!window.Chart) return;
    var scales = { x: { ticks: { maxTicksLimit: 8 } } };
    units.forEach(function (unit, i) {
      if (!datasets.some(function (d) { return d.yAxisID === "y" + i; })) return;
      scales["y" + i] = { position: i % 2 ? "right" : "left", grid: { drawOnChartArea: i === 0 },
        title: { display: !!unit, text: unit }, ticks: { callback: function (v) { return HES.number(v); } } };
    });
    chart = new window.Chart($("mp-chart"), { type: "line", data: { labels: labels, datasets: datasets },
      options: { locale: HES.locale, responsive: true, maintainAspectRatio: false, animation: false, interaction: { mode: "index", intersect: false }, scales: scales } });
  }

  function write(key) {
    var m = RM.meter();
    var p = points.find(function (x) { return x.key === key; });
    var input = document.querySelector('[data-input="' + key + '"]');
    var value = input ? input.value : "";
    if (input && input.type === "datetime-local" && value) value = new Date(value).toISOString();
    if (input && !value && p.access !== "x") { HES.toast(t("Enter a value for {name} first.", { name: p.name }), "warning"); return; }
    var what = p.access === "x" ? t("Execute “{name}” on meter {number}?", { name: p.name, number: m.number })
      : t("Write {name} = {value} to meter {number}?", { name: p.name, value: value + (p.unit ? " " + p.unit : ""), number: m.number });
    RM.confirm(what, function () {
      var values = {};
      values[key] = value;
      $(cellId(key)).innerHTML = '<span class="hes-spinner"></span> ' + HES.escape(t("writing…"));
      HES.api("/api/v1/command/", { method: "POST", body: { kind: "set", meter_id: m.id, values: values, idempotency_key: RM.key() } })
        .then(function (data) { return RM.follow(data.result); })
        .then(function (c) {
          var item = ((c.result || {}).values || [])[0] || {};
          if (c.state === "queued") { $(cellId(key)).innerHTML = '<span class="text-muted">' + HES.escape(t("stored — the meter is offline")) + "</span>"; return; }
          var shown = item.read_back && item.read_back.relay_state ? { value: t(word(item.read_back.relay_state)) } : item;
          $(cellId(key)).innerHTML = c.state === "succeeded" ? valueHtml(Object.assign({}, shown, { error: null, read_at: item.read_at || c.finished_at })) +
            ' <span class="hes-pill pill-success">' + HES.escape(t("read back")) + "</span>" : valueHtml({ error: c.reason || c.state });
          HES.toast(p.name + ": " + t(word(c.state)) + (c.reason ? " — " + c.reason : ""), c.state === "succeeded" ? "success" : "danger");
        })
        .catch(function (error) { $(cellId(key)).innerHTML = valueHtml({ error: error.message }); HES.toast(t("Not written: {error}", { error: error.message }), "danger"); });
    });
  }

  $("mp-groups").addEventListener("change", function (e) {
    var key = e.target.getAttribute("data-key");
    if (!key) return;
    if (e.target.checked) chosen.add(key); else chosen.delete(key);
    paintSelection();
  });
  $("mp-groups").addEventListener("click", function (e) {
    var btn = e.target.closest("[data-write]");
    if (btn) write(btn.getAttribute("data-write"));
  });
  $("mp-all").addEventListener("click", function () {
    points.forEach(function (p) { if (p.readable && !p.profile) chosen.add(p.key); });
    paintGroups();
  });
  $("mp-read").addEventListener("click", function () { read(Array.from(chosen)); });
  $("mp-profile-pick").addEventListener("change", paintProfiles);

  var now = new Date();
  var local = function (d) { return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16); };
  $("mp-to").value = local(now);
  $("mp-from").value = local(new Date(now.getTime() - 24 * 3600 * 1000));

  RM.onMeter(function (m, why) {
    if (why === "status") return;
    $("mp-empty").hidden = true;
    $("mp-work").hidden = false;
    $("mp-actions").hidden = false;
    points = m.points || [];
    chosen.clear();
    profiles = {};
    paintGroups();
    paintProfiles();
  });
})();
