// The dashboard's pages: fetch JSON from the server, draw with Plotly, follow server-sent events.
"use strict";

const R = { csrf: null, scope: null };

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
  return node;
}

function fmt(v) {
  if (v === null || v === undefined) return "";
  if (typeof v === "number") {
    if (Number.isInteger(v)) return String(v);
    const a = Math.abs(v);
    return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(3) : String(+v.toPrecision(5));
  }
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

function notice(text) {
  const n = document.getElementById("notice");
  if (!n) return;
  n.hidden = !text;
  n.textContent = text || "";
}

async function api(path, options) {
  const response = await fetch(path, Object.assign({ credentials: "same-origin" }, options));
  if (response.status === 401) {
    location.href = "/login?next=" + encodeURIComponent(location.pathname);
    throw new Error("not logged in");
  }
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || ("HTTP " + response.status));
  return body;
}

async function post(path, body) {
  const headers = { "X-CSRF-Token": R.csrf };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  return api(path, { method: "POST", headers, body: body === undefined ? undefined : JSON.stringify(body) });
}

function drawn(div) {
  // Marks Plotly actually drew: SVG paths and points, bars, parcoords lines (WebGL canvases).
  return div.querySelectorAll(
    ".scatterlayer .trace path, .scatterlayer .point, .barlayer .point, .parcoords .line-layers canvas, .parcoords .axis"
  ).length;
}

let plotlyLoading = null;

function plotlyReady() {
  // plotly.js (4.8 MB) is loaded once the header and tables are on screen, so the page
  // paints first and the browser parses it afterwards.
  if (!plotlyLoading) {
    plotlyLoading = new Promise((resolve) => {
      requestAnimationFrame(() => setTimeout(() => {
        const script = el("script", { src: "/static/plotly.min.js" });
        script.addEventListener("load", resolve);
        script.addEventListener("error", () => { window.PLOTLY_MISSING = "it could not be loaded"; resolve(); });
        document.head.append(script);
      }, 0));
    });
  }
  return plotlyLoading;
}

async function plot(id, traces, layout) {
  await plotlyReady();
  const div = document.getElementById(id);
  if (!div) return;
  if (window.PLOTLY_MISSING || !window.Plotly) {
    div.textContent = "plotly.js is missing: " + (window.PLOTLY_MISSING || "");
    div.dataset.plotted = "missing";
    return;
  }
  const base = { margin: { l: 50, r: 10, t: 10, b: 40 }, showlegend: false, font: { size: 11 } };
  await Plotly.react(div, traces, Object.assign(base, layout || {}), { displaylogo: false, responsive: true });
  div.dataset.traces = String(div._fullData.filter((t) => t.visible !== false).length);
  div.dataset.marks = String(drawn(div));
  div.dataset.plotted = "1";
}

function empty(id, text) {
  const div = document.getElementById(id);
  if (!div) return;
  if (window.Plotly && div._fullData) Plotly.purge(div);
  div.replaceChildren(el("p", { class: "empty" }, text));
  div.dataset.plotted = "empty";
  div.dataset.traces = "0";
}

function setControls(state, live) {
  const allowed = { pause: state === "ACTIVE", activate: state === "PAUSED", kill: state === "ACTIVE" || state === "PAUSED" };
  for (const b of document.querySelectorAll(".controls button[data-action]")) b.disabled = !live || !allowed[b.dataset.action];
  const queue = document.getElementById("queue-button");
  if (queue) queue.disabled = !live || !allowed.kill;
}

function setState(state, live) {
  const s = document.getElementById("state");
  if (s) s.textContent = state;
  const l = document.getElementById("live");
  if (l) l.textContent = live ? "● live" : "";
  document.body.dataset.live = live ? "1" : "0";
}

