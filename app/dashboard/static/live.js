// Live page: polls /dashboard/api/live every few seconds and redraws.
import {
  SignedOut, clock, el, integer, millis, money, percent, probability, problem, request, show,
  table, tier, words,
} from "./common.js";

const REFRESH_MS = 5000;
const SVG = "http://www.w3.org/2000/svg";
let paused = false;
let timer = null;

const $ = (id) => document.getElementById(id);
const stat = (name) => document.querySelector(`[data-stat="${name}"]`);
const setText = (node, text) => { if (node) node.textContent = text; };

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

function minutes(seconds) {
  return seconds % 60 === 0 ? `${seconds / 60} minutes` : `${seconds} s`;
}

function renderStats(data) {
  const w = data.window;
  const span = Math.max(1, Math.min(w.window_seconds, data.uptime_seconds));
  setText(stat("transactions"), integer(w.transactions));
  setText(stat("rate"), `${(w.transactions / span).toFixed(1)} a second`);
  setText(stat("alert_rate"), percent(w.alert_rate));
  setText(stat("alerts"), `${integer(w.alerts)} ${w.alerts === 1 ? "alert" : "alerts"} (review, step-up, decline)`);
  setText(stat("declines"), integer(w.decisions.decline));
  setText(stat("decision_mix"), `review ${integer(w.decisions.review)} · step-up ${integer(w.decisions.step_up)}`);
  setText(stat("degraded"), integer(w.degraded));
  setText(stat("degraded_rate"), w.degraded_rate === null ? "no traffic" : `${percent(w.degraded_rate, 2)} of transactions`);
  setText(stat("fallback"), integer(w.decision_sources.rules_fallback || 0));
  setText(stat("fallback_note"), `${integer(data.since_start.rules_fallback)} since the pod started`);
  const single = w.latency_ms["/v1/predict"];
  const batch = w.latency_ms["/v1/predict/batch"];
  setText(stat("latency"), single.requests ? `${millis(single.p50)} / ${millis(single.p99)}` : "–");
  setText(
    stat("latency_note"),
    `${integer(single.requests)} single requests${batch.requests ? ` · batch p99 ${millis(batch.p99)}` : ""}`,
  );
}

function renderModel(data) {
  const m = data.model;
  setText(document.querySelector('[data-live="model_version"]'), m.version);
  setText(document.querySelector('[data-live="alias"]'), m.alias ? `${m.alias} (v${m.registry_version})` : "none (a bundle directory)");
  setText(document.querySelector('[data-live="decision_source"]'), words(m.decision_source));
  setText(document.querySelector('[data-live="feature_service"]'), m.feature_service);
  setText(document.querySelector('[data-live="window"]'), minutes(data.window.window_seconds));
  setText(document.querySelector('[data-live="bucket"]'), `${data.window.bucket_seconds} s`);
}

