/* Online Rate island: the summary and a server-paged table for the chosen filter (All / Never online /
   Online), download links that follow the filter, and a re-fetch when meters change state. */
(function () {
  "use strict";

  var root = document.getElementById("online-rate");
  if (!root || !window.HES) return;
  var HES = window.HES;
  var $ = function (id) { return document.getElementById(id); };
  var state = { page: 0, pageSize: 50, filter: "all", count: 0 };
  var area = root.getAttribute("data-area");
  var pending = null;

  function field(name) { return root.querySelector('[data-field="' + name + '"]'); }

  function paintSummary(s) {
    field("online_rate").textContent = s.online_rate;
    field("rate_bar").style.width = s.online_rate + "%";
    ["online_now", "ever_online", "never_online", "total"].forEach(function (name) { field(name).textContent = s[name]; });
  }

  function rowHtml(r) {
    return "<tr><td><b>" + HES.escape(r.number) + "</b></td><td>" + HES.escape(r.customer || "—") + "</td><td>" +
      HES.escape(r.area || "—") + '</td><td><span class="hes-status ' + (r.online ? "on" : "off") + '"><span class="hes-dot ' +
      (r.online ? "on" : "off") + '"></span>' + HES.escape(r.online ? HES.t("Online") : HES.t("Offline")) + "</span></td><td>" +
      (r.first_seen ? HES.escape(HES.formatTime(r.first_seen)) : '<span class="hes-pill pill-warning">' + HES.escape(HES.t("never")) + "</span>") + "</td><td>" +
      (r.last_seen ? HES.escape(HES.formatTime(r.last_seen)) : "—") + '</td><td><span class="hes-pill pill-' + HES.escape(r.status) + '">' +
      HES.escape(HES.t(HES.word(r.status))) + "</span></td></tr>";
  }

  function paintDownloads() {
    var params = { filter: state.filter, area: area };
    $("or-csv").href = HES.withParams(root.getAttribute("data-csv-url"), params);
    $("or-pdf").href = HES.withParams(root.getAttribute("data-pdf-url"), params);
  }

  function load() {
    var card = $("or-table").closest(".hes-card");
    card.classList.add("hes-loading");
    var url = HES.withParams(root.getAttribute("data-report-url"), { filter: state.filter, area: area, page: state.page, page_size: state.pageSize });
    return HES.api(url).then(function (data) {
      state.count = data.count;
      paintSummary(data.summary);
      $("or-rows").innerHTML = data.result.length ? data.result.map(rowHtml).join("") :
        '<tr><td colspan="7"><div class="hes-empty"><i class="fa fa-check-circle-o"></i><b>' + HES.escape(HES.t("No meters here")) + "</b>" +
        HES.escape(HES.t("No meter matches this filter.")) + "</div></td></tr>";
      var first = data.count ? state.page * state.pageSize + 1 : 0;
      var last = Math.min(data.count, (state.page + 1) * state.pageSize);
      $("or-range").textContent = HES.t("Showing {first}–{last} of {total} meters", { first: first, last: last, total: HES.number(data.count) });
      $("or-page").textContent = HES.t("Page {page} of {pages}", { page: state.page + 1, pages: Math.max(1, Math.ceil(data.count / state.pageSize)) });
      $("or-prev").disabled = state.page === 0;
      $("or-next").disabled = last >= data.count;
    }).catch(function (error) {
      HES.toast(HES.t("Could not load the online rate: {error}", { error: error.message }), "danger");
    }).then(function () { card.classList.remove("hes-loading"); });
  }

  $("or-filter").addEventListener("change", function (event) {
    state.filter = event.target.value;
    state.page = 0;
    paintDownloads();
    load();
  });
  $("or-prev").addEventListener("click", function () { if (state.page > 0) { state.page -= 1; load(); } });
  $("or-next").addEventListener("click", function () { state.page += 1; load(); });
  HES.on("meter_status_changed", function () { clearTimeout(pending); pending = setTimeout(load, 1000); });

  paintDownloads();
  load();
})();