// -- experiments list --------------------------------------------------------------------------
async function indexPage() {
  const rows = await api("/api/experiments");
  const body = document.querySelector("#experiments tbody");
  body.replaceChildren(...rows.map((r) => el("tr", { "data-id": r.id },
    el("td", {}, el("a", { href: "/experiments/" + r.id }, String(r.id))),
    el("td", {}, el("a", { href: "/experiments/" + r.id }, r.name)),
    el("td", {}, r.state),
    el("td", {}, r.max_trials ? `${r.done}/${r.max_trials}` : `${r.done} done`),
    el("td", {}, String(r.trials)),
    el("td", {}, String(r.running)),
    el("td", {}, String(r.failed)),
    el("td", {}, fmt(r.best)),
    el("td", {}, r.best_trial ? el("a", { href: `/experiments/${r.id}/trials/${r.best_trial}` }, "#" + r.best_trial) : ""),
    el("td", {}, r.live ? "running" : ""),
  )));
  if (!rows.length) notice("This store holds no experiment yet.");
  document.body.dataset.loaded = "1";
}

// -- one experiment ----------------------------------------------------------------------------
const E = { id: null, data: null, latest: { cursor: 0, state: null }, sort: { key: "number", desc: false }, hidden: new Set(), refreshTimer: null, fetching: false };

function experimentId() { return location.pathname.split("/")[2]; }

function columns(d) {
  const cols = [
    { key: "number", label: "trial", get: (t) => t.number },
    { key: "state", label: "state", get: (t) => t.state },
  ];
  for (const p of d.params) cols.push({ key: "p:" + p.name, label: p.name, get: (t) => t.params[p.name] });
  cols.push({ key: "best", label: "best " + d.experiment.metric, get: (t) => t.best });
  cols.push({ key: "last", label: "last", get: (t) => t.last });
  cols.push({ key: "steps", label: "steps", get: (t) => t.steps });
  for (const m of d.metrics) cols.push({ key: "m:" + m, label: m, get: (t) => t.metrics[m] });
  cols.push({ key: "restarts", label: "restarts", get: (t) => t.restarts });
  cols.push({ key: "duration", label: "duration (s)", get: (t) => t.duration });
  cols.push({ key: "stop_reason", label: "stop reason", get: (t) => t.stop_reason });
  return cols;
}

function rowFilter(text, cols) {
  text = text.trim();
  if (!text) return () => true;
  const m = text.match(/^([\w.\-\/ ]+?)\s*(<=|>=|!=|=|<|>)\s*(.+)$/);
  if (m) {
    const col = cols.find((c) => c.label === m[1].trim() || c.key === m[1].trim() || c.key === "p:" + m[1].trim());
    if (col) {
      const want = isNaN(Number(m[3])) ? m[3].trim() : Number(m[3]);
      const ops = { "<": (a, b) => a < b, ">": (a, b) => a > b, "<=": (a, b) => a <= b, ">=": (a, b) => a >= b, "=": (a, b) => a == b, "!=": (a, b) => a != b };
      return (t) => { const v = col.get(t); return v !== null && v !== undefined && ops[m[2]](v, want); };
    }
  }
  const needle = text.toLowerCase();
  return (t) => cols.some((c) => fmt(c.get(t)).toLowerCase().includes(needle));
}

const MAX_ROWS = 300;

function renderTable() {
  const d = E.data;
  const cols = columns(d).filter((c) => !E.hidden.has(c.key));
  const head = document.querySelector("#trials thead");
  head.replaceChildren(el("tr", {}, ...cols.map((c) => el("th", {
    "data-key": c.key,
    onclick: () => { E.sort = { key: c.key, desc: E.sort.key === c.key ? !E.sort.desc : false }; renderTable(); },
  }, c.label + (E.sort.key === c.key ? (E.sort.desc ? " ▼" : " ▲") : ""))), el("th", {}, "")));
  const all = columns(d);
  const keep = rowFilter(document.getElementById("filter").value, all);
  const sortCol = all.find((c) => c.key === E.sort.key) || all[0];
  const rows = d.trials.filter(keep).sort((a, b) => {
    const x = sortCol.get(a), y = sortCol.get(b);
    if (x === y) return 0;
    if (x === null || x === undefined) return 1;
    if (y === null || y === undefined) return -1;
    return (x < y ? -1 : 1) * (E.sort.desc ? -1 : 1);
  });
  const shown = rows.slice(0, MAX_ROWS);
  document.querySelector("#trials tbody").replaceChildren(...shown.map((t) => el("tr", { "data-trial": t.number, "data-state": t.state },
    ...cols.map((c) => c.key === "number"
      ? el("td", {}, el("a", { href: `/experiments/${E.id}/trials/${t.number}` }, String(t.number)))
      : el("td", { "data-key": c.key }, fmt(c.get(t)))),
    el("td", {}, t.state === "RUNNING" && d.experiment.live
      ? el("button", { class: "danger stop", "data-trial": t.number, onclick: () => stopTrial(E.id, t.number) }, "Stop")
      : ""),
  )));
  document.getElementById("row-count").textContent =
    `${shown.length} of ${rows.length} shown` + (rows.length !== d.trials.length ? ` (${d.trials.length} trials)` : "");
}