function scoreChart(histogram, thresholds) {
  const width = 600, height = 220, left = 40, bottom = 36, top = 12;
  const plotW = width - left - 8, plotH = height - top - bottom;
  const barW = plotW / histogram.length;
  const maxLog = Math.max(1, ...histogram.map((b) => Math.log10(1 + b.count)));
  const total = histogram.reduce((s, b) => s + b.count, 0);
  const above = (t) => histogram.filter((b) => b.low >= t).reduce((s, b) => s + b.count, 0);
  const label = total
    ? `Score distribution of ${integer(total)} transactions: ${integer(histogram[0].count)} below ${histogram[0].high}, ` +
      `${integer(above(thresholds.medium))} at or above the review threshold ${thresholds.medium}.`
    : "Score distribution: no transactions in the window.";
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label });
  chart.append(svg("line", { class: "axis", x1: left, y1: top + plotH, x2: left + plotW, y2: top + plotH }));
  histogram.forEach((b, i) => {
    const h = (Math.log10(1 + b.count) / maxLog) * plotH;
    const bar = svg("rect", { class: b.low >= thresholds.medium ? "bar alert" : "bar", x: left + i * barW + 2, y: top + plotH - h, width: barW - 4, height: h });
    bar.append(svg("title", {}, `${b.low}–${b.high}: ${b.count}`));
    chart.append(bar);
    if (i % 2 === 0 || i === histogram.length - 1) {
      chart.append(svg("text", { x: left + i * barW, y: top + plotH + 14, "text-anchor": "middle" }, String(b.low)));
    }
  });
  chart.append(svg("text", { x: left + plotW, y: top + plotH + 14, "text-anchor": "end" }, "1"));
  chart.append(svg("text", { x: left + plotW / 2, y: height - 4, "text-anchor": "middle" }, "fraud probability (bins) · bar height on a log scale"));
  Object.entries(thresholds).forEach(([name, t], n) => {
    const i = histogram.findIndex((b) => t > b.low && t <= b.high);
    if (i < 0) return;
    const b = histogram[i];
    const x = left + (i + (t - b.low) / (b.high - b.low)) * barW;
    chart.append(svg("line", { class: "threshold", x1: x, y1: top, x2: x, y2: top + plotH }));
    // staggered, so thresholds close together keep readable labels
    chart.append(svg("text", { x: x + 3, y: top + 10 + 13 * n }, `${name} ${t}`));
  });
  return chart;
}

function trafficChart(series, bucket) {
  const width = 600, height = 180, left = 40, bottom = 24, top = 12;
  const plotW = width - left - 8, plotH = height - top - bottom;
  const barW = plotW / series.length;
  const max = Math.max(1, ...series.map((s) => s.transactions));
  const total = series.reduce((s, b) => s + b.transactions, 0);
  const alerts = series.reduce((s, b) => s + b.alerts, 0);
  const chart = svg("svg", {
    viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": `Transactions per ${bucket} seconds: ${integer(total)} in the window, ${integer(alerts)} alerts, at most ${integer(max)} in one interval.`,
  });
  chart.append(svg("line", { class: "axis", x1: left, y1: top + plotH, x2: left + plotW, y2: top + plotH }));
  series.forEach((s, i) => {
    const h = (s.transactions / max) * plotH;
    const a = (s.alerts / max) * plotH;
    const x = left + i * barW;
    if (h > 0) chart.append(svg("rect", { class: "bar", x, y: top + plotH - h, width: Math.max(1, barW - 1), height: h }));
    if (a > 0) chart.append(svg("rect", { class: "bar alert", x, y: top + plotH - a, width: Math.max(1, barW - 1), height: a }));
  });
  chart.append(svg("text", { x: left - 4, y: top + 8, "text-anchor": "end" }, integer(max)));
  chart.append(svg("text", { x: left - 4, y: top + plotH, "text-anchor": "end" }, "0"));
  chart.append(svg("text", { x: left, y: height - 6 }, `−${Math.round((series.length * bucket) / 60)} min`));
  chart.append(svg("text", { x: left + plotW, y: height - 6, "text-anchor": "end" }, "now"));
  const legend = el("p", { class: "legend" },
    el("span", {}, el("span", { class: "swatch swatch-tx" }), "transactions"),
    el("span", {}, el("span", { class: "swatch swatch-alert" }), "alerts"));
  return [chart, legend];
}

function renderCharts(data) {
  const w = data.window;
  show($("score-chart"), scoreChart(w.score_histogram, data.model.thresholds));
  show($("score-table"), table("Transactions by fraud probability", [{ label: "Probability" }, { label: "Transactions", numeric: true }],
    w.score_histogram.map((b) => [`${b.low} – ${b.high}`, integer(b.count)])));
  show($("traffic-chart"), trafficChart(w.series, w.bucket_seconds));
  const busy = w.series.filter((s) => s.transactions > 0);
  show($("traffic-table"), busy.length
    ? table(`Intervals with traffic (${w.bucket_seconds} s each)`, [{ label: "From" }, { label: "Transactions", numeric: true }, { label: "Alerts", numeric: true }, { label: "Degraded", numeric: true }],
      busy.map((s) => [clock(s.start), integer(s.transactions), integer(s.alerts), integer(s.degraded)]))
    : el("p", { class: "muted" }, "No traffic in the window."));
}

