// Chart helpers over uPlot (vendored in vendor/uplot, MIT). uPlot draws tens of thousands
// of points per frame on a canvas at ~50 kB, with no build step and no dependencies, which
// is why it was chosen over heavier libraries or server-rendered images (a Python-side
// renderer would cost the server CPU per viewer per frame).
"use strict";
(function () {
  // Per-chart counters the benchmark reads: data updates (setData), those that brought new
  // samples (fresh), and frames drawn.
  const stats = {};
  window.__chartStats = stats;

  function count(name, what) {
    const s = stats[name] || (stats[name] = { updates: 0, fresh: 0, draws: 0, since: performance.now() });
    s[what] += 1;
  }

  // A uPlot plugin that calls draw(u) on one hook of the chart.
  function plugin(hook, draw) {
    return { hooks: { [hook]: [draw] } };
  }

  // Shade spans [[t0, t1], ...] (seconds) behind the series: gaps, protocol phases.
  function spans(get) {
    return plugin("drawClear", (u) => {
      const ctx = u.ctx;
      const top = u.bbox.top;
      const h = u.bbox.height;
      for (const span of get() || []) {
        const x0 = Math.max(u.valToPos(span[0], "x", true), u.bbox.left);
        const x1 = Math.min(u.valToPos(span[1], "x", true), u.bbox.left + u.bbox.width);
        if (x1 <= x0) continue;
        ctx.fillStyle = span[2] || "rgba(200, 40, 40, 0.16)";
        ctx.fillRect(x0, top, x1 - x0, h);
      }
    });
  }

  // Vertical lines at marker times.
  function lines(get) {
    return plugin("draw", (u) => {
      const ctx = u.ctx;
      ctx.save();
      ctx.strokeStyle = "#6a1b9a";
      ctx.lineWidth = 2 * devicePixelRatio;
      for (const t of get() || []) {
        const x = u.valToPos(t, "x", true);
        if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
        ctx.beginPath();
        ctx.moveTo(x, u.bbox.top);
        ctx.lineTo(x, u.bbox.top + u.bbox.height);
        ctx.stroke();
      }
      ctx.restore();
    });
  }

  function width(el) {
    return Math.max(200, Math.floor(el.clientWidth || 300));
  }

  function make(el, name, opts, data) {
    // The x range drawn goes on the element too: the browser test reads it (seconds).
    opts.hooks = {
      draw: [
        (u) => {
          count(name, "draws");
          el.dataset.xmin = String(u.scales.x.min);
          el.dataset.xmax = String(u.scales.x.max);
        },
      ],
    };
    const plot = new uPlot(
      Object.assign({ width: width(el), height: opts.height || 140 }, opts),
      data,
      el,
    );
    const observer = new ResizeObserver(() => {
      const w = width(el);
      if (Math.abs(w - plot.width) > 2) plot.setSize({ width: w, height: plot.height });
    });
    observer.observe(el);
    let window_ = null; // [min, max] of x while scrolling, else null (fit the data)
    return {
      plot,
      // fresh: the data hold samples the chart did not have (default: yes).
      set(newData, fresh) {
        plot.batch(() => {
          plot.setData(newData);
          if (window_) plot.setScale("x", { min: window_[0], max: window_[1] });
        });
        count(name, "updates");
        if (fresh !== false) count(name, "fresh");
      },
      // Move the x window without new data (live traces scroll with the clock between
      // data refreshes): one redraw, counted as a draw, not as an update.
      scroll(min, max) {
        window_ = [min, max];
        plot.setScale("x", { min, max });
      },
      destroy() {
        observer.disconnect();
        plot.destroy();
      },
    };
  }

  // The x range from the data themselves: no estimate yet, the last minute (not 1970); one
  // estimate, the minute before it. Not uPlot's min/max: for a single point on a time
  // scale it passes max = min + 86400 / ms, which with seconds (ms = 1e-3) is ~2.7 years,
  // so the overview's first-estimate tiles showed an axis of years.
  function fitTime(xs) {
    let min = Infinity;
    let max = -Infinity;
    for (const x of xs || []) {
      if (x === null || !Number.isFinite(x)) continue;
      if (x < min) min = x;
      if (x > max) max = x;
    }
    if (min === Infinity) {
      const now = Date.now() / 1000;
      return [now - 60, now];
    }
    return min === max ? [min - 60, max + 5] : [min, max];
  }

  const AXIS = { stroke: "#333", grid: { stroke: "#e3e3e3" }, ticks: { stroke: "#ccc" } };

  // A min/max envelope of a raw trace, gaps shaded.
  function trace(el, name, unit, getGaps) {
    const opts = {
      height: 120,
      legend: { show: false },
      cursor: { show: false },
      scales: { x: { time: true } },
      axes: [Object.assign({ space: 70 }, AXIS), Object.assign({ size: 56, label: unit }, AXIS)],
      series: [
        {},
        { label: "min", stroke: "#1565c0", width: 1 },
        { label: "max", stroke: "#1565c0", width: 1 },
      ],
      bands: [{ series: [2, 1], fill: "rgba(21, 101, 192, 0.25)" }],
      plugins: [spans(getGaps)],
    };
    return make(el, name, opts, [[], [], []]);
  }

  // Arousal and valence (0..1) with confidence bands; phases shaded, markers drawn.
  function affect(el, name, getSpans, getMarkers, height) {
    const opts = {
      height: height || 170,
      legend: { show: false },
      scales: {
        x: { time: true, range: (u) => fitTime(u.data[0]) },
        y: { range: [0, 1] },
      },
      axes: [Object.assign({ space: 70 }, AXIS), Object.assign({ size: 50 }, AXIS)],
      series: [
        {},
        { label: "arousal", stroke: "#c62828", width: 2 },
        { label: "arousal low", stroke: "rgba(198,40,40,0.3)", width: 1 },
        { label: "arousal high", stroke: "rgba(198,40,40,0.3)", width: 1 },
        { label: "valence", stroke: "#2e7d32", width: 2, dash: [6, 4] },
        { label: "valence low", stroke: "rgba(46,125,50,0.3)", width: 1 },
        { label: "valence high", stroke: "rgba(46,125,50,0.3)", width: 1 },
      ],
      bands: [
        { series: [3, 2], fill: "rgba(198, 40, 40, 0.15)" },
        { series: [6, 5], fill: "rgba(46, 125, 50, 0.12)" },
      ],
      plugins: [spans(getSpans), lines(getMarkers)],
    };
    return make(el, name, opts, [[], [], [], [], [], [], []]);
  }

  window.Charts = { trace, affect, stats };
})();