function renderColumnPicker() {
  const list = document.getElementById("column-list");
  list.replaceChildren(...columns(E.data).map((c) => {
    const box = el("input", { type: "checkbox", "data-key": c.key });
    box.checked = !E.hidden.has(c.key);
    box.addEventListener("change", () => { if (box.checked) E.hidden.delete(c.key); else E.hidden.add(c.key); renderTable(); });
    return el("label", {}, box, " " + c.label);
  }));
}

function renderHeader() {
  const x = E.data.experiment;
  document.getElementById("title").textContent = `experiment ${x.id}: ${x.name}`;
  document.title = `ridgeline: ${x.name}`;
  setState(x.state, x.live);
  const done = E.data.trials.filter((t) => !["RUNNING", "PENDING", "PAUSED"].includes(t.state)).length;
  const total = x.max_trials || E.data.trials.length || 1;
  document.getElementById("progress-bar").style.width = Math.min(100, 100 * done / total) + "%";
  document.getElementById("progress-text").textContent = `${done}/${x.max_trials || E.data.trials.length} trials done`;
  document.getElementById("best").textContent = x.best_trial
    ? `best ${x.metric} ${fmt(x.best)} (trial ${x.best_trial})` : "no result yet";
  setControls(x.state, x.live);
  notice(x.live ? "" : "No coordinator is running this experiment: the controls are off (`ridgeline experiment resume` starts one).");
}

