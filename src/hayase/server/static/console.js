// hayase web console: plain JS, no build step. Talks to the server's REST API
// (/ksql, /query-stream) and to /console/api/overview for the sidebar and query metrics.
"use strict";

const $ = (id) => document.getElementById(id);
let running = null;  // AbortController of the query being shown
const history = {};  // query id -> {last: consumed, t: ms, rate: [], lag: []}
const HISTORY = 60;

function el(tag, text) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  return e;
}

function cell(v) {
  if (v === null || v === undefined) return "null";
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

function setStatus(text) { $("status").textContent = text; }

function resultTable(columns) {
  const table = el("table");
  table.id = "rows";
  const head = el("tr");
  for (const c of columns) head.appendChild(el("th", c));
  const thead = el("thead");
  thead.appendChild(head);
  table.appendChild(thead);
  table.appendChild(el("tbody"));
  $("result").replaceChildren(table);
  return table.tBodies[0];
}

function addRow(body, values) {
  const tr = el("tr");
  for (const v of values) tr.appendChild(el("td", cell(v)));
  body.appendChild(tr);
}

function showError(message) {
  const p = el("p", message);
  p.className = "error";
  $("result").replaceChildren(p);
}

async function runStatement(sql) {
  const res = await fetch("/ksql", {
    method: "POST",
    headers: {"Content-Type": "application/json", "Accept": "application/vnd.ksql.v1+json"},
    body: JSON.stringify({ksql: sql, streamsProperties: {}}),
  });
  const body = await res.json();
  if (!res.ok) { showError(body.message); setStatus("error"); return; }
  const pre = el("pre", JSON.stringify(body, null, 2));
  $("result").replaceChildren(pre);
  setStatus("done");
  refresh();
}

// Rows of /query-stream (delimited JSON lines) appear as they arrive.
async function runQuery(sql) {
  running = new AbortController();
  $("stop").disabled = false;
  setStatus("running");
  let count = 0;
  try {
    const res = await fetch("/query-stream", {
      method: "POST",
      headers: {"Content-Type": "application/json",
                "Accept": "application/vnd.ksqlapi.delimited.v1"},
      body: JSON.stringify({sql: sql, properties: {"auto.offset.reset": $("offset").value}}),
      signal: running.signal,
    });
    if (!res.ok) { showError((await res.json()).message); setStatus("error"); return; }
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buf = "";
    let body = null;
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      buf += decoder.decode(value, {stream: true});
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line) continue;
        const item = JSON.parse(line);
        if (body === null) { body = resultTable(item.columnNames || []); continue; }
        if (Array.isArray(item)) { addRow(body, item); count += 1; setStatus(count + " rows"); }
        else if (item.message) { showError(item.message); }
      }
    }
    setStatus(count + " rows, query ended");
  } catch (e) {
    if (e.name === "AbortError") setStatus(count + " rows, stopped");
    else { showError(String(e)); setStatus("error"); }
  } finally {
    running = null;
    $("stop").disabled = true;
  }
}

function run() {
  const sql = $("sql").value.trim();
  if (!sql) return;
  if (running) running.abort();
  if (/^select\b/i.test(sql)) runQuery(sql); else runStatement(sql);
}

function sparkline(values, color) {
  const c = el("canvas");
  c.className = "spark";
  c.width = 120; c.height = 24;
  const ctx = c.getContext("2d");
  const max = Math.max(1, ...values);
  ctx.strokeStyle = color;
  ctx.beginPath();
  values.forEach((v, i) => {
    const x = (i / Math.max(1, HISTORY - 1)) * c.width;
    const y = c.height - 2 - (v / max) * (c.height - 4);
    if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
  });
  ctx.stroke();
  return c;
}

function list(id, names) {
  const ul = $(id);
  ul.replaceChildren(...names.map((n) => {
    const li = el("li", n);
    li.onclick = () => { $("sql").value = "SELECT * FROM " + n + " EMIT CHANGES;"; };
    return li;
  }));
}

async function refresh() {
  let data;
  try {
    data = await (await fetch("/console/api/overview")).json();
  } catch (e) { return; }
  list("streams", data.sources.filter((s) => s.type === "STREAM").map((s) => s.name));
  list("tables", data.sources.filter((s) => s.type === "TABLE").map((s) => s.name));
  $("topics").replaceChildren(...data.topics.map((t) => el("li", t.name + " (" + t.partitions + ")")));
  const now = Date.now();
  const tbody = $("queries").tBodies[0];
  tbody.replaceChildren();
  for (const q of data.queries) {
    const stats = q.stats || {};
    const h = history[q.id] || (history[q.id] = {last: stats.consumed || 0, t: now, rate: [], lag: []});
    const dt = Math.max(0.001, (now - h.t) / 1000);
    const consumed = stats.consumed !== undefined ? stats.consumed : (q.rows || 0);
    h.rate.push(Math.max(0, (consumed - h.last) / dt));
    h.lag.push(Math.max(0, stats.lag || 0));
    if (h.rate.length > HISTORY) { h.rate.shift(); h.lag.shift(); }
    h.last = consumed; h.t = now;
    const tr = el("tr");
    tr.dataset.queryId = q.id;
    for (const v of [q.id, q.queryType, q.state, (q.sinks || []).join(",")]) tr.appendChild(el("td", v));
    const rate = el("td");
    rate.append(sparkline(h.rate, "#1d3557"), " " + h.rate[h.rate.length - 1].toFixed(1));
    const lag = el("td");
    lag.append(sparkline(h.lag, "#e63946"), " " + (stats.lag === undefined ? "-" : stats.lag));
    tr.append(rate, lag);
    tbody.appendChild(tr);
  }
}

async function info() {
  try {
    const i = (await (await fetch("/info")).json()).KsqlServerInfo;
    $("server-info").textContent = "service " + i.ksqlServiceId + " · " + i.version;
  } catch (e) { /* the sidebar refresh reports nothing either */ }
}

$("run").onclick = run;
$("stop").onclick = () => { if (running) running.abort(); };
$("sql").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) run();
});
info();
refresh();
setInterval(refresh, 2000);
