/* Real-Time Monitoring island: a server-paged meter table (search, status and connection filters),
   live dots from meter_status_changed, a selection that survives paging, the brand parameters
   picker, and Read / Execute jobs posted to /api/v1/job/ whose progress streams in as job_progress. */
(function () {
  "use strict";

  var root = document.getElementById("monitoring");
  if (!root || !window.HES) return;
  var HES = window.HES;
  var $ = function (id) { return document.getElementById(id); };
  var state = { page: 0, pageSize: 25, q: "", status: "", online: "", count: 0, rows: [] };
  var selected = new Map();       // meter id -> row (kept across pages)
  var params = [];                // parameters of the selected meters' brands
  var chosen = new Set();         // chosen parameter keys
  var values = {};                // key -> value to write
  var job = null;                 // {id, total, done, failed, rows: Map}
  var searchTimer = null;
  var paramsLoadedFor = null;

  /* ---- the meter table ---- */
  function statusCell(row) {
    return '<span class="hes-status ' + (row.online ? "on" : "off") + '" data-status><span class="hes-dot ' +
      (row.online ? "on" : "off") + '"></span>' + HES.escape(row.online ? HES.t("Online") : HES.t("Offline")) + "</span>";
  }

  function lastSeenCell(row) {
    if (!row.last_seen) return '<span class="text-muted">' + HES.escape(HES.t("never")) + "</span>";
    return '<span title="' + HES.escape(HES.formatTime(row.last_seen)) + '">' + HES.escape(HES.ago(row.last_seen)) +
      '<span class="hes-sub">' + HES.escape(HES.formatTime(row.last_seen)) + "</span></span>";
  }

  function rowHtml(row) {
    return '<tr data-id="' + row.id + '"><td><input type="checkbox" class="mon-check" value="' + row.id + '"' +
      (selected.has(row.id) ? " checked" : "") + ' aria-label="' + HES.escape(HES.t("Select {number}", { number: row.number })) + '"></td>' +
      "<td><b>" + HES.escape(row.number) + "</b></td><td>" + statusCell(row) + '</td><td data-last-seen>' + lastSeenCell(row) +
      '</td><td><span class="hes-pill pill-' + HES.escape(row.status) + '">' + HES.escape(HES.t(HES.word(row.status))) + "</span></td>" +
      "<td>" + HES.escape(row.brand) + "</td><td>" + HES.escape(row.customer || "—") + "</td><td>" + HES.escape(row.area || "—") +
      "</td><td>" + HES.escape(row.concentrator_id || "—") + "</td><td>" + HES.escape(row.sim || "—") +
      (row.ip_address ? '<span class="hes-sub">' + HES.escape(row.ip_address) + "</span>" : "") +
      "</td><td>" + HES.escape(HES.t(HES.word(row.relay_state))) + "</td></tr>";
  }

  function paintCounts() {
    var online = state.rows.filter(function (r) { return r.online; }).length;
    $("mon-online-count").textContent = online;
    $("mon-offline-count").textContent = state.rows.length - online;
  }

  function paintTable() {
    var tbody = $("mon-rows");
    if (!state.rows.length) {
      tbody.innerHTML = '<tr><td colspan="11"><div class="hes-empty"><i class="fa fa-search"></i><b>' + HES.escape(HES.t("No meters found")) + "</b>" +
        HES.escape(state.q || state.status || state.online ? HES.t("Try another search or filter.") : HES.t("Add meters under Meter Management.")) + "</div></td></tr>";
    } else {
      tbody.innerHTML = state.rows.map(rowHtml).join("");
    }
    var first = state.count ? state.page * state.pageSize + 1 : 0;
    var last = Math.min(state.count, (state.page + 1) * state.pageSize);
    $("mon-range").textContent = HES.t("Showing {first}–{last} of {total} meters", { first: first, last: last, total: HES.number(state.count) });
    $("mon-page").textContent = HES.t("Page {page} of {pages}", { page: state.page + 1, pages: Math.max(1, Math.ceil(state.count / state.pageSize)) });
    $("mon-prev").disabled = state.page === 0;
    $("mon-next").disabled = last >= state.count;
    paintCounts();
    paintSelection();
  }

  function load() {
    var card = $("mon-table").closest(".hes-card");
    card.classList.add("hes-loading");
    var url = HES.withParams(root.getAttribute("data-meters-url"), {
      page: state.page, page_size: state.pageSize, q: state.q, status: state.status, online: state.online,
      area: root.getAttribute("data-area")
    });
    return HES.api(url).then(function (data) {
      state.count = data.count;
      state.rows = data.result;
      paintTable();
    }).catch(function (error) {
      HES.toast(HES.t("Could not load meters: {error}", { error: error.message }), "danger");
    }).then(function () { card.classList.remove("hes-loading"); });
  }

  /* ---- selection ---- */
  function paintSelection() {
    var onPage = state.rows.filter(function (r) { return selected.has(r.id); }).length;
    var all = $("mon-check-all");
    all.checked = state.rows.length > 0 && onPage === state.rows.length;
    all.indeterminate = onPage > 0 && onPage < state.rows.length;
    $("mon-selected").textContent = !selected.size ? HES.t("No meter selected")
      : selected.size === 1 ? HES.t("1 meter selected") : HES.t("{n} meters selected", { n: selected.size });
    var readable = params.some(function (p) { return chosen.has(p.key) && p.readable; });
    var writable = params.some(function (p) { return chosen.has(p.key) && p.writable; });
    $("mon-read").disabled = !(selected.size && readable);
    $("mon-execute").disabled = !(selected.size && writable);
    $("mon-params-count").textContent = chosen.size;
  }

  $("mon-rows").addEventListener("change", function (event) {
    if (!event.target.classList.contains("mon-check")) return;
    var id = Number(event.target.value);
    var row = state.rows.find(function (r) { return r.id === id; });
    if (event.target.checked) selected.set(id, row); else selected.delete(id);
    paintSelection();
  });

  $("mon-check-all").addEventListener("change", function (event) {
    state.rows.forEach(function (row) {
      if (event.target.checked) selected.set(row.id, row); else selected.delete(row.id);
    });
    Array.prototype.forEach.call(document.querySelectorAll(".mon-check"), function (box) { box.checked = event.target.checked; });
    paintSelection();
  });

  /* ---- filters and paging ---- */
  $("mon-search").addEventListener("input", function (event) {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(function () { state.q = event.target.value.trim(); state.page = 0; load(); }, 300);
  });
  $("mon-status").addEventListener("change", function (event) { state.status = event.target.value; state.page = 0; load(); });
  $("mon-online").addEventListener("change", function (event) { state.online = event.target.value; state.page = 0; load(); });
  $("mon-page-size").addEventListener("change", function (event) { state.pageSize = Number(event.target.value); state.page = 0; load(); });
  $("mon-prev").addEventListener("click", function () { if (state.page > 0) { state.page -= 1; load(); } });
  $("mon-next").addEventListener("click", function () { state.page += 1; load(); });

  /* ---- live status ---- */
  HES.on("meter_status_changed", function (change) {
    var row = state.rows.find(function (r) { return r.id === change.meter_id; });
    if (!row) return;
    row.online = !!change.online;
    if (change.last_seen) row.last_seen = change.last_seen;
    var tr = document.querySelector('#mon-rows tr[data-id="' + row.id + '"]');
    if (!tr) return;
    tr.querySelector("[data-status]").outerHTML = statusCell(row);
    tr.querySelector("[data-last-seen]").innerHTML = lastSeenCell(row);
    tr.classList.remove("hes-flash");
    void tr.offsetWidth;
    tr.classList.add("hes-flash");
    paintCounts();
  });

  /* ---- parameters ---- */
  function paramHtml(p) {
    var badges = (p.readable ? '<span class="hes-pill pill-info" title="' + HES.escape(HES.t("readable")) + '">R</span>' : "") +
      (p.writable ? '<span class="hes-pill pill-warning" title="' + HES.escape(HES.t("writable")) + '">W</span>' : "");
    var input = p.writable && p.access !== "x"
      ? '<input type="text" class="form-control input-sm mon-param-value" data-key="' + HES.escape(p.key) + '" placeholder="' + HES.escape(HES.t("value to write")) + '" value="' +
        HES.escape(values[p.key] || "") + '">' : "";
    return '<label class="hes-param" data-text="' + HES.escape((p.name + " " + p.key + " " + p.obis).toLowerCase()) + '">' +
      '<input type="checkbox" class="mon-param" value="' + HES.escape(p.key) + '"' + (chosen.has(p.key) ? " checked" : "") + ">" +
      '<span class="hes-param-name">' + HES.escape(p.name) + '<small>' + HES.escape(p.obis) + (p.unit ? " · " + HES.escape(p.unit) : "") +
      "</small></span>" + badges + input + "</label>";
  }

  function paintParams() {
    var groups = {};
    params.forEach(function (p) { (groups[p.group] = groups[p.group] || []).push(p); });
    var names = Object.keys(groups);
    $("mon-params-list").innerHTML = names.length ? names.map(function (group) {
      return '<fieldset class="hes-param-group"><legend>' + HES.escape(group) + "</legend>" + groups[group].map(paramHtml).join("") + "</fieldset>";
    }).join("") : '<div class="hes-empty"><i class="fa fa-cubes"></i><b>' + HES.escape(HES.t("No parameters")) + "</b>" +
      HES.escape(HES.t("The brands of these meters define no OBIS points.")) + "</div>";
  }

  function loadParams() {
    var ids = Array.from(selected.keys()).sort().join(",");
    if (paramsLoadedFor === ids) return Promise.resolve();
    $("mon-params-list").innerHTML = '<div class="hes-empty"><span class="hes-spinner"></span></div>';
    var url = HES.withParams(root.getAttribute("data-parameters-url"), { meter_ids: ids, area: root.getAttribute("data-area") });
    return HES.api(url).then(function (data) {
      params = data.result;
      paramsLoadedFor = ids;
      var keys = new Set(params.map(function (p) { return p.key; }));
      Array.from(chosen).forEach(function (key) { if (!keys.has(key)) chosen.delete(key); });
      paintParams();
      paintSelection();
    }).catch(function (error) { HES.toast(HES.t("Could not load parameters: {error}", { error: error.message }), "danger"); });
  }

  $("mon-params-btn").addEventListener("click", function () {
    window.jQuery("#mon-params-modal").modal("show");
    loadParams();
  });
  $("mon-params-list").addEventListener("change", function (event) {
    if (event.target.classList.contains("mon-param")) {
      if (event.target.checked) chosen.add(event.target.value); else chosen.delete(event.target.value);
      paintSelection();
    }
  });
  $("mon-params-list").addEventListener("input", function (event) {
    if (event.target.classList.contains("mon-param-value")) values[event.target.getAttribute("data-key")] = event.target.value;
  });
  $("mon-params-filter").addEventListener("input", function (event) {
    var text = event.target.value.trim().toLowerCase();
    Array.prototype.forEach.call(document.querySelectorAll(".hes-param"), function (label) {
      label.hidden = text && label.getAttribute("data-text").indexOf(text) < 0;
    });
  });
  $("mon-params-readable").addEventListener("click", function () {
    params.forEach(function (p) { if (p.readable) chosen.add(p.key); });
    paintParams();
    paintSelection();
  });
  $("mon-params-none").addEventListener("click", function () { chosen.clear(); paintParams(); paintSelection(); });

  /* ---- jobs ---- */
  function meterNumber(id, fallback) {
    var row = selected.get(id) || state.rows.find(function (r) { return r.id === id; });
    return row ? row.number : (fallback || "#" + id);
  }

  function show(value) {
    if (value === true) return HES.t("Yes");
    if (value === false) return HES.t("No");
    return typeof value === "number" ? HES.number(value) : String(value);
  }

  function summarise(result) {
    if (result == null) return "";
    if (typeof result !== "object") return String(result);
    return Object.keys(result).map(function (key) {
      var v = result[key], point = params.find(function (p) { return p.key === key; });
      if (v && typeof v === "object") v = v.value != null ? show(v.value) + (v.unit ? " " + v.unit : "") : JSON.stringify(v);
      else v = show(v);
      return (point ? point.name : HES.t(HES.word(key))) + ": " + v;
    }).join(" · ");
  }

  function paintJob() {
    var finished = job.done + job.failed;
    $("mon-job-count").textContent = finished + " / " + job.total;
    var bar = $("mon-job-bar");
    bar.style.width = (job.total ? 100 * finished / job.total : 0) + "%";
    bar.classList.toggle("failed", job.failed > 0 && job.done === 0 && finished === job.total);
    $("mon-job-hint").textContent = finished >= job.total ? HES.t("{done} succeeded, {failed} failed — finished", { done: job.done, failed: job.failed })
      : HES.t("{done} succeeded, {failed} failed — running…", { done: job.done, failed: job.failed });
    $("mon-job-results").querySelector("tbody").innerHTML = Array.from(job.rows.values()).map(function (r) {
      var kind = r.state === "succeeded" ? "success" : (r.state === "failed" || r.state === "expired" ? "danger" : "info");
      return "<tr><td><b>" + HES.escape(r.number) + '</b></td><td><span class="hes-pill pill-' + kind + '">' + HES.escape(HES.t(HES.word(r.state))) +
        "</span></td><td>" + HES.escape(r.text) + "</td></tr>";
    }).join("");
  }

  function startJob(kind) {
    var points = params.filter(function (p) { return chosen.has(p.key) && (kind === "read" ? p.readable : p.writable); });
    var body = {
      kind: kind, meter_ids: Array.from(selected.keys()), points: points.map(function (p) { return p.key; }),
      values: kind === "set" ? points.reduce(function (acc, p) { acc[p.key] = values[p.key] || ""; return acc; }, {}) : {},
      confirm: kind === "set"  // the operator confirmed the write in the dialog
    };
    $("mon-read").disabled = $("mon-execute").disabled = true;
    return HES.api(root.getAttribute("data-job-url"), { method: "POST", body: body }).then(function (data) {
      var id = data && (data.job_id || data.id || (data.result && data.result.id));
      job = { id: id, total: (data && data.total) || body.meter_ids.length, done: 0, failed: 0, rows: new Map() };
      body.meter_ids.forEach(function (mid) { job.rows.set(mid, { number: meterNumber(mid), state: "queued", text: "" }); });
      $("mon-job").hidden = false;
      $("mon-job-title").textContent = kind === "read"
        ? HES.t("Reading {points} parameter(s) on {meters} meter(s)", { points: body.points.length, meters: body.meter_ids.length })
        : HES.t("Executing {points} parameter(s) on {meters} meter(s)", { points: body.points.length, meters: body.meter_ids.length });
      paintJob();
      HES.toast(HES.t("Job {id} started on {n} meter(s).", { id: id || "", n: body.meter_ids.length }), "success");
      $("mon-job").scrollIntoView({ behavior: "smooth", block: "start" });
    }).catch(function (error) {
      if (error.status === 404) {
        HES.toast(HES.t("Read/Execute jobs are not available on this server yet (POST /api/v1/job/ is missing)."), "warning");
      } else {
        HES.toast(HES.t("The job was not started: {error}", { error: error.message }), "danger");
      }
    }).then(paintSelection);
  }

  HES.on("job_progress", function (p) {
    if (!job || (job.id != null && p.job_id !== job.id)) return;
    if (p.total != null) job.total = p.total;
    if (p.done != null) job.done = p.done;
    if (p.failed != null) job.failed = p.failed;
    if (p.meter_id != null) {
      job.rows.set(p.meter_id, { number: meterNumber(p.meter_id, p.number), state: p.state || "running",
                                 text: summarise(p.result) || p.reason || "" });
    }
    paintJob();
  });

  function confirmThen(text, run) {
    var modal = window.jQuery("#modal-confirm");
    modal.find(".modal-text").text(text);
    var ok = modal.find("#modal-confirm-ok");
    ok.off("click").on("click", function (event) { event.preventDefault(); modal.modal("hide"); run(); });
    modal.modal("show");
  }

  $("mon-read").addEventListener("click", function () { startJob("read"); });
  $("mon-execute").addEventListener("click", function () {
    var n = params.filter(function (p) { return chosen.has(p.key) && p.writable; }).length;
    confirmThen(HES.t("Write/execute {points} parameter(s) on {meters} meter(s)?", { points: n, meters: selected.size }), function () { startJob("set"); });
  });

  load();
})();
