// The dashboard page: routes by URL fragment, talks to the service with the user's API key
// (kept in sessionStorage: gone when the tab closes), renders with DOM text only (never
// innerHTML with data, so nothing a participant id or marker holds can run as markup).
"use strict";
(function () {
  const KEY = "affectstream.key";
  const main = document.getElementById("main");
  let me = null;
  let cleanup = [];
  // Bumped on every navigation: a page that awaited must not draw into the next page.
  let routeId = 0;

  // -- small helpers -----------------------------------------------------------------------

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") el.className = v;
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else if (v === true) el.setAttribute(k, "");
      else el.setAttribute(k, String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  function toast(text, bad) {
    const el = document.getElementById("toast");
    el.textContent = text;
    el.className = bad ? "bad show" : "show";
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => (el.className = ""), 5000);
  }

  function fmt(x, digits) {
    return Number.isFinite(x) ? x.toFixed(digits === undefined ? 2 : digits) : "–";
  }

  function clock(t) {
    return new Date(t * 1000).toLocaleTimeString([], { hour12: false });
  }

  function when(t) {
    return t ? new Date(t * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC" : "–";
  }

  function mmss(s) {
    if (!Number.isFinite(s)) return "–";
    s = Math.max(0, Math.round(s));
    return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  }

  class ApiError extends Error {
    constructor(status, detail) {
      super(detail);
      this.status = status;
    }
  }

  async function api(path, opts) {
    opts = opts || {};
    const headers = { Authorization: "Bearer " + sessionStorage.getItem(KEY) };
    if (opts.body !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch(path, {
      method: opts.method || "GET",
      headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      signal: opts.signal,
    });
    if (res.status === 401) {
      sessionStorage.removeItem(KEY);
      location.hash = "#/login";
      throw new ApiError(401, "Your key was not accepted; log in again.");
    }
    if (!res.ok) {
      let detail = res.statusText;
      try {
        const body = await res.json();
        detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
      } catch (e) { /* not JSON */ }
      throw new ApiError(res.status, detail);
    }
    return opts.raw ? res : res.status === 204 ? null : res.json();
  }

  // Server-sent events over fetch (EventSource cannot send the Authorization header).
  async function events(path, onMessage, signal) {
    const res = await api(path, { raw: true, signal });
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const chunk = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const data = chunk.split("\n").filter((l) => l.startsWith("data: "));
        if (data.length) onMessage(JSON.parse(data.map((l) => l.slice(6)).join("\n")));
      }
    }
  }

  function every(ms, fn) {
    let stopped = false;
    let timer = null;
    const loop = async () => {
      if (stopped) return;
      const t0 = performance.now();
      try {
        await fn();
      } catch (e) {
        if (e.name !== "AbortError") console.warn(e);
      }
      if (!stopped) timer = setTimeout(loop, Math.max(0, ms - (performance.now() - t0)));
    };
    loop();
    cleanup.push(() => {
      stopped = true;
      clearTimeout(timer);
    });
  }

  function section(title, ...children) {
    const id = "h-" + title.toLowerCase().replace(/[^a-z0-9]+/g, "-");
    return h("section", { class: "card", "aria-labelledby": id }, h("h2", { id }, title), ...children);
  }

  function chip(text, level) {
    return h("span", { class: "chip " + (level || "") }, text);
  }

  // Device states from the runtime (runtime/devices.py), in words and chip colours.
  const STATE_WORDS = { connecting: "connecting", connected: "connected", reconnecting: "reconnecting",
    silent: "no data", stopped: "stopped" };
  const STATE_LEVEL = { connected: "good", stopped: "fair" };

  function batteryText(d) {
    const low = d.battery_low === true ? chip("low", "warn") : null;
    if (d.battery !== null) return h("span", {}, `${fmt(d.battery, 0)} % `, low);
    if (d.battery_low === null) return "not reported";
    return low || "ok";
  }

  function qualityLevel(q) {
    return !Number.isFinite(q) ? "" : q >= 0.8 ? "good" : q >= 0.5 ? "fair" : "poor";
  }

  // -- pages ---------------------------------------------------------------------------------

  function loginPage() {
    const input = h("input", {
      id: "key", name: "key", type: "password", autocomplete: "off", required: true,
      "aria-describedby": "key-help",
    });
    const error = h("p", { class: "error", role: "alert" });
    const form = h(
      "form",
      { class: "card login", onsubmit: async (ev) => {
        ev.preventDefault();
        sessionStorage.setItem(KEY, input.value.trim());
        try {
          me = await api("/dashboard/me");
          location.hash = "#/overview";
        } catch (e) {
          sessionStorage.removeItem(KEY);
          error.textContent = e.status === 401
            ? "That key was not accepted. Check it, or ask an admin for a new one."
            : "Could not log in: " + e.message;
        }
      } },
      h("h1", {}, "Log in"),
      h("label", { for: "key" }, "API key"),
      input,
      h("p", { id: "key-help", class: "help" },
        "The key an admin issued you (ask_…). Your role decides what you see."),
      h("button", { type: "submit" }, "Log in"),
      error,
    );
    main.replaceChildren(form);
    input.focus();
  }

  async function startForm() {
    const studies = (await api("/studies?limit=1000")).items;
    const study = h("select", { id: "start-study" },
      studies.map((s) => h("option", { value: s.id }, s.name)));
    const participant = h("select", { id: "start-participant" });
    const duration = h("input", { id: "start-duration", type: "number", min: 5, max: 86400, value: 60 });
    const fill = async () => {
      const ps = study.value ? (await api(`/studies/${study.value}/participants?limit=1000`)).items : [];
      participant.replaceChildren(...ps.map((p) => h("option", { value: p.id }, p.pseudonym)));
    };
    study.addEventListener("change", fill);
    await fill();
    return h("form", { class: "row", onsubmit: async (ev) => {
      ev.preventDefault();
      try {
        const s = await api("/sessions", { method: "POST", body: {
          participant_id: Number(participant.value), duration: Number(duration.value) } });
        location.hash = "#/live/" + encodeURIComponent(s.id);
      } catch (e) { toast("Could not start: " + e.message, true); }
    } },
      h("label", { for: "start-study" }, "Study"), study,
      h("label", { for: "start-participant" }, "Participant"), participant,
      h("label", { for: "start-duration" }, "Length (s)"), duration,
      h("button", { type: "submit" }, "Start emulated session"));
  }

  async function overviewPage() {
    const grid = h("div", { class: "grid", id: "grid" });
    const empty = h("p", { class: "help" }, "No session is running in your studies.");
    main.replaceChildren(h("h1", {}, "Study overview"));
    const mine = routeId;
    if (me.may.run) {
      try {
        const form = await startForm();
        if (mine !== routeId) return;  // the user went to another page meanwhile
        main.append(section("Start a session", form));
      } catch (e) { toast(e.message, true); }
    }
    if (mine !== routeId) return;
    main.append(section("Running now", empty, grid));
    const cards = new Map();
    every(1000, async () => {
      const rows = await api("/dashboard/overview");
      empty.hidden = rows.length > 0;
      const seen = new Set();
      for (const row of rows) {
        seen.add(row.session);
        let card = cards.get(row.session);
        if (!card) {
          card = overviewCard(row);
          cards.set(row.session, card);
          grid.append(card.el);
        }
        card.update(row);
      }
      for (const [sid, card] of cards) {
        if (!seen.has(sid)) { card.el.remove(); card.chart.destroy(); cards.delete(sid); }
      }
    });
  }

  function overviewCard(row) {
    const values = h("p", { class: "big" });
    const phase = h("p", {});
    const quality = h("p", { class: "chips" });
    const streams = h("p", { class: "help" });
    const box = h("div", { class: "chart", role: "img",
      "aria-label": "Arousal and valence of " + row.participant + " over the last minutes" });
    const el = h("article", { class: "card tile", "data-session": row.session },
      h("h3", {}, h("a", { href: "#/live/" + encodeURIComponent(row.session) }, row.participant)),
      values, phase, quality, streams, box);
    const series = [[], [], [], [], [], [], []];
    let last = null;
    const chart = Charts.affect(box, "overview:" + row.participant, () => [], () => [], 110);
    return {
      el, chart,
      update(r) {
        const live = r.live || {};
        const e = live.estimate;
        values.replaceChildren(
          "Arousal ", h("strong", {}, fmt(e && e.arousal)),
          " · Valence ", h("strong", {}, fmt(e && e.valence)),
          e && !e.arousal_calibrated ? chip("uncalibrated", "warn") : "");
        const p = live.phase;
        phase.textContent = p ? `Phase: ${p.name}, ${mmss(p.left_s)} left` : "No protocol phase";
        quality.replaceChildren(...Object.entries(live.quality || {}).map(([k, q]) =>
          chip(`${k} ${fmt(q)}`, qualityLevel(q))));
        const ss = live.streams || [];
        const gaps = ss.reduce((a, s) => a + s.gap_samples, 0);
        const ds = live.devices || [];
        const notOk = ds.filter((d) => d.state !== "connected");
        const reconnects = ds.reduce((a, d) => a + d.reconnects, 0);
        streams.textContent = `${ds.length} devices, ${ss.length} streams, ${gaps} gap samples` +
          (reconnects ? `, ${reconnects} reconnects` : "") +
          (notOk.length ? `; ${notOk.map((d) => `${d.device} ${STATE_WORDS[d.state] || d.state}`).join(", ")}` : "");
        if (e && e.t_end !== last) {
          last = e.t_end;
          pushEstimate(series, e, 120);
        }
        chart.set(series);
      },
    };
  }

  // Confidence band: ± (1 − confidence) / 2 around the value, clipped to 0..1; an
  // uncalibrated valence (no numeric confidence) gets the whole scale: it says nothing.
  function band(value, confidence) {
    if (!Number.isFinite(value)) return [null, null];
    const half = Number.isFinite(confidence) ? (1 - confidence) / 2 : 0.5;
    return [Math.max(0, value - half), Math.min(1, value + half)];
  }

  function pushEstimate(series, e, keep) {
    const [alo, ahi] = band(e.arousal, e.arousal_confidence);
    const vconf = typeof e.valence_confidence === "number" ? e.valence_confidence : NaN;
    const [vlo, vhi] = band(e.valence, vconf);
    const row = [e.t_end, e.arousal, alo, ahi, e.valence, vlo, vhi];
    row.forEach((v, i) => series[i].push(Number.isFinite(v) ? v : null));
    if (keep && series[0].length > keep) series.forEach((s) => s.splice(0, s.length - keep));
  }

  function estimateText(e) {
    if (!e) return [h("p", { class: "help" }, "No estimate yet (the first comes after one window).")];
    const aCal = e.arousal_calibrated;
    const vCal = e.valence_calibrated;
    const vConf = typeof e.valence_confidence === "number"
      ? "confidence " + fmt(e.valence_confidence) : String(e.valence_confidence || "");
    const why = ["arousal_top1", "arousal_top2", "arousal_top3"]
      .map((k) => Words.describe(e[k])).filter(Boolean);
    return [
      h("dl", { class: "kv" },
        h("dt", {}, "Arousal"), h("dd", {}, h("strong", { "data-testid": "arousal" }, fmt(e.arousal)),
          ` (0 calm – 1 aroused), confidence ${fmt(e.arousal_confidence)} `,
          chip(aCal ? "calibrated to this person" : "uncalibrated: population model", aCal ? "good" : "warn"),
          // Which models gave this estimate, and why the others gave none (reference
          // filling, no input...): runtime/combine.py arousal_basis.
          e.arousal_basis ? h("span", { class: "help block", "data-testid": "arousal-basis" },
            `models: ${e.arousal_basis}`) : ""),
        h("dt", {}, "Valence"), h("dd", {}, h("strong", {}, fmt(e.valence)),
          " (0 unpleasant – 1 pleasant) ",
          chip(vCal ? "calibrated" : "uncalibrated", vCal ? "good" : "warn"),
          h("span", { class: "help block" }, `${vConf}; basis: ${e.valence_basis || "–"}`)),
        h("dt", {}, "Estimate at"), h("dd", {}, clock(e.t_end))),
      h("h3", {}, "Why (largest influences on arousal)"),
      h("ol", { class: "why" }, why.map((w) => h("li", {},
        h("strong", {}, w.text), ` ${w.effect} (${fmt(w.value)})`))),
    ];
  }

  const TRACE_REFRESH = 100; // ms between pushed trace frames (api/trace_push.py TRACE_PUSH)
  const TRACE_SECONDS = 10; // window drawn (api/trace_push.py TRACE_SECONDS)
  // ms the scrolling trails the newest sample: a Polar H10 ECG packet holds ~0.56 s.
  const TRACE_LAG = 600;
  const TRACE_FPS = 20; // most redraws a second of a scrolling trace

  const TRACES = [
    ["ecg", "ECG", "µV"], ["eda", "EDA", "µS"], ["eeg", "EEG (first channel)", "µV"], ["hr", "Heart rate", "bpm"],
  ];

  async function livePage(sid) {
    const ctl = new AbortController();
    cleanup.push(() => ctl.abort());
    const title = h("h1", {}, "Live session");
    const status = h("p", { class: "help", id: "live-status" }, sid);
    const phaseBox = h("div", { id: "phase" });
    const estimateBox = h("div", { id: "estimate" }, estimateText(null));
    const qualityBox = h("p", { class: "chips", id: "quality" });
    const deviceBody = h("tbody", {});
    const alertsList = h("ul", { id: "alerts", class: "alerts" });
    const markerList = h("ul", { id: "markers" });
    const affectBox = h("div", { class: "chart", role: "img",
      "aria-label": "Arousal (solid red) and valence (dashed green) with confidence bands; protocol phases shaded" });
    const spans = [];
    const markers = [];
    const series = [[], [], [], [], [], [], []];
    const affectChart = Charts.affect(affectBox, "affect", () => spans, () => markers);
    cleanup.push(() => affectChart.destroy());
    let ended = false;
    let lastPhase = null;

    const alert = (text, level) => {
      alertsList.prepend(h("li", { class: level || "warn" }, `${clock(Date.now() / 1000)} ${text}`));
      while (alertsList.children.length > 20) alertsList.lastChild.remove();
    };

    // Controls (operators and up).
    const controls = [];
    if (me.may.markers) {
      const text = h("input", { id: "marker-text", type: "text", maxlength: 200,
        placeholder: "e.g. participant coughed" });
      const add = async (label, detail) => {
        try {
          await api(`/sessions/${encodeURIComponent(sid)}/markers`, { method: "POST", body: { label, detail } });
          toast(`Marker “${label}” stored`);
          await loadMarkers();
        } catch (e) { toast("Marker not stored: " + e.message, true); }
      };
      controls.push(section("Markers",
        h("div", { class: "row" },
          h("button", { type: "button", id: "mark-now", onclick: () => add("mark", "") }, "Mark now"),
          h("form", { class: "row", onsubmit: (ev) => {
            ev.preventDefault();
            if (text.value.trim()) { add(text.value.trim(), "free text"); text.value = ""; }
          } },
            h("label", { for: "marker-text" }, "Marker text"), text,
            h("button", { type: "submit", id: "add-marker" }, "Add marker"))),
        markerList));
    }
    const dialog = selfReportDialog(sid);
    if (me.may.run) {
      controls.push(section("Session",
        h("div", { class: "row" },
          me.may.self_reports ? h("button", { type: "button", id: "open-self-report",
            onclick: () => dialog.open("now") }, "Self-report…") : null,
          h("button", { type: "button", id: "end-session", class: "danger", onclick: async () => {
            try {
              await api(`/sessions/${encodeURIComponent(sid)}/stop`, { method: "POST" });
              toast("Session ended and saved");
              location.hash = "#/session/" + encodeURIComponent(sid);
            } catch (e) { toast("Could not end: " + e.message, true); }
          } }, "End session"))));
    }

    // Traces (not for viewers: they see no raw signals).
    const traceCharts = {};
    const traceSection = me.may.traces ? section("Signals (last 10 s, min/max per pixel; gaps shaded red)") : null;
    if (traceSection) {
      for (const [mod, label, unit] of TRACES) {
        const box = h("div", { class: "chart", role: "img", "aria-label": `${label} trace, last 10 seconds` });
        const fig = h("figure", { class: "trace", "data-modality": mod, hidden: true },
          h("figcaption", {}, label), box);
        traceSection.append(fig);
        const gaps = [];
        traceCharts[mod] = { fig, gaps, chart: Charts.trace(box, "trace:" + mod, unit, () => gaps) };
        cleanup.push(() => traceCharts[mod].chart.destroy());
      }
    }

    main.replaceChildren(
      title, status,
      h("div", { class: "cols" },
        h("div", {},
          section("Protocol", phaseBox),
          section("Estimate", estimateBox),
          section("Arousal and valence", h("p", { class: "legend" },
            h("span", { class: "sw arousal" }), "arousal ",
            h("span", { class: "sw valence" }), "valence; band ± (1 − confidence)/2; uncalibrated valence spans the scale"),
            affectBox),
          traceSection),
        h("div", {},
          // Scrolls sideways on a phone: focusable so the keyboard can scroll it too.
          section("Devices", h("div", { class: "scroll", tabindex: 0, role: "region", "aria-label": "Device table" },
            h("table", { class: "devices" },
            h("caption", { class: "sr" }, "State of each device"),
            h("thead", {}, h("tr", {}, ["Device and streams", "State", "Battery", "Contact", "Reconnects", "Gaps"]
              .map((t) => h("th", { scope: "col" }, t)))),
            deviceBody)),
            h("p", { class: "help" }, "Gaps: events (missing samples). “Not reported”: the device does not send it.")),
          section("Signal quality", qualityBox),
          section("Alerts", alertsList),
          ...controls)),
      dialog.el,
    );

    async function loadMarkers() {
      const rows = await api(`/sessions/${encodeURIComponent(sid)}/markers`);
      markers.splice(0, markers.length, ...rows.map((m) => m.t));
      markerList.replaceChildren(...rows.map((m) => h("li", {}, `${clock(m.t)} ${m.label}`,
        m.detail && m.detail !== "free text" ? ` – ${m.detail}` : "")));
    }

    // History first, then every estimate as it is pushed.
    try {
      const hist = await api(`/sessions/${encodeURIComponent(sid)}/estimates?limit=1000`);
      for (const r of hist.rows) pushEstimate(series, Object.assign({ t_end: r.time_ns / 1e9 }, r));
      affectChart.set(series);
      await loadMarkers();
    } catch (e) { toast(e.message, true); }

    // The server pushes trace bins on the live stream (no polling: one request per refresh
    // per chart cost the server far more than the data). The first frame holds the whole
    // window; later ones only the bins from about a second before the last frame's newest
    // sample, on a fixed grid (t0 + k * w), which replace this chart's bins from t0 on.
    function mergeBins(c, tr, full) {
      if (full || c.w !== tr.w || c.t0 === undefined) {
        c.w = tr.w; c.t0 = tr.t0; c.lo = tr.min.slice(); c.hi = tr.max.slice();
      } else {
        let i = Math.round((tr.t0 - c.t0) / c.w);
        let lo = tr.min, hi = tr.max;
        if (i < 0) { lo = lo.slice(-i); hi = hi.slice(-i); i = 0; }
        // Frames missed (a busy stream): those bins are unknown and drawn as a gap.
        while (c.lo.length < i) { c.lo.push(null); c.hi.push(null); }
        c.lo.splice(i, c.lo.length - i, ...lo);
        c.hi.splice(i, c.hi.length - i, ...hi);
      }
      const drop = Math.floor((tr.stop - TRACE_SECONDS - c.t0) / c.w);
      if (drop > 0) { c.lo.splice(0, drop); c.hi.splice(0, drop); c.t0 += drop * c.w; }
    }
    function onTraces(res) {
      if (ended) return;
      const at = performance.now();
      for (const [mod, tr] of Object.entries(res.traces)) {
        const c = traceCharts[mod];
        if (!c) continue;
        c.fig.hidden = false;
        mergeBins(c, tr, res.full);
        const t = c.lo.map((_, k) => c.t0 + (k + 0.5) * c.w);
        // Gaps: runs of empty bins, and a silent stream's stretch up to the window's end.
        const gaps = [];
        for (let k = 0; k < c.lo.length; k++) {
          if (c.lo[k] !== null) continue;
          const j0 = k;
          while (k < c.lo.length && c.lo[k] === null) k++;
          gaps.push([c.t0 + j0 * c.w, c.t0 + k * c.w]);
        }
        const end = c.t0 + c.lo.length * c.w;
        if (tr.stop > end + c.w) gaps.push([end, tr.stop]);
        c.gaps.splice(0, c.gaps.length, ...gaps);
        if (tr.stop !== c.stop) { c.stop = tr.stop; c.at = at; }  // scroll from the new end
        const i = c.lo.findLastIndex((x) => x !== null);
        const newest = tr.newest !== undefined ? tr.newest : (i >= 0 ? t[i] : undefined);
        // New data, or the same data redrawn: the benchmark counts them apart.
        const fresh = newest !== undefined && newest !== c.newest;
        c.newest = newest;
        c.chart.set([t, c.lo, c.hi], fresh);
        // Time of the newest sample drawn (the browser test reads it to see data advance).
        if (newest !== undefined) c.fig.dataset.newest = String(newest);
      }
    }
    const traceQuery = traceSection ? "?traces=" + TRACES.map((t) => t[0]).join(",") : "";
    events(`/sessions/${encodeURIComponent(sid)}/events${traceQuery}`, (m) => {
      if (m.type === "traces") {
        onTraces(m);
      } else if (m.type === "estimate") {
        pushEstimate(series, m, 2000);
        affectChart.set(series);
        estimateBox.replaceChildren(...estimateText(m));
      } else if (m.type === "event") {
        if (m.kind === "phase") {
          if (lastPhase !== null && lastPhase !== m.label && me.may.self_reports) dialog.open(lastPhase);
          lastPhase = m.label;
          alert(`Phase ${m.label} started`, "info");
        } else if (m.kind === "marker") {
          loadMarkers().catch(() => {});
        } else if (m.kind === "session" && m.label === "ended") {
          ended = true;
          alert("Session ended" + (m.error ? `: ${m.error}` : ""), m.error ? "bad" : "info");
          status.textContent = `${sid}: ended`;
        } else if (m.kind === "gap") {
          alert(`Gap in ${m.stream || "a stream"}: ${m.label}`, "warn");
        }
      } else if (m.type === "alert") {
        alert(m.message || JSON.stringify(m), "bad");
      } else if (m.type === "status" && m.alerts) {
        // Alerts that fired before this page subscribed (the first message lists them).
        for (const a of m.alerts) alert(a.message || JSON.stringify(a), "bad");
      } else if (m.type === "dropped") {
        alert(`This view missed ${m.n} live messages (slow connection)`, "warn");
      }
    }, ctl.signal).catch((e) => { if (e.name !== "AbortError") alert("Live feed lost: " + e.message, "bad"); });

    const lastState = {};
    every(1000, async () => {
      const s = await api(`/dashboard/sessions/${encodeURIComponent(sid)}/live`, { signal: ctl.signal });
      if (!s.running) {
        phaseBox.replaceChildren(h("p", {}, `Not running (${s.status}).`,
          " ", h("a", { href: "#/session/" + encodeURIComponent(sid) }, "Open the session page")));
        return;
      }
      const live = s.live;
      title.textContent = `Live session: ${live.participant || ""}`.trim();
      status.textContent = `${sid} · ${mmss(live.elapsed_s)} elapsed` +
        (live.duration_s ? ` of ${mmss(live.duration_s)}` : "") + ` · model ${live.model}` +
        (live.store_ok ? "" : " · STORE WRITES FAILING");
      const p = live.phase;
      phaseBox.replaceChildren(p
        ? h("div", {}, h("p", { class: "big" }, h("strong", { id: "phase-name" }, p.name), ` – ${mmss(p.left_s)} left`),
          h("p", {}, p.instruction))
        : h("p", {}, "No protocol phase."));
      const t0 = Date.now() / 1000 - live.elapsed_s;
      const colors = ["rgba(120,120,120,0.10)", "rgba(255,160,0,0.14)", "rgba(0,120,200,0.10)"];
      spans.splice(0, spans.length, ...live.phases.map((ph, i) =>
        [t0 + ph.start_s, t0 + ph.start_s + ph.duration_s, colors[i % colors.length]]));
      qualityBox.replaceChildren(...Object.entries(live.quality || {}).map(([k, q]) =>
        chip(`${k}: ${fmt(q)} ${qualityLevel(q) || ""}`.trim(), qualityLevel(q))));
      deviceBody.replaceChildren(...(live.devices || []).map((d) => {
        const was = lastState[d.device];
        if (was && was !== d.state) {
          if (d.state === "reconnecting") alert(`${d.device}: link lost, reconnecting`, "warn");
          else if (d.state === "silent") alert(`${d.device}: no data for ${fmt(d.last_block_age_s, 0)} s`, "warn");
          else if (d.state === "connected" && was !== "connecting") alert(`${d.device}: streaming again`, "info");
        }
        lastState[d.device] = d.state;
        const streams = live.streams.filter((st) => st.device === d.device)
          .map((st) => `${st.modality} ${fmt(st.rate, 0)}/s`).join(", ");
        return h("tr", { "data-device": d.device },
          h("th", { scope: "row" }, d.device, h("span", { class: "streams" }, streams)),
          h("td", { "data-field": "state" }, chip(STATE_WORDS[d.state] || d.state, STATE_LEVEL[d.state] || "warn")),
          h("td", { "data-field": "battery" }, batteryText(d)),
          h("td", { "data-field": "contact" }, d.contact === null
            ? "not reported" : chip(d.contact ? "on skin" : "no contact", d.contact ? "good" : "warn")),
          h("td", { "data-field": "reconnects" }, String(d.reconnects)),
          h("td", { "data-field": "gaps" }, `${d.gap_events} (${d.gap_samples})`));
      }));
    });

    if (traceSection) {
      // Data arrive as "traces" messages on the live stream every TRACE_REFRESH ms (see
      // onTraces); each chart scrolls with the clock at up to TRACE_FPS frames a second,
      // TRACE_LAG behind the newest sample so the right edge is drawn between a device's
      // packets.
      let last = 0;
      let raf = 0;
      const frame = (ts) => {
        raf = requestAnimationFrame(frame);
        if (ts - last < 1000 / TRACE_FPS) return;
        last = ts;
        for (const c of Object.values(traceCharts)) {
          if (c.stop === undefined) continue;
          const end = c.stop + (performance.now() - c.at - TRACE_LAG) / 1000;
          c.chart.scroll(end - 10, end);
        }
      };
      raf = requestAnimationFrame(frame);
      cleanup.push(() => cancelAnimationFrame(raf));
    }
  }

  function selfReportDialog(sid) {
    const scale = (name, low, high) => {
      const id = "sam-" + name;
      return h("fieldset", { class: "sam" }, h("legend", {}, `${name[0].toUpperCase() + name.slice(1)} (1 ${low} – 9 ${high})`),
        ...[1, 2, 3, 4, 5, 6, 7, 8, 9].map((v) => h("label", { class: "opt" },
          h("input", { type: "radio", name: id, value: v, required: true, "aria-label": `${name} ${v}` }), String(v))));
    };
    const about = h("p", { id: "sam-about" });
    let rated = "now";
    const form = h("form", { method: "dialog", onsubmit: async (ev) => {
      ev.preventDefault();
      const val = (n) => Number(new FormData(form).get("sam-" + n));
      try {
        await api(`/sessions/${encodeURIComponent(sid)}/self-reports`, { method: "POST",
          body: Object.assign({ arousal: val("arousal"), valence: val("valence") },
            rated && rated !== "now" ? { block: rated } : {}) });
        toast("Self-report stored");
        form.reset();
        el.close();
      } catch (e) { toast("Self-report not stored: " + e.message, true); }
    } },
      h("h2", { id: "sam-title" }, "Self-report"), about,
      scale("arousal", "calm", "excited"), scale("valence", "unpleasant", "pleasant"),
      h("div", { class: "row" }, h("button", { type: "submit", id: "sam-submit" }, "Save self-report"),
        h("button", { type: "button", onclick: () => el.close() }, "Later")));
    const el = h("dialog", { id: "self-report", "aria-labelledby": "sam-title" }, form);
    return {
      el,
      open(block) {
        rated = block;  // the block this report rates: it becomes a valence calibration episode
        about.textContent = block === "now"
          ? "How does the participant feel right now?"
          : `The “${block}” block has ended: ask the participant how they felt during it.`;
        if (!el.open) el.showModal();
      },
    };
  }

  async function sessionsPage() {
    const studies = (await api("/studies?limit=1000")).items;
    const study = h("select", { id: "f-study" }, studies.map((s) => h("option", { value: s.id }, s.name)));
    const participant = h("input", { id: "f-participant", type: "search", placeholder: "pseudonym" });
    const from = h("input", { id: "f-from", type: "date" });
    const to = h("input", { id: "f-to", type: "date" });
    const body = h("tbody", {});
    const count = h("p", { class: "help", "aria-live": "polite" });
    let names = {};
    const render = async () => {
      if (!study.value) { body.replaceChildren(); count.textContent = "No study."; return; }
      const [ss, ps] = await Promise.all([
        api(`/studies/${study.value}/sessions?limit=1000`),
        api(`/studies/${study.value}/participants?limit=1000`)]);
      names = Object.fromEntries(ps.items.map((p) => [p.id, p.pseudonym]));
      const lo = from.value ? Date.parse(from.value) / 1000 : -Infinity;
      const hi = to.value ? Date.parse(to.value) / 1000 + 86400 : Infinity;
      const q = participant.value.trim().toLowerCase();
      const rows = ss.items.filter((s) => s.started_at >= lo && s.started_at < hi &&
        (!q || (names[s.participant_id] || "").toLowerCase().includes(q)));
      count.textContent = `${rows.length} of ${ss.total} sessions`;
      body.replaceChildren(...rows.map((s) => h("tr", {},
        h("td", {}, h("a", { href: "#/session/" + encodeURIComponent(s.id) }, s.id)),
        h("td", {}, names[s.participant_id] || s.participant_id),
        h("td", {}, when(s.started_at)),
        h("td", {}, s.stopped_at ? mmss(s.stopped_at - s.started_at) : "running"),
        h("td", {}, s.status === "running"
          ? h("a", { href: "#/live/" + encodeURIComponent(s.id) }, "running: live view") : s.status))));
    };
    const form = h("form", { class: "row filters", onsubmit: (ev) => { ev.preventDefault(); render(); } },
      h("label", { for: "f-study" }, "Study"), study,
      h("label", { for: "f-participant" }, "Participant"), participant,
      h("label", { for: "f-from" }, "From"), from,
      h("label", { for: "f-to" }, "To"), to,
      h("button", { type: "submit" }, "Filter"));
    study.addEventListener("change", render);
    main.replaceChildren(h("h1", {}, "Sessions"), section("Filters", form),
      section("Results", count, h("div", { class: "scroll" }, h("table", { id: "sessions" },
        h("caption", { class: "sr" }, "Sessions"),
        h("thead", {}, h("tr", {}, ["Session", "Participant", "Started", "Length", "Status"]
          .map((t) => h("th", { scope: "col" }, t)))), body))));
    await render();
  }

  const EXPORTS = [
    ["estimates", "Estimates, quality & events (CSV, no raw)", false],
    ["csv", "Everything as CSV", true], ["parquet", "Everything as Parquet", true],
    ["edf", "EDF+ (ECG/EEG)", true], ["bdf", "BDF+ (ECG/EEG)", true], ["bids", "BIDS dataset", true],
  ];

  async function download(sid, fmtName, button) {
    button.disabled = true;
    const old = button.textContent;
    button.textContent = "Preparing…";
    try {
      const res = await api(`/dashboard/sessions/${encodeURIComponent(sid)}/export?format=${fmtName}`,
        { method: "POST", raw: true });
      const blob = await res.blob();
      const name = (res.headers.get("content-disposition") || "").match(/filename="?([^";]+)"?/);
      const a = h("a", { href: URL.createObjectURL(blob), download: name ? name[1] : `${sid}-${fmtName}.zip` });
      document.body.append(a);
      a.click();
      a.remove();
      toast(`Export ${fmtName} downloaded`);
    } catch (e) { toast(`Export ${fmtName} failed: ${e.message}`, true); }
    finally { button.disabled = false; button.textContent = old; }
  }

  async function sessionPage(sid) {
    const s = await api(`/sessions/${encodeURIComponent(sid)}`);
    const [tl, est, models] = await Promise.all([
      api(`/dashboard/sessions/${encodeURIComponent(sid)}/timeline`),
      api(`/sessions/${encodeURIComponent(sid)}/estimates?limit=100000`),
      api("/models")]);
    const p = await api(`/participants/${s.participant_id}`).catch(() => null);
    const series = [[], [], [], [], [], [], []];
    for (const r of est.rows) pushEstimate(series, Object.assign({ t_end: r.time_ns / 1e9 }, r));
    const phases = tl.events.filter((e) => e.kind === "phase");
    const end = s.stopped_at || Date.now() / 1000;
    const colors = ["rgba(120,120,120,0.10)", "rgba(255,160,0,0.14)", "rgba(0,120,200,0.10)"];
    const spans = phases.map((e, i) => [e.t, i + 1 < phases.length ? phases[i + 1].t : end, colors[i % 3]]);
    for (const g of tl.events.filter((e) => e.kind === "gap")) spans.push([g.t, g.t + 1, "rgba(200,40,40,0.35)"]);
    const markerTimes = tl.events.filter((e) => e.kind === "marker").map((e) => e.t);
    const box = h("div", { class: "chart", role: "img",
      "aria-label": "Whole-session arousal and valence; phases shaded, gaps red, markers purple" });
    const exportsBox = me.may.export
      ? section("Export", h("div", { class: "row" }, EXPORTS.filter((x) => !x[2] || me.may.export_raw)
          .map(([f, label]) => h("button", { type: "button", "data-format": f,
            onclick: (ev) => download(sid, f, ev.currentTarget) }, label))),
          me.may.export_raw ? null : h("p", { class: "help" }, "Your role exports estimates and events, not raw signals."))
      : null;
    const modelIds = new Set(est.rows.map((r) => r.model).filter(Boolean));
    const bundles = models.filter((m) => modelIds.has(m.model_id));
    const cards = h("div", {});
    for (const b of bundles) {
      const card = await api(`/models/${encodeURIComponent(b.name)}`);
      cards.append(h("h3", {}, `${b.name} (${b.model_id}), target ${b.target}`),
        h("pre", { class: "modelcard", tabindex: 0 }, card.card || "No model card shipped."));
    }
    if (!bundles.length) cards.append(h("p", { class: "help" }, "No estimates with a known model in this session."));
    main.replaceChildren(
      h("h1", {}, `Session of ${p ? p.pseudonym : "participant " + s.participant_id}`),
      h("p", { class: "help" }, sid),
      section("Summary", h("dl", { class: "kv" },
        h("dt", {}, "Status"), h("dd", {}, s.status),
        h("dt", {}, "Started"), h("dd", {}, when(s.started_at)),
        h("dt", {}, "Stopped"), h("dd", {}, when(s.stopped_at)),
        h("dt", {}, "Estimates"), h("dd", {}, String(est.total)))),
      section("Timeline", box, h("div", { class: "scroll" }, h("table", { id: "timeline" },
        h("caption", { class: "sr" }, "Events of the session"),
        h("thead", {}, h("tr", {}, ["Time", "Kind", "What"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, tl.events.map((e) => h("tr", {}, h("td", {}, clock(e.t)), h("td", {}, e.kind),
          h("td", {}, [e.label, e.detail].filter(Boolean).join(" – ")))))))),
      exportsBox,
      section("Model card", cards));
    const chart = Charts.affect(box, "session", () => spans, () => markerTimes, 200);
    chart.set(series);
    cleanup.push(() => chart.destroy());
  }

  // -- routing -------------------------------------------------------------------------------

  async function route() {
    routeId++;
    cleanup.forEach((f) => f());
    cleanup = [];
    const [, page, arg] = (location.hash || "#/overview").split("/");
    const key = sessionStorage.getItem(KEY);
    if (!key || page === "login") {
      document.getElementById("nav").hidden = true;
      document.getElementById("logout").hidden = true;
      document.getElementById("who").textContent = "";
      return loginPage();
    }
    try {
      if (!me) me = await api("/dashboard/me");
      document.getElementById("nav").hidden = false;
      document.getElementById("logout").hidden = false;
      document.getElementById("who").textContent = `${me.name} (${me.role})`;
      document.body.dataset.role = me.role;
      const id = arg ? decodeURIComponent(arg) : null;
      if (page === "live" && id) await livePage(id);
      else if (page === "session" && id) await sessionPage(id);
      else if (page === "sessions") await sessionsPage();
      else await overviewPage();
      main.focus({ preventScroll: true });
    } catch (e) {
      if (e.status !== 401) main.replaceChildren(h("p", { class: "error", role: "alert" }, e.message));
    }
  }

  document.getElementById("logout").addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    me = null;
    location.hash = "#/login";
  });
  window.addEventListener("hashchange", route);
  route();
})();
