// steerfast playground: no libraries, no network beyond this server. The API key typed into
// the page is kept in memory and sent only as an Authorization header (never in a URL).
"use strict";

const $ = (id) => document.getElementById(id);
const state = { key: "", plans: {}, runs: 0, cols: [] };

function headers() {
  const h = { "Content-Type": "application/json" };
  if (state.key) h["Authorization"] = "Bearer " + state.key;
  return h;
}

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = false;
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

async function apiError(resp) {
  let message = resp.status + " " + resp.statusText;
  try {
    const body = await resp.json();
    if (body && body.error && body.error.message) message = resp.status + ": " + body.error.message;
  } catch (e) { /* not JSON: keep the status line */ }
  return message;
}

function fmt(v) {
  return typeof v === "number" ? Number(v.toPrecision(3)).toString() : JSON.stringify(v);
}

function tunedLines(t) {
  // the tune's choice and what it measured (steerfast inspect prints the same)
  const lines = ["tuned: " + ["family", "layer", "strength", "both_signs", "effect_metric"]
    .filter((k) => k in t).map((k) => k + "=" + fmt(t[k])).join(", ")];
  if (t.budget) lines.push("  budget: " + Object.entries(t.budget).map(([k, v]) => k + " <= " + fmt(v)).join(", "));
  for (const [k, m] of Object.entries(t.measured || {})) {
    if (m && typeof m === "object" && "mean" in m) lines.push("  " + k + ": " + fmt(m.mean) + " [" + fmt(m.lo) + ", " + fmt(m.hi) + "]");
  }
  return lines;
}

function describePlan(p) {
  const lines = [
    "plan " + p.name + ": " + p.method + ", " + p.interventions + " intervention(s)",
    "layers: " + p.layers.join(", "),
    "sites: " + p.sites.join(", "),
    "positions: " + p.positions.join(", "),
  ];
  if (p.tuned) lines.push(...tunedLines(p.tuned));
  if (p.summary) lines.push("", p.summary);
  return lines.join("\n");
}

function showPlan() {
  const p = state.plans[$("plan").value];
  $("inspect-text").textContent = p ? describePlan(p) : "no plan selected";
  if (p && p.strength !== null && p.strength !== undefined) {
    $("strength").value = p.strength;
    $("strength-value").textContent = $("strength").value;
  }
}

async function connect(event) {
  if (event) event.preventDefault();
  clearError();
  state.key = $("api-key").value;
  const resp = await fetch("/v1/playground/info", { headers: headers() });
  if (!resp.ok) {
    showError(await apiError(resp));
    return;
  }
  const info = await resp.json();
  const plan = $("plan");
  plan.innerHTML = "";
  state.plans = {};
  for (const p of info.plans) {
    state.plans[p.name] = p;
    plan.add(new Option(p.name + " (" + p.method + ")", p.name));
  }
  const mon = $("monitor");
  mon.innerHTML = "";
  mon.add(new Option("(none)", ""));
  for (const m of info.monitors) mon.add(new Option(m.name + " (layer " + m.layer + ")", m.name));
  if (info.monitors.length) mon.value = info.monitors[0].name;
  showPlan();
  document.body.dataset.connected = "1";
}

function colour(reading) {
  // tanh squashes the reading into (-1, 1): green above 0, red below, clearer further out
  const t = Math.tanh(reading / 5);
  const alpha = (0.15 + 0.6 * Math.abs(t)).toFixed(3);
  return t >= 0 ? "rgba(26, 127, 55, " + alpha + ")" : "rgba(207, 34, 46, " + alpha + ")";
}

