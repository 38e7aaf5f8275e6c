/* Firmware: upload images, start an upgrade job (confirmed), follow each meter's transfer live. */
(function () {
  "use strict";

  var $ = function (id) { return document.getElementById(id); };
  var csrf = document.querySelector('meta[name="csrf-token"]');
  var job = null;
  var PILL = { succeeded: "success", failed: "danger", expired: "danger", cancelled: "warning", queued: "info", sent: "info" };

  function loadImages() {
    return HES.api("/api/v1/firmware/image").then(function (data) {
      var rows = data.result || [];
      $("fw-image").innerHTML = rows.map(function (i) { return '<option value="' + i.id + '">' + HES.escape(i.identifier) + " (" + HES.number(i.size) + " B)</option>"; }).join("") ||
        "<option value=\"\">No image uploaded yet</option>";
      $("fw-images").innerHTML = rows.map(function (i) {
        return '<tr><td class="rm-mono"><b>' + HES.escape(i.identifier) + "</b></td><td>" + HES.escape(i.filename || "") + "</td><td>" + HES.number(i.size) +
          ' B</td><td class="rm-mono" title="' + i.sha256 + '">' + i.sha256.slice(0, 16) + "…</td><td>" + HES.escape(HES.formatTime(i.created_at)) + " · " + HES.escape(i.uploaded_by || "") + "</td></tr>";
      }).join("") || '<tr><td colspan="5" class="text-muted">No image uploaded yet.</td></tr>';
    });
  }

  function loadTransfers() {
    return HES.api(HES.withParams("/api/v1/firmware/transfer", { job_id: job ? job.id : "" })).then(function (data) {
      var rows = data.result || [];
      $("fw-transfers").innerHTML = rows.map(function (t) {
        var pct = Math.round((t.progress || 0) * 100);
        return '<tr class="rm-progress-row" data-command="' + t.command_id + '"><td><b>' + HES.escape(t.number) + '</b></td><td class="rm-mono">' + HES.escape(t.identifier) +
          '</td><td><span class="hes-pill pill-' + (PILL[t.state] || "info") + '">' + HES.escape(t.state === "sent" ? t.status : t.state) + "</span></td>" +
          '<td><div class="hes-progress"><i style="width:' + pct + '%"' + (t.state === "failed" ? ' class="failed"' : "") + "></i></div><span class=\"hes-sub\">" + pct + "%</span></td><td>" +
          HES.number(t.blocks_done) + " / " + HES.number(t.blocks_total || 0) + "</td><td>" + t.sessions + "</td><td>" + (t.resumed_from == null ? "—" : HES.number(t.resumed_from)) +
          '</td><td class="rm-mono">' + HES.escape(t.version_after || t.version_before || "") + "</td><td>" + HES.escape(t.reason || "") + "</td></tr>";
      }).join("") || '<tr><td colspan="9" class="text-muted">No transfer yet.</td></tr>';
    });
  }

  function paintJob() {
    if (!job) return;
    var finished = job.done + job.failed;
    $("fw-job").hidden = false;
    $("fw-job-count").textContent = finished + " / " + job.total;
    $("fw-job-bar").style.width = (job.total ? 100 * finished / job.total : 0) + "%";
    $("fw-job-hint").textContent = job.done + " upgraded, " + job.failed + " failed" + (finished >= job.total ? " — finished" : " — running…");
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
    if (!$("fw-file").files[0]) { HES.toast("Choose the image file.", "warning"); return; }
    form.append("file", $("fw-file").files[0]);
    fetch("/api/v1/firmware/image", { method: "POST", body: form, credentials: "same-origin", headers: { "X-CSRFToken": csrf ? csrf.content : "" } })
      .then(function (resp) { return resp.json().then(function (d) { if (!resp.ok) throw new Error(d.message || resp.statusText); return d; }); })
      .then(function (d) { HES.toast("Image " + d.result.identifier + " uploaded.", "success"); $("fw-upload").reset(); $("fw-file-name").textContent = ""; return loadImages(); })
      .catch(function (error) { HES.toast("Upload failed: " + error.message, "danger"); });
  });

  $("fw-start").addEventListener("click", function () {
    var imageId = $("fw-image").value;
    var area = $("fw-area").value;
    var numbers = $("fw-meters").value.split(/[\s,;]+/).filter(Boolean);
    if (!imageId) { HES.toast("Upload an image first.", "warning"); return; }
    if (!area && !numbers.length) { HES.toast("Pick an area or list meter numbers.", "warning"); return; }
    var label = $("fw-image").selectedOptions[0].textContent;
    var target = area ? "every meter in " + $("fw-area").selectedOptions[0].textContent.trim() : numbers.length + " meter(s)";
    var modal = window.jQuery("#modal-confirm");
    modal.find(".modal-text").text("Upgrade " + target + " to " + label + "? Meters restart on activation.");
    modal.find("#modal-confirm-ok").off("click").on("click", function (ev) {
      ev.preventDefault();
      modal.modal("hide");
      var body = { kind: "firmware", image_id: Number(imageId), confirm: true, idempotency_key: (crypto.randomUUID ? crypto.randomUUID() : String(Date.now())) };
      if (area) body.area_id = Number(area); else body.meter_numbers = numbers;
      HES.api("/api/v1/job/", { method: "POST", body: body }).then(function (d) {
        job = d;
        $("fw-job-title").textContent = "Upgrade to " + label;
        paintJob();
        loadTransfers();
        HES.toast("Upgrade job " + d.id + " started on " + d.total + " meter(s).", "success");
      }).catch(function (error) { HES.toast("Not started: " + error.message, "danger"); });
    });
    modal.modal("show");
  });

  $("fw-cancel").addEventListener("click", function () {
    if (!job) return;
    HES.api("/api/v1/job/" + job.id + "/cancel", { method: "POST" }).then(function (d) { HES.toast(d.cancelled + " queued transfer(s) cancelled.", "info"); loadTransfers(); });
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
