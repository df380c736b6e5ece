// The Seeding section: each job's bar and figures follow the page's refreshes
// (status.js's "tilestatus:refreshed" event, whose detail is the page's JSON: its
// "seeding" list), so they stop when the page is paused or hidden. Words come from the
// JSON's numbers only.
(function () {
  "use strict";
  var section = document.getElementById("tilestatus-seeding");
  if (!section) { return; }
  function update(jobs) {
    var seen = {};
    jobs.forEach(function (job) {
      seen[job.id] = true;
      var item = section.querySelector('[data-job="' + job.id + '"]');
      if (!item) { return; }  // a new job: shown at the next page load
      item.setAttribute("data-state", job.state);
      item.querySelector(".tilestatus-seeding-state").textContent = job.state;
      var bar = item.querySelector(".tilestatus-seeding-bar");
      bar.max = job.total;
      bar.value = job.done + job.skipped + job.failed;
      bar.textContent = job.percent + "%";
      item.querySelector(".tilestatus-seeding-figures").textContent =
        job.percent + "%: " + job.done + " rendered, " + job.skipped + " skipped, " +
        job.failed + " failed of " + job.total + "; " + job.rate + " tiles/s" +
        (job.eta === null ? "" : ", ETA " + Math.round(job.eta) + " s");
      item.querySelector(".tilestatus-seeding-workers").textContent =
        "working: " + (job.processes.join(", ") || "none") + "; by " + job.started_by;
      var cancel = item.querySelector(".tilestatus-seeding-cancel");
      if (cancel && ["done", "cancelled", "failed"].indexOf(job.state) >= 0) {
        cancel.hidden = true;
      }
    });
  }
  document.addEventListener("tilestatus:refreshed", function (event) {
    if (event.detail && event.detail.seeding) { update(event.detail.seeding); }
  });
})();