function renderTables(data) {
  const w = data.window;
  const routes = Object.entries(w.latency_ms);
  show($("latency-table"), table("Latency by route", [
    { label: "Route" }, { label: "Requests", numeric: true }, { label: "p50", numeric: true },
    { label: "p95", numeric: true }, { label: "p99", numeric: true }, { label: "Max", numeric: true },
  ], routes.map(([route, l]) => [el("code", {}, route), integer(l.requests), millis(l.p50), millis(l.p95), millis(l.p99), millis(l.max)])));

  const since = data.since_start;
  const reasons = new Set([...Object.keys(w.degraded_reasons), ...Object.keys(since.feature_misses)]);
  const rows = [...reasons].sort().map((r) => [el("code", {}, r), integer(w.degraded_reasons[r] || 0), integer(since.feature_misses[r] || 0)]);
  rows.push(["Rules fallback (no model)", integer(w.decision_sources.rules_fallback || 0), integer(since.rules_fallback)]);
  if (data.velocity) rows.push(["Velocity updates waiting / dropped", integer(data.velocity.pending), integer(data.velocity.dropped)]);
  show($("degraded-table"), table("Degraded features and fallbacks", [
    { label: "Reason" }, { label: "In the window", numeric: true }, { label: "Since start", numeric: true },
  ], rows));

  const recent = w.recent;
  show($("recent-table"), recent.length
    ? table(`The last ${recent.length} transactions`, [
      { label: "Time" }, { label: "Transaction" }, { label: "Customer" }, { label: "Amount", numeric: true },
      { label: "Probability", numeric: true }, { label: "Tier" }, { label: "Decision" }, { label: "Source" },
      { label: "Degraded" }, { label: "Reasons", class: "reasons" },
    ], recent.map((r) => [
      el("span", { class: "nowrap" }, clock(r.scored_at)), el("code", {}, r.transaction), el("code", {}, r.customer), money(r.amount),
      probability(r.fraud_probability), tier(r.risk_level), words(r.decision), words(r.decision_source),
      r.degraded.length ? r.degraded.join(", ") : "no", r.reasons.map((c) => words(c.toLowerCase())).join("; ") || "–",
    ]))
    : el("p", { class: "muted" }, "No transactions scored in the window yet."));
}

async function refresh() {
  if (paused || document.hidden) return;
  try {
    const response = await request("/dashboard/api/live");
    if (!response.ok) throw new Error(await problem(response));
    const data = await response.json();
    renderModel(data);
    renderStats(data);
    renderCharts(data);
    renderTables(data);
    $("live-error").hidden = true;
    setText($("live-status"), `Updated ${clock(data.window.generated_at)} · every ${REFRESH_MS / 1000} s · pod ${data.pod}`);
    document.body.dataset.loaded = "true";
  } catch (error) {
    if (error instanceof SignedOut) return;
    const box = $("live-error");
    box.textContent = `Could not load the live data (${error.message}); retrying.`;
    box.hidden = false;
  }
}

function schedule() {
  clearInterval(timer);
  timer = setInterval(refresh, REFRESH_MS);
}

$("live-toggle").addEventListener("click", (event) => {
  paused = !paused;
  event.currentTarget.setAttribute("aria-pressed", String(paused));
  event.currentTarget.textContent = paused ? "Resume updates" : "Pause updates";
  if (paused) setText($("live-status"), "Updates paused");
  else refresh();
});
document.addEventListener("visibilitychange", () => { if (!document.hidden) refresh(); });

refresh();
schedule();