function renderPlots() {
  const d = E.data;
  const metric = d.experiment.metric;
  const jobs = [];
  const h = d.history;
  if (h.best.length) {
    jobs.push(plot("plot-history", [
      { type: "scatter", mode: "markers", x: h.trials.number, y: h.trials.value, marker: { size: 4, color: h.trials.counted.map((c) => c ? "rgba(59,125,216,0.35)" : "rgba(192,57,43,0.5)") }, name: "trials", hovertemplate: "trial %{x}: %{y}<extra></extra>" },
      { type: "scatter", mode: "lines", x: h.number, y: h.best, line: { shape: "hv", width: 2, color: "#1d2430" }, name: "best so far" },
    ], { xaxis: { title: { text: "trial" } }, yaxis: { title: { text: metric } } }));
  } else empty("plot-history", "No results yet.");
  const c = d.curves;
  document.getElementById("topn").textContent = String(c.top.length);
  if (c.top.length) {
    const traces = [{ x: c.others.step, y: c.others.value, mode: "lines", type: "scatter", line: { color: "rgba(120,120,120,0.25)", width: 1 }, hoverinfo: "skip", name: "others" }];
    for (const t of c.top) traces.push({ x: t.step, y: t.value, mode: "lines+markers", type: "scatter", name: "trial " + t.trial });
    jobs.push(plot("plot-curves", traces, { showlegend: true, legend: { font: { size: 9 } }, xaxis: { title: { text: c.unit } }, yaxis: { title: { text: metric } } }));
  } else empty("plot-curves", "No reports yet.");
  const pc = d.parcoords;
  if (pc.color.length && pc.dimensions.length > 1) {
    jobs.push(plot("plot-parcoords", [{ type: "parcoords", line: { color: pc.color, colorscale: "Viridis", reversescale: d.experiment.smaller_is_better, showscale: true }, dimensions: pc.dimensions }], { margin: { l: 60, r: 60, t: 40, b: 20 } }));
  } else empty("plot-parcoords", "No scored trials yet.");
  const imp = d.importance;
  document.getElementById("importance-method").textContent = "Method: " + imp.method + ` (${imp.trials} trials)`;
  if (imp.param.length) {
    jobs.push(plot("plot-importance", [{ type: "bar", orientation: "h", x: imp.importance, y: imp.param }], { margin: { l: 110, r: 10, t: 10, b: 40 }, xaxis: { title: { text: imp.method_short } } }));
  } else empty("plot-importance", "Needs at least 4 scored trials.");
  renderSlice();
  const r = d.rungs;
  if (r.brackets.length && r.brackets.some((b) => b.reached.some((n) => n > 0))) {
    const traces = [];
    const many = r.brackets.length > 1;
    for (const b of r.brackets) {
      const x = b.length.map((n) => (many ? `b${b.index} ` : "") + n);
      traces.push({ type: "bar", x, y: b.reached, name: (many ? `bracket ${b.index}: ` : "") + "reached", marker: { color: "#3b7dd8" } });
      traces.push({ type: "bar", x, y: b.promoted, name: (many ? `bracket ${b.index}: ` : "") + "promoted", marker: { color: "#f39c12" } });
    }
    jobs.push(plot("plot-rungs", traces, { barmode: "group", showlegend: !many, xaxis: { title: { text: "rung (" + r.unit + ")" }, type: "category" }, yaxis: { title: { text: "trials" } } }));
  } else empty("plot-rungs", r.why || "No trial reached a rung yet.");
  const l = d.lineage;
  if (l.trials.length) {
    const traces = [];
    const ex = [], ey = [];
    for (const n of l.trials) {
      if (n.from && n.step.length) { ex.push(n.from.step, n.step[0], null); ey.push(n.from.value, n.value[0], null); }
    }
    traces.push({ type: "scatter", mode: "lines", x: ex, y: ey, line: { color: "#c0392b", width: 1, dash: "dot" }, hoverinfo: "skip", name: "cloned from" });
    for (const n of l.trials) {
      traces.push({ type: "scatter", mode: "lines", x: n.step, y: n.value, line: { width: 1, color: `hsl(${(n.generation * 67) % 360},60%,45%)` }, name: `trial ${n.trial} (gen ${n.generation})` });
    }
    jobs.push(plot("plot-lineage", traces, { xaxis: { title: { text: l.unit } }, yaxis: { title: { text: metric } } }));
  } else empty("plot-lineage", l.why || "No trial was cloned from another.");
  return Promise.all(jobs);
}

function renderSlice() {
  const d = E.data;
  const select = document.getElementById("slice-param");
  if (select.options.length !== d.slices.length) {
    select.replaceChildren(...d.slices.map((s) => el("option", { value: s.param }, s.param)));
  }
  const s = d.slices.find((x) => x.param === select.value) || d.slices[0];
  if (!s || !s.y.length) { empty("plot-slice", "No scored trials yet."); return Promise.resolve(); }
  return plot("plot-slice", [{ type: "scatter", mode: "markers", x: s.x, y: s.y, text: s.trial.map((n) => "trial " + n), marker: { size: 6, color: s.trial, colorscale: "Blues" } }],
    { xaxis: { title: { text: s.param }, type: s.kind === "categorical" ? "category" : (s.log ? "log" : "linear") }, yaxis: { title: { text: d.experiment.metric } } });
}

async function loadExperiment() {
  E.fetching = true;
  try {
    E.data = await api("/api/experiments/" + E.id);
  } finally {
    E.fetching = false;
  }
  renderHeader();
  renderColumnPicker();
  renderTable();
  document.body.dataset.painted = "1";
  await renderPlots();
}

