// Live log of a run page. The server renders the tail of the log. This
// script streams the rest over the run's websocket and resumes after the
// last sequence number it has shown whenever the connection drops. It loads
// earlier lines on demand through the events API. Every line's HTML comes
// from the server, which escapes the output; the script adds no markup of
// its own beyond the line containers.
(function () {
  "use strict";

  var root = document.getElementById("log");
  if (!root) return;

  // Lines kept in one pane; older ones are removed and can be loaded again.
  var MAX_LINES = 5000;
  // Lines fetched by one "load earlier" click.
  var PAGE = 500;

  var liveURL = root.dataset.liveUrl;
  var eventsURL = root.dataset.eventsUrl;
  var runURL = root.dataset.runUrl;
  var last = Number(root.dataset.lastSeq) || 0;
  var tailStart = Number(root.dataset.tailStart) || 0;
  var statusEl = document.getElementById("live-status");
  var queue = [];
  var flushing = false;
  var retryDelay = 250;

  var panes = {};
  root.querySelectorAll("section.job").forEach(function (section) {
    addPane(section.dataset.job || "", section);
  });

  function addPane(job, section) {
    var pane = {
      job: job,
      section: section,
      log: section.querySelector(".log"),
      button: section.querySelector("button.earlier")
    };
    pane.button.addEventListener("click", function () { loadEarlier(pane); });
    panes[job] = pane;
    return pane;
  }

  function paneFor(job) {
    if (panes[job]) return panes[job];
    var section = document.createElement("section");
    section.className = "job";
    section.dataset.job = job;
    var h = document.createElement("h2");
    var name = document.createElement("span");
    name.className = "job-name";
    name.textContent = job || "Run log";
    h.appendChild(name);
    if (job) {
      h.appendChild(document.createTextNode(" "));
      var state = document.createElement("span");
      state.className = "state";
      state.dataset.jobState = "";
      state.textContent = "pending";
      h.appendChild(state);
    }
    var button = document.createElement("button");
    button.type = "button";
    button.className = "earlier";
    button.hidden = true;
    button.textContent = "Load earlier lines";
    var log = document.createElement("div");
    log.className = "log";
    log.dataset.log = job;
    section.appendChild(h);
    section.appendChild(button);
    section.appendChild(log);
    root.appendChild(section);
    return addPane(job, section);
  }

  function lineFor(msg) {
    var ev = msg.event || {};
    var div = document.createElement("div");
    div.className = "line " + (ev.type || "unknown") + (ev.stream === "stderr" ? " stderr" : "");
    div.dataset.seq = String(msg.seq);
    div.innerHTML = msg.html || "";
    return div;
  }

  function setStatus(text) {
    if (statusEl) statusEl.textContent = text;
  }

  // updateJob reflects job and step events in the job's header and table.
  function updateJob(pane, ev) {
    var state = pane.section.querySelector("[data-job-state]");
    if (state && ev.type === "job_started") {
      state.textContent = "running";
      state.className = "state running";
    }
    if (state && ev.type === "job_finished") {
      var outcomeClass = "";
      if (ev.outcome === "succeeded") outcomeClass = "passing";
      if (ev.outcome === "failed") outcomeClass = "failing";
      state.textContent = ev.outcome;
      state.className = "state " + outcomeClass;
    }
    var steps = pane.section.querySelector("[data-steps]");
    if (!steps) return;
    var row = steps.querySelector('[data-step="' + Number(ev.seq) + '"]');
    if (ev.type === "sh_started" && !row) {
      row = document.createElement("tr");
      row.dataset.step = String(ev.seq);
      var cells = [String(ev.seq), ev.cmd, "running", ""];
      cells.forEach(function (text, i) {
        var td = document.createElement("td");
        if (i === 1) {
          var code = document.createElement("code");
          code.textContent = text;
          td.appendChild(code);
        } else {
          td.textContent = text;
        }
        if (i === 2) td.dataset.exit = "";
        steps.appendChild(row).appendChild(td);
      });
    }
    if (ev.type === "sh_finished" && row) {
      var exit = row.querySelector("[data-exit]");
      exit.textContent = String(ev.exit_code);
      exit.className = ev.exit_code === 0 ? "exit-ok" : "exit-fail";
    }
  }

  function trim(pane) {
    var extra = pane.log.childElementCount - MAX_LINES;
    for (var i = 0; i < extra; i++) pane.log.removeChild(pane.log.firstElementChild);
    if (extra > 0) pane.button.hidden = false;
  }

  function atBottom(el) {
    return el.scrollHeight - el.scrollTop - el.clientHeight < 24;
  }

  // flush appends queued messages once per frame, so a fast log costs one
  // layout per frame instead of one per line.
  function flush() {
    flushing = false;
    var batch = queue;
    queue = [];
    var touched = new Map();
    batch.forEach(function (msg) {
      var ev = msg.event || {};
      var pane = paneFor(ev.job_id || "");
      if (!touched.has(pane)) touched.set(pane, atBottom(pane.log));
      updateJob(pane, ev);
      if (msg.html !== undefined) {
        pane.section.hidden = false;
        pane.log.appendChild(lineFor(msg));
      }
    });
    touched.forEach(function (follow, pane) {
      trim(pane);
      if (follow) pane.log.scrollTop = pane.log.scrollHeight;
    });
  }

  function receive(msg) {
    // Sequence numbers are the run's own and strictly increasing; an equal
    // or lower one was already shown. Identical text with a new number is
    // real output and is kept.
    if (typeof msg.seq !== "number" || msg.seq <= last) return;
    last = msg.seq;
    queue.push(msg);
    if (!flushing) {
      flushing = true;
      window.requestAnimationFrame(flush);
    }
  }

  function connect() {
    var url = new URL(liveURL, window.location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    url.searchParams.set("after", String(last));
    var ws = new WebSocket(url.toString());
    ws.onopen = function () { setStatus("Live"); };
    ws.onmessage = function (e) {
      retryDelay = 250;
      receive(JSON.parse(e.data));
    };
    ws.onclose = function (e) {
      if (e.code === 1000) {
        setStatus("Run finished.");
        refreshState();
        return;
      }
      if (e.code === 1008) {
        setStatus("Run not found.");
        return;
      }
      setStatus("Reconnecting…");
      window.setTimeout(connect, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 5000);
    };
  }

  function refreshState() {
    fetch(runURL, { headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (run) {
        if (!run) return;
        var el = document.getElementById("run-state");
        el.textContent = run.state_text;
        el.className = "state " + run.state_class;
      })
      .catch(function () {});
  }

  function loadEarlier(pane) {
    var first = pane.log.firstElementChild;
    var before = first ? Number(first.dataset.seq) : tailStart;
    if (!before) {
      pane.button.hidden = true;
      return;
    }
    pane.button.disabled = true;
    var url = new URL(eventsURL, window.location.href);
    url.searchParams.set("before", String(before));
    url.searchParams.set("limit", String(PAGE));
    url.searchParams.set("job", pane.job);
    fetch(url.toString(), { headers: { Accept: "application/json" } })
      .then(function (r) {
        if (!r.ok) throw new Error("events request failed: " + r.status);
        return r.json();
      })
      .then(function (page) {
        var height = pane.log.scrollHeight;
        var frag = document.createDocumentFragment();
        page.events.forEach(function (msg) {
          if (msg.html !== undefined && msg.seq < before) frag.appendChild(lineFor(msg));
        });
        pane.log.insertBefore(frag, pane.log.firstChild);
        pane.log.scrollTop += pane.log.scrollHeight - height;
        pane.button.hidden = page.events.length < PAGE;
      })
      .catch(function (err) { setStatus(String(err)); })
      .finally(function () { pane.button.disabled = false; });
  }

  root.querySelectorAll(".log").forEach(function (log) { log.scrollTop = log.scrollHeight; });
  if (root.dataset.final !== "true") connect();
})();
