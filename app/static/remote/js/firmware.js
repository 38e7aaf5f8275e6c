/* Firmware: upload images, start an upgrade job (confirmed), follow each meter's transfer live. */
(function () {
  "use strict";

  var $ = function (id) { return document.getElementById(id); };
  var csrf = document.querySelector('meta[name="csrf-token"]');
  var job = null;
  var t = HES.t, word = HES.word;
  var PILL = { succeeded: "success", failed: "danger", expired: "danger", cancelled: "warning", queued: "info", sent: "info" };

  function loadImages() {
    return HES.api("/api/v1/firmware/image").then(function (data) {
      var rows = data.result || [];
      $("fw-image").innerHTML = rows.map(function (i) { return '<option value="' + i.id + '">' + HES.escape(i.identifier) + " (" + HES.number(i.size) + " B)</option>"; }).join("") ||
        '<option value="">' + HES.escape(t("No image uploaded yet")) + "</option>";
      $("fw-images").innerHTML = rows.map(function (i) {
        return '<tr><td class="rm-mono"><b>' + HES.escape(i.identifier) + "</b></td><td>" + HES.escape(i.filename || "") + "</td><td>" + HES.number(i.size) +
          ' B</td><td class="rm-mono" title="' + i.sha256 + '">' + i.sha256.slice(0, 16) + "…</td><td>" + HES.escape(HES.formatTime(i.created_at)) + " · " + HES.escape(i.uploaded_by || "") + "</td></tr>";
      }).join("") || '<tr><td colspan="5" class="text-muted">' + HES.escape(t("No image uploaded yet.")) + "</td></tr>";
    });
  }

  function loadTransfers() {
    return HES.api(HES.withParams("/api/v1/firmware/transfer", { job_id: job ? job.id : "" })).then(function (data) {
      var rows = data.result || [];
      $("fw-transfers").innerHTML = rows.map(function (tr) {
        var pct = Math.round((tr.progress || 0) * 100);
        return '<tr class="rm-progress-row" data-command="' + tr.command_id + '"><td><b>' + HES.escape(tr.number) + '</b></td><td class="rm-mono">' + HES.escape(tr.identifier) +
          '</td><td><span class="hes-pill pill-' + (PILL[tr.state] || "info") + '">' + HES.escape(tr.state === "sent" ? t(word(tr.status)) : t(word(tr.state))) + "</span></td>" +
          '<td><div class="hes-progress"><i style="width:' + pct + '%"' + (tr.state === "failed" ? ' class="failed"' : "") + "></i></div><span class=\"hes-sub\">" + pct + "%</span></td><td>" +
          HES.number(tr.blocks_done) + " / " + HES.number(tr.blocks_total || 0) + "</td><td>" + tr.sessions + "</td><td>" + (tr.resumed_from == null ? "—" : HES.number(tr.resumed_from)) +
          '</td><td class="rm-mono">' + HES.escape(tr.version_after || tr.version_before || "") + "</td><td>" + HES.escape(tr.reason || "") + "</td></tr>";
      }).join("") || '<tr><td colspan="9" class="text-muted">' + HES.escape(t("No transfer yet.")) + "</td></tr>";
    });
  }

  function paintJob() {
    if (!job) return;
    var finished = job.done + job.failed;
    $("fw-job").hidden = false;
    $("fw-job-count").textContent = finished + " / " + job.total;
    $("fw-job-bar").style.width = (job.total ? 100 * finished / job.total : 0) + "%";
    $("fw-job-hint").textContent = finished >= job.total ? t("{done} upgraded, {failed} failed — finished", { done: job.done, failed: job.failed })
      : t("{done} upgraded, {failed} failed — running…", { done: job.done, failed: job.failed });
  }

  $("fw-file").addEventListener("change", function () { $("fw-file-name").textContent = this.files[0] ? this.files[0].name + " (" + HES.number(this.files[0].size) + " B)" : ""; });
  var drop = $("fw-drop");
  ["dragenter", "dragover"].forEach(function (ev) { drop.addEventListener(ev, function (e) { e.preventDefault(); drop.classList.add("over"); }); });
  ["dragleave", "drop"].forEach(function (ev) { drop.addEventListener(ev, function (e) { e.preventDefault(); drop.classList.remove("over"); }); });
  drop.addEventListener("drop", function (e) { $("fw-file").files = e.dataTransfer.files; $("fw-file").dispatchEvent(new Event("change")); });

  $("fw-upload").addEventListener("submit", function (e) {
    e.preventDefault();
    var form = new FormData();
    form.append("identifier", $("fw-identifier").value.trim());
    form.append("notes", $("fw-notes").value);
    if (!$("fw-file").files[0]) { HES.toast(t("Choose the image file."), "warning"); return; }
    form.append("file", $("fw-file").files[0]);
    fetch("/api/v1/firmware/image", { method: "POST", body: form, credentials: "same-origin", headers: { "X-CSRFToken": csrf ? csrf.content : "" } })
      .then(function (resp) { return resp.json().then(function (d) { if (!resp.ok) throw new Error(d.message || resp.statusText); return d; }); })
      .then(function (d) { HES.toast(t("Image {name} uploaded.", { name: d.result.identifier }), "success"); $("fw-upload").reset(); $("fw-file-name").textContent = ""; return loadImages(); })
      .catch(function (error) { HES.toast(t("Upload failed: {error}", { error: error.message }), "danger"); });
  });

  $("fw-start").addEventListener("click", function () {
    var imageId = $("fw-image").value;
    var area = $("fw-area").value;
    var numbers = $("fw-meters").value.split(/[\s,;]+/).filter(Boolean);
    if (!imageId) { HES.toast(t("Upload an image first."), "warning"); return; }
    if (!area && !numbers.length) { HES.toast(t("Pick an area or list meter numbers."), "warning"); return; }
    var label = $("fw-image").selectedOptions[0].textContent;
    var target = area ? t("every meter in {area}", { area: $("fw-area").selectedOptions[0].textContent.trim() }) : t("{n} meter(s)", { n: numbers.length });
    var modal = window.jQuery("#modal-confirm");
    modal.find(".modal-text").text(t("Upgrade {target} to {image}? Meters restart on activation.", { target: target, image: label }));
    modal.find("#modal-confirm-ok").off("click").on("click", function (ev) {
      ev.preventDefault();
      modal.modal("hide");
      var body = { kind: "firmware", image_id: Number(imageId), confirm: true, idempotency_key: (crypto.randomUUID ? crypto.randomUUID() : String(Date.now())) };
      if (area) body.area_id = Number(area); else body.meter_numbers = numbers;
      HES.api("/api/v1/job/", { method: "POST", body: body }).then(function (d) {
        job = d;
        $("fw-job-title").textContent = t("Upgrade to {image}", { image: label });
        paintJob();
        loadTransfers();
        HES.toast(t("Upgrade job {id} started on {n} meter(s).", { id: d.id, n: d.total }), "success");
      }).catch(function (error) { HES.toast(t("Not started: {error}", { error: error.message }), "danger"); });
    });
    modal.modal("show");
  });

  $("fw-cancel").addEventListener("click", function () {
    if (!job) return;
    HES.api("/api/v1/job/" + job.id + "/cancel", { method: "POST" }).then(function (d) { HES.toast(t("{n} queued transfer(s) cancelled.", { n: d.cancelled }), "info"); loadTransfers(); });
  });

  var refresh = null;
  function soon() { if (!refresh) refresh = setTimeout(function () { refresh = null; loadTransfers(); }, 700); }
  HES.on("command_updated", function (c) { if (c.kind === "firmware") soon(); });
  HES.on("job_progress", function (p) {
    if (!job || p.job_id !== job.id) return;
    job.done = p.done; job.failed = p.failed; job.total = p.total;
    paintJob();
    soon();
  });

  loadImages();
  loadTransfers();
})();