function scheduleRefresh() {
  if (E.refreshTimer || E.fetching) return;
  E.refreshTimer = setTimeout(async () => {
    E.refreshTimer = null;
    try { await loadExperiment(); } catch (e) { notice(String(e.message || e)); return; }
    // The server recomputes a large search's page only every few seconds: ask again until
    // it shows what the live stream announced.
    if (E.data.cursor < E.latest.cursor || (E.latest.state && E.data.experiment.state !== E.latest.state)) scheduleRefresh();
  }, 1500);
}

async function experimentPage() {
  E.id = experimentId();
  document.getElementById("filter").addEventListener("input", renderTable);
  document.getElementById("slice-param").addEventListener("change", renderSlice);
  for (const b of document.querySelectorAll(".controls button")) {
    b.addEventListener("click", async () => {
      const action = b.dataset.action;
      if (action === "kill" && !confirm("Kill the experiment? Its running trials end now.")) return;
      try {
        const reply = await post(`/api/experiments/${E.id}/${action}`);
        setState(reply.state, true);
        setControls(reply.state, true);
      } catch (e) { notice(String(e.message || e)); }
    });
  }
  await loadExperiment();
  const queued = document.getElementById("queue-params");
  const best = E.data.trials.find((t) => t.number === E.data.experiment.best_trial) || E.data.trials[0];
  queued.value = JSON.stringify(best ? best.params : {}, null, 1);
  document.getElementById("queue-button").addEventListener("click", async () => {
    const out = document.getElementById("queue-result");
    let params;
    try { params = JSON.parse(queued.value); } catch (e) { out.textContent = "not JSON: " + e.message; return; }
    try {
      const reply = await post(`/api/experiments/${E.id}/trials`, { params });
      out.textContent = `queued as trial ${reply.trial}`;
      out.dataset.trial = String(reply.trial);
    } catch (e) { out.textContent = String(e.message || e); }
  });
  document.body.dataset.loaded = "1";
  const source = new EventSource(`/api/experiments/${E.id}/stream?cursor=${E.data.cursor}`);
  source.addEventListener("delta", (event) => {
    const news = JSON.parse(event.data);
    E.latest = { cursor: news.cursor, state: news.state };
    setState(news.state, news.live);
    setControls(news.state, news.live);
    for (const [number, state] of Object.entries(news.states)) {
      const row = document.querySelector(`#trials tr[data-trial="${number}"]`);
      if (row) { row.dataset.state = state; row.querySelector('td[data-key="state"]').textContent = state; }
    }
    if (news.new_reports) document.getElementById("live-news").textContent = `${news.new_reports} new reports (live)`;
    scheduleRefresh();
  });
}

async function stopTrial(experiment, number) {
  if (!confirm(`Stop trial ${number}? Its process is killed.`)) return;
  try {
    await post(`/api/experiments/${experiment}/trials/${number}/stop`);
    notice(`Trial ${number}: stop requested.`);
  } catch (e) { notice(String(e.message || e)); }
}

// -- one trial ---------------------------------------------------------------------------------
const T = { data: null, series: {} };

function renderReports(rows, fresh) {
  const body = document.querySelector("#reports tbody");
  const made = rows.map((r) => el("tr", { class: fresh ? "new" : "", "data-seq": r.seq },
    el("td", {}, String(r.seq)), el("td", {}, r.group), el("td", {}, String(r.step)),
    el("td", {}, Object.entries(r.values).map(([k, v]) => `${k}=${fmt(v)}`).join("  "))));
  body.prepend(...made.reverse());
}

function renderSeries() {
  const names = Object.keys(T.series);
  if (!names.length) { empty("plot-metrics", "No reports yet."); return Promise.resolve(); }
  return plot("plot-metrics", names.map((n) => ({ type: "scatter", mode: "lines+markers", name: n, x: T.series[n].step, y: T.series[n].value })),
    { showlegend: true, xaxis: { title: { text: "step" } } });
}

