/* Import job page: follow a background import's progress (polling its API status each second) and show the
   result page when it has finished. */
(function () {
  "use strict";

  var root = document.getElementById("import-job");
  var bar = document.getElementById("import-progress");
  if (!root || !bar) return;
  var url = root.getAttribute("data-status-url");
  var phase = document.querySelector('#import-phase [data-field="phase"]');

  function paint(job) {
    var fill = bar.querySelector('[data-field="bar"]');
    fill.style.width = job.progress + "%";
    fill.setAttribute("aria-valuenow", job.progress);
    bar.querySelector('[data-field="percent"]').textContent = job.progress;
    document.querySelector('#import-phase [data-field="line"]').textContent = job.line;
    phase.textContent = phase.getAttribute("data-" + job.state) || job.state;
    root.setAttribute("data-state", job.state);
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (resp) { return resp.ok ? resp.json() : null; })
      .then(function (job) {
        if (!job) return setTimeout(poll, 3000);
        paint(job);
        if (["done", "rejected", "failed"].indexOf(job.state) >= 0) {
          window.location.reload();  // the page shows the counts or the errors by line
        } else {
          setTimeout(poll, 1000);
        }
      })
      .catch(function () { setTimeout(poll, 3000); });
  }

  setTimeout(poll, 500);
})();