function drawPlot(svg, readings, all) {
  // one scale for both columns (all: every reading shown), so their curves compare
  svg.innerHTML = "";
  if (!readings.length) return;
  const lo = Math.min(0, ...all), hi = Math.max(0, ...all);
  const span = hi - lo || 1;
  const x = (i) => (readings.length === 1 ? 150 : (i * 300) / (readings.length - 1));
  const y = (v) => 76 - ((v - lo) / span) * 72;
  const ns = "http://www.w3.org/2000/svg";
  const zero = document.createElementNS(ns, "line");
  zero.setAttribute("x1", 0); zero.setAttribute("x2", 300);
  zero.setAttribute("y1", y(0)); zero.setAttribute("y2", y(0));
  zero.setAttribute("stroke", "#8c959f"); zero.setAttribute("stroke-dasharray", "3 3");
  svg.appendChild(zero);
  const line = document.createElementNS(ns, "polyline");
  line.setAttribute("points", readings.map((v, i) => x(i) + "," + y(v)).join(" "));
  line.setAttribute("fill", "none"); line.setAttribute("stroke", "#0969da"); line.setAttribute("stroke-width", 2);
  line.setAttribute("vector-effect", "non-scaling-stroke");
  svg.appendChild(line);
}

function addPiece(col, text, reading) {
  const span = document.createElement("span");
  span.className = "tok";
  span.textContent = text;
  if (reading !== undefined) {
    span.dataset.reading = reading.toFixed(4);
    span.style.backgroundColor = colour(reading);
    span.title = col.monitor + " = " + reading.toFixed(3);
  }
  $("text-" + col.name).appendChild(span);
}

async function readStream(resp, col) {
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data: ")) continue;
        const data = line.slice(6);
        if (data === "[DONE]") return;
        const chunk = JSON.parse(data);
        if (chunk.error) throw new Error(chunk.error.message || "stream error");
        for (const c of chunk.choices) handleChoice(col, c);
      }
    }
  }
}

function handleChoice(col, c) {
  const readings = col.monitor && c.monitors ? c.monitors[col.monitor] || [] : [];
  const text = c.text || "";
  col.text += text;
  if (text || readings.length) {
    // a chunk is one token when streaming; several (held-back UTF-8) take their mean
    const r = readings.length ? readings.reduce((a, b) => a + b, 0) / readings.length : undefined;
    addPiece(col, text, r);
  }
  col.readings.push(...readings);
  const all = state.cols.flatMap((c) => c.readings);
  for (const c of state.cols) drawPlot($("plot-" + c.name), c.readings, all);
  if (c.finish_reason) $("status-" + col.name).textContent = "finished: " + c.finish_reason;
}

async function runColumn(col, body) {
  $("text-" + col.name).innerHTML = "";
  $("plot-" + col.name).innerHTML = "";
  $("status-" + col.name).textContent = "generating…";
  const resp = await fetch("/v1/completions", { method: "POST", headers: headers(), body: JSON.stringify(body) });
  if (!resp.ok) {
    const message = await apiError(resp);
    $("status-" + col.name).textContent = "error";
    throw new Error(message);
  }
  await readStream(resp, col);
  $("text-" + col.name).dataset.text = col.text;
  $("col-" + col.name).dataset.done = String(state.runs);
}

async function generate() {
  clearError();
  state.key = $("api-key").value;
  state.runs += 1;
  document.body.dataset.runs = String(state.runs);
  const monitor = $("monitor").value;
  const base = {
    prompt: $("prompt").value,
    max_tokens: Number($("max-tokens").value),
    temperature: Number($("temperature").value),
    seed: Number($("seed").value),
    stream: true,
  };
  if (monitor) base.monitors = [monitor];
  const plan = $("plan").value;
  const steered = Object.assign({}, base);
  if (plan) steered.steering = [{ plan: plan, strength: Number($("strength").value) }];
  const cols = ["unsteered", "steered"].map((name) => ({ name, monitor, text: "", readings: [] }));
  state.cols = cols;
  const results = await Promise.allSettled([runColumn(cols[0], base), runColumn(cols[1], steered)]);
  const failed = results.filter((r) => r.status === "rejected").map((r) => r.reason.message);
  if (failed.length) {
    showError([...new Set(failed)].join("\n"));
    document.body.dataset.failed = String(state.runs);
  }
}

$("key-form").addEventListener("submit", connect);
$("plan").addEventListener("change", showPlan);
$("strength").addEventListener("input", () => { $("strength-value").textContent = $("strength").value; });
$("generate").addEventListener("click", () => { generate().catch((e) => showError(String(e))); });
