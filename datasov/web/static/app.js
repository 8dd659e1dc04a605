// datasov ui: the only script. It follows a background job (fetch, publish) on its page by
// polling /jobs/ID once a second and moving the progress bar; everything else is plain HTML.
"use strict";
function size(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return i ? `${n.toFixed(1)} ${units[i]}` : `${n} B`;
}
function followJob(section) {
  const id = section.dataset.job;
  const bar = section.querySelector("progress");
  const stage = section.querySelector(".job-stage");
  const state = section.querySelector(".job-state");
  const link = section.querySelector(".job-link");
  async function poll() {
    let job;
    try {
      const resp = await fetch(`/jobs/${id}`, { credentials: "same-origin" });
      if (!resp.ok) { state.textContent = `cannot follow the job (HTTP ${resp.status})`; return; }
      job = await resp.json();
    } catch (err) {
      state.textContent = `cannot follow the job: ${err}`;
      setTimeout(poll, 2000);
      return;
    }
    bar.max = job.total || 1;
    bar.value = job.done;
    const pct = job.total ? Math.floor((100 * job.done) / job.total) : 0;
    stage.textContent = `${job.stage}: ${size(job.done)} of ${size(job.total)} (${pct}%)`;
    state.dataset.state = job.state;
    state.textContent = job.message ? `${job.state}: ${job.message}` : job.state;
    if (job.state === "done" && job.link) {
      link.hidden = false;
      link.querySelector("a").href = job.link;
    }
    if (job.state === "running") setTimeout(poll, 500);
  }
  poll();
}
document.querySelectorAll("section.job[data-job]").forEach(followJob);
