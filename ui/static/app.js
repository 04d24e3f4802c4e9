// The dashboard's script: the overview's live parts (server-sent events) and the strategies'
// charts (TradingView Lightweight Charts, vendored). No inline script runs (CSP).
"use strict";

function live() {
  const root = document.getElementById("live");
  if (!root || !window.EventSource) return;
  const source = new EventSource(root.dataset.stream);
  source.addEventListener("overview", (event) => {
    const parts = JSON.parse(event.data);
    for (const [name, html] of Object.entries(parts)) {
      const el = document.getElementById("live-" + name);
      if (el && el.innerHTML !== html) el.innerHTML = html;
    }
    root.dataset.updated = String(Date.now());
  });
}

function charts() {
  const data = document.getElementById("chart-data");
  if (!data || !window.LightweightCharts) return;
  const all = JSON.parse(data.textContent);
  for (const el of document.querySelectorAll("[data-chart]")) {
    const points = (all[el.dataset.name] || {})[el.dataset.chart] || [];
    if (!points.length) { el.textContent = "no data yet"; el.classList.add("hint"); continue; }
    const chart = LightweightCharts.createChart(el, {
      autoSize: true,
      layout: { background: { color: "#0b0f13" }, textColor: "#8a96a3" },
      grid: { vertLines: { color: "#1d252e" }, horzLines: { color: "#1d252e" } },
      timeScale: { timeVisible: true, secondsVisible: true },
      rightPriceScale: { borderColor: "#26313d" },
    });
    // A time scale needs strictly increasing times: two points in one second keep the last.
    const byTime = new Map();
    for (const [t, v] of points) byTime.set(t, Number(v));  // exact text from the server
    const series = [...byTime.entries()].sort((a, b) => a[0] - b[0]).map(([time, value]) => ({ time, value }));
    if (el.dataset.chart === "pnl") {
      const last = series[series.length - 1].value;
      chart.addBaselineSeries({ baseValue: { type: "price", price: 0 },
        topLineColor: "#26a69a", bottomLineColor: "#ef5350" }).setData(series);
      el.dataset.last = String(last);
    } else if (el.dataset.chart === "slippage") {
      // positive slippage is worse for the trade: red; better: green
      chart.addHistogramSeries({ color: "#f0b429" }).setData(series.map((p) => ({
        ...p, color: p.value > 0 ? "#ef5350" : "#26a69a" })));
    } else {
      chart.addHistogramSeries({ color: "#4f9cf9" }).setData(series);
    }
    chart.timeScale().fitContent();
    el.dataset.drawn = "1";
  }
}

// Forms that close positions ask first: `data-confirm` always, or only while the checkbox named
// by `data-confirm-if` is ticked (the halt's "and close every position").
function confirms() {
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      const only = form.dataset.confirmIf;
      if (only && !form.elements[only].checked) return;
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
}

document.addEventListener("DOMContentLoaded", () => { live(); charts(); confirms(); });
