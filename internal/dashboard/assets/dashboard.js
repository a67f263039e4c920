// cutover dashboard: plain JS, no build step. Charts are hand-drawn SVG
// polylines: a few series of a few hundred points each need no library.
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="csrf"]').content;
  const HISTORY = 300; // points (seconds) kept per series
  const COLORS = ["#0969da", "#bf3989", "#1a7f37", "#9a6700", "#8250df", "#cf222e"];
  const state = {}; // app name → {el, series: {release: [{t, rps, err, p50, p99}]}, steps: [], colors: {}}

  function el(tag, attrs, ...kids) {
    const e = tag.startsWith("svg:") ? document.createElementNS("http://www.w3.org/2000/svg", tag.slice(4)) : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") e.textContent = v; else if (k === "class") e.setAttribute("class", v); else if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
    }
    for (const k of kids) if (k) e.appendChild(k);
    return e;
  }
  const ms = ns => (ns / 1e6).toFixed(ns < 1e7 ? 1 : 0) + " ms";
  const ago = t => { const s = Math.max(0, (Date.now() - Date.parse(t)) / 1000); return s < 120 ? s.toFixed(0) + " s" : s < 7200 ? (s / 60).toFixed(0) + " min" : (s / 3600).toFixed(1) + " h"; };

  function colorOf(a, rel) {
    if (!a.colors[rel]) a.colors[rel] = COLORS[Object.keys(a.colors).length % COLORS.length];
    return a.colors[rel];
  }

  function appState(name) {
    if (state[name]) return state[name];
    const a = { series: {}, steps: [], colors: {}, runKey: "" };
    const mk = cls => el("div", { class: cls });
    a.el = el("section", { class: "app", "data-app": name },
      el("h2", { text: name }),
      a.err = mk("error"),
      a.summary = mk("summary"),
      a.weights = mk("weights box"),
      a.controls = controls(name),
      el("div", { class: "charts" },
        chart(a, "rps", "req/s"), chart(a, "err", "error rate %"), chart(a, "p50", "p50 ms"), chart(a, "p99", "p99 ms")),
      el("div", { class: "row" },
        el("div", { class: "box" }, el("h3", { text: "Deploy steps" }), a.stepsEl = el("div", { class: "steps" })),
        el("div", { class: "box" }, el("h3", { text: "Instances" }), a.instances = el("table"))),
      el("div", { class: "box" }, el("h3", { text: "Deploys" }), a.history = el("table")));
    document.getElementById("apps").appendChild(a.el);
    state[name] = a;
    return a;
  }

  function chart(a, key, title) {
    const svg = el("svg:svg", { viewBox: "0 0 300 100", preserveAspectRatio: "none", "data-chart": key });
    a["chart_" + key] = svg;
    const legend = el("div", { class: "legend" });
    a["legend_" + key] = legend;
    return el("div", { class: "chart" }, el("h3", { text: title }), svg, legend);
  }

  function drawChart(a, key, scale) {
    const svg = a["chart_" + key], legend = a["legend_" + key];
    svg.replaceChildren(); legend.replaceChildren();
    let max = 0;
    for (const pts of Object.values(a.series)) for (const p of pts) max = Math.max(max, p[key] * scale);
    if (max === 0) max = 1;
    // The x axis spans the points held, at least 30 s, at most HISTORY s.
    const now = Date.now();
    let oldest = now;
    for (const pts of Object.values(a.series)) if (pts.length) oldest = Math.min(oldest, pts[0].t);
    const span = Math.min(HISTORY, Math.max(30, (now - oldest) / 1000));
    for (const [rel, pts] of Object.entries(a.series)) {
      if (!pts.length) continue;
      const d = pts.map(p => (300 - 300 * (now - p.t) / 1000 / span).toFixed(1) + "," + (100 - 95 * p[key] * scale / max).toFixed(1)).join(" ");
      svg.appendChild(el("svg:polyline", { points: d, fill: "none", stroke: colorOf(a, rel), "stroke-width": "1.5", "vector-effect": "non-scaling-stroke", "data-release": rel }));
      const last = pts[pts.length - 1][key] * scale;
      const sw = el("span", { text: rel + ": " + (Math.round(last * 10) / 10) });
      sw.style.color = colorOf(a, rel);
      legend.appendChild(sw);
    }
    legend.appendChild(el("span", { text: "max " + (Math.round(max * 10) / 10) }));
  }

  function controls(app) {
    const box = el("div", { class: "controls" });
    for (const [action, what] of [["pause", "pause the deploy where it is"], ["resume", "resume the paused deploy"], ["promote", "promote: skip the remaining steps and send all traffic to the new release"], ["abort", "abort the deploy and go back to the live release"], ["rollback", "roll back to the previous release"]]) {
      box.appendChild(el("button", { text: action, "data-action": action, onclick: () => confirmThen(app + ": " + what + "?", () => control(app, action)) }));
    }
    box.appendChild(el("span", { class: "answer" }));
    return box;
  }

  function confirmThen(text, fn) {
    const dlg = document.getElementById("confirm");
    document.getElementById("confirm-text").textContent = text;
    dlg.onclose = () => { if (dlg.returnValue === "ok") fn(); };
    dlg.showModal();
  }

  async function control(app, action) {
    const ans = state[app].controls.querySelector(".answer");
    ans.textContent = action + "…";
    try {
      const r = await fetch("/api/control", { method: "POST", headers: { "Content-Type": "application/json", "X-Cutover-CSRF": csrf }, body: JSON.stringify({ app, action }) });
      const b = await r.json();
      ans.textContent = b.ok ? b.message : "refused: " + b.error;
    } catch (e) { ans.textContent = "failed: " + e; }
  }

  function row(cells, head) { return el("tr", {}, ...cells.map(c => el(head ? "th" : "td", { text: String(c) }))); }

  function render(snap) {
    const t = Date.parse(snap.time);
    for (const s of snap.apps) {
      const a = appState(s.name);
      a.err.textContent = s.error || "";
      const st = s.status;
      if (!st) continue;
      const d = st.deploy;
      a.summary.textContent = "live: " + (st.active || "none") + (d ? " · " + d.kind + " of " + d.release + " — " + d.step + (d.detail ? " (" + d.detail + ")" : "") + (d.paused ? " · PAUSED" : "") : " · no deploy in flight");
      // weights
      const bar = el("div", { class: "bar", "data-weights": JSON.stringify(st.weights || {}) });
      const total = Object.values(st.weights || {}).reduce((x, y) => x + y, 0) || 1;
      for (const [rel, w] of Object.entries(st.weights || {}).sort()) {
        const sp = el("span", { text: rel + " " + Math.round(100 * w / total) + "%", "data-release": rel, "data-weight": w });
        sp.style.width = (100 * w / total) + "%"; sp.style.background = colorOf(a, rel);
        bar.appendChild(sp);
      }
      a.weights.replaceChildren(el("h3", { text: "Weights" }), bar);
      // series
      for (const [rel, w] of Object.entries(s.now || {})) {
        const pts = a.series[rel] || (a.series[rel] = []);
        pts.push({ t, rps: w.Requests / snap.window_secs, err: w.ErrorRate, p50: w.P50 / 1e6, p99: w.P99 / 1e6 });
        while (pts.length > HISTORY || (pts.length && t - pts[0].t > HISTORY * 1000)) pts.shift();
      }
      drawChart(a, "rps", 1); drawChart(a, "err", 100); drawChart(a, "p50", 1); drawChart(a, "p99", 1);
      a.instances.replaceChildren(row(["id", "release", "state", "healthy", "restarts", "age"], true),
        ...(st.instances || []).map(i => row([i.id, i.release, i.state, i.healthy ? "yes" : "no", i.restarts, i.started_at ? ago(i.started_at) : ""])));
      a.history.replaceChildren(row(["#", "kind", "release", "from", "started", "outcome", "error"], true),
        ...(s.deploys || []).map(x => row([x.ID, x.Kind, x.Release, x.FromRelease, new Date(x.StartedAt).toLocaleString(), x.State, x.Error || ""])));
    }
  }

  function onDeploy(ev) {
    const a = appState(ev.app), e = ev.event;
    if (ev.index === 0) a.stepsEl.replaceChildren();
    if (e.type === "log") return;
    const text = new Date(e.time).toLocaleTimeString() + " " + (e.step ? e.step + " " : "") + (e.status || e.type) + (e.message ? " — " + e.message : "") + (e.type === "result" ? (e.ok ? " ✓ " + (e.release || "") : " ✗") : "");
    a.stepsEl.appendChild(el("div", { class: e.status === "failed" || (e.type === "result" && !e.ok) ? "failed" : e.status === "ok" || e.ok ? "ok" : "", "data-step": e.step || "", "data-type": e.type, text }));
    a.stepsEl.scrollTop = a.stepsEl.scrollHeight;
  }

  function connect() {
    const es = new EventSource("/events");
    const conn = document.getElementById("conn");
    es.onopen = () => { conn.textContent = "live"; };
    es.onerror = () => { conn.textContent = "disconnected — retrying (log in again if the daemon restarted)"; };
    es.addEventListener("snapshot", m => render(JSON.parse(m.data)));
    es.addEventListener("deploy", m => onDeploy(JSON.parse(m.data)));
  }
  connect();
})();