async function trialPage() {
  const [, , experiment, , number] = location.pathname.split("/");
  const d = await api(`/api/experiments/${experiment}/trials/${number}`);
  T.data = d;
  T.series = d.series;
  const t = d.trial;
  document.getElementById("experiment-link").href = "/experiments/" + experiment;
  document.getElementById("experiment-link").textContent = `experiment ${experiment}: ${d.experiment.name}`;
  document.getElementById("title").textContent = "trial " + t.number;
  document.title = `ridgeline: trial ${t.number}`;
  setState(t.state, d.experiment.live);
  document.getElementById("facts").textContent =
    `best ${d.experiment.metric}: ${fmt(t.best)} · restarts ${t.restarts}` +
    (t.exit_code !== null ? ` · exit code ${t.exit_code}` : "") + (t.parent ? ` · cloned from trial ${t.parent}` : "");
  document.querySelector("#params tbody").replaceChildren(...Object.entries(t.params).map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, fmt(v)))));
  document.querySelector("#checkpoints tbody").replaceChildren(...d.checkpoints.map((c) => el("tr", {},
    el("td", {}, c.uuid), el("td", {}, String(c.steps_completed)), el("td", {}, c.state), el("td", {}, new Date(c.created_at * 1000).toLocaleString()))));
  renderReports(d.reports, false);
  const stop = document.getElementById("stop");
  const pause = document.getElementById("pause-trial");
  const resume = document.getElementById("resume-trial");
  const trialControls = (state, live) => {
    stop.disabled = !(live && ["RUNNING", "PENDING", "PAUSED"].includes(state));
    pause.disabled = !(live && state === "RUNNING" && d.experiment.pausable);
    resume.disabled = !(live && state === "PAUSED" && d.experiment.pausable);
  };
  if (!d.experiment.pausable) pause.title = resume.title = "SHERPA-style trials cannot checkpoint on request: stop the trial or pause the experiment";
  trialControls(t.state, d.experiment.live);
  stop.addEventListener("click", () => stopTrial(experiment, number));
  for (const [button, action] of [[pause, "pause"], [resume, "resume"]]) {
    button.addEventListener("click", async () => {
      try {
        await post(`/api/experiments/${experiment}/trials/${number}/${action}`);
        notice(`Trial ${number}: ${action} requested.`);
      } catch (e) { notice(String(e.message || e)); }
    });
  }
  if (!d.experiment.live) notice("No coordinator is running this experiment: the controls are off.");
  await renderSeries();
  const logbox = document.getElementById("log");
  let log = { exists: false, text: "", offset: 0 };
  try { log = await api(`/api/experiments/${experiment}/trials/${number}/log`); } catch (e) { notice(String(e.message || e)); }
  logbox.textContent = log.exists ? log.text : "(no output yet)";
  logbox.scrollTop = logbox.scrollHeight;
  document.body.dataset.loaded = "1";
  const source = new EventSource(`/api/experiments/${experiment}/trials/${number}/stream?cursor=${d.cursor}&offset=${log.offset}`);
  source.addEventListener("delta", (event) => {
    const news = JSON.parse(event.data);
    setState(news.state, news.live);
    trialControls(news.state, news.live);
    if (news.reports.length) {
      renderReports(news.reports, true);
      for (const r of news.reports) {
        for (const [k, v] of Object.entries(r.values)) {
          if (typeof v !== "number") continue;
          const s = T.series[`${r.group}/${k}`] || (T.series[`${r.group}/${k}`] = { step: [], value: [] });
          s.step.push(r.step); s.value.push(v);
        }
      }
      renderSeries();
    }
    if (news.log) {
      if (logbox.textContent === "(no output yet)") logbox.textContent = "";
      logbox.textContent += news.log;
      logbox.scrollTop = logbox.scrollHeight;
    }
    if (news.finished) source.close();
  });
}

async function main() {
  try {
    const session = await api("/api/session");
    R.csrf = session.csrf;
    R.scope = session.scope;
    const page = document.body.dataset.page;
    if (page === "index") await indexPage();
    else if (page === "experiment") await experimentPage();
    else if (page === "trial") await trialPage();
  } catch (e) {
    notice(String(e.message || e));
    document.body.dataset.error = String(e.message || e);
  }
}

document.addEventListener("DOMContentLoaded", main);
