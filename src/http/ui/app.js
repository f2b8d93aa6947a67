// Switchboard dashboard: polls the management API and renders it.
// No framework: plain DOM calls, text set with textContent (names are data).
"use strict";

const REFRESH_MS = 2000;
const API = location.origin; // never the URL's user:password, which fetch refuses

async function api(path, opts) {
  const r = await fetch(API + path, Object.assign({ credentials: "same-origin" }, opts || {}));
  if (!r.ok) throw new Error(path + ": " + r.status);
  return r.json();
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : String(c));
  return e;
}

function num(n) {
  return (n || 0).toLocaleString("en-US");
}

function rate(stats, key) {
  const d = stats && stats[key + "_details"];
  return d ? d.rate : 0;
}

function fmtRate(r) {
  return r >= 100 ? Math.round(r).toLocaleString("en-US") : (Math.round(r * 10) / 10).toString();
}

function card(label, value, id) {
  return el("div", { class: "card", id: id }, el("div", { class: "value" }, value),
            el("div", { class: "label" }, label));
}

function setRows(tableId, rows) {
  const tbody = document.querySelector("#" + tableId + " tbody");
  tbody.replaceChildren(...rows);
}

function cell(v, cls) {
  return el("td", cls ? { class: cls } : {}, v);
}

function renderOverview(ov, nodes) {
  const t = ov.object_totals || {}, q = ov.queue_totals || {}, s = ov.message_stats || {};
  document.getElementById("node").textContent = ov.node + " · " + ov.product_name + " " + ov.product_version;
  document.getElementById("totals").replaceChildren(
    card("Connections", num(t.connections), "total-connections"),
    card("Channels", num(t.channels), "total-channels"),
    card("Queues", num(t.queues), "total-queues"),
    card("Consumers", num(t.consumers), "total-consumers"),
    card("Ready", num(q.messages_ready), "total-ready"),
    card("Unacked", num(q.messages_unacknowledged), "total-unacked"));
  document.getElementById("rates").replaceChildren(
    card("Publish", fmtRate(rate(s, "publish")), "rate-publish"),
    card("Confirm", fmtRate(rate(s, "confirm")), "rate-confirm"),
    card("Deliver / get", fmtRate(rate(s, "deliver_get")), "rate-deliver"),
    card("Ack", fmtRate(rate(s, "ack")), "rate-ack"),
    card("Redeliver", fmtRate(rate(s, "redeliver")), "rate-redeliver"),
    card("Returned", fmtRate(rate(s, "return_unroutable")), "rate-return"));
  const node = nodes[0] || {};
  const alarms = [];
  if (node.mem_alarm) alarms.push(el("span", { class: "alarm" }, "memory alarm"));
  if (node.disk_free_alarm) alarms.push(el("span", { class: "alarm" }, "disk alarm"));
  if (!alarms.length) alarms.push(el("span", { class: "ok" }, "no alarms"));
  document.getElementById("alarms").replaceChildren(...alarms);
}

function features(q) {
  const out = [];
  const a = q.arguments || {};
  if (q.durable) out.push("D");
  if (q.exclusive) out.push("Excl");
  if (q.auto_delete) out.push("AD");
  if ("x-dead-letter-exchange" in a) out.push("DLX");
  if ("x-message-ttl" in a) out.push("TTL");
  if ("x-retry-delays" in a) out.push("Retry");
  if ("x-max-length" in a) out.push("Lim");
  return out.map((f) => el("span", { class: "tag" }, f));
}

function renderQueues(queues) {
  setRows("queues", queues.map((q) => {
    const s = q.message_stats || {};
    const extra = q.switchboard || {};
    return el("tr", { "data-queue": q.name },
      cell(q.name), el("td", {}, ...features(q)),
      cell(num(q.messages_ready), "num ready"), cell(num(q.messages_unacknowledged), "num unacked"),
      cell(num(q.consumers), "num consumers"),
      cell(fmtRate(rate(s, "publish")), "num"), cell(fmtRate(rate(s, "deliver_get")), "num"),
      cell(fmtRate(rate(s, "ack")), "num"), cell(num(extra.dead_lettered), "num"));
  }));
}

// Dead-letter queues: the queues bound to some queue's dead-letter exchange
// (or named by its dead-letter routing key on the default exchange).
function deadLetterQueues(queues, bindings) {
  const dlx = new Map(); // exchange -> source queue names
  const byKey = new Map(); // queue named through the default exchange -> sources
  for (const q of queues) {
    const a = q.arguments || {};
    if (!("x-dead-letter-exchange" in a)) continue;
    const x = a["x-dead-letter-exchange"];
    if (x === "") {
      const target = a["x-dead-letter-routing-key"] || q.name;
      byKey.set(target, (byKey.get(target) || []).concat(q.name));
    } else {
      dlx.set(x, (dlx.get(x) || []).concat(q.name));
    }
  }
  const from = new Map();
  for (const b of bindings) {
    if (b.destination_type !== "queue" || !dlx.has(b.source)) continue;
    from.set(b.destination, new Set([...(from.get(b.destination) || []), ...dlx.get(b.source)]));
  }
  for (const [target, sources] of byKey)
    from.set(target, new Set([...(from.get(target) || []), ...sources]));
  return queues.filter((q) => from.has(q.name) && q.vhost === "/")
               .map((q) => ({ queue: q, sources: [...from.get(q.name)].sort() }));
}

async function replay(name) {
  const out = document.getElementById("replay-result");
  out.textContent = "Replaying " + name + " ...";
  try {
    const r = await api("/api/dlq/%2F/" + encodeURIComponent(name) + "/replay", { method: "POST" });
    out.textContent = "Replayed " + (r.replayed || 0) + " message(s) from " + name +
                      (r.left ? "; " + r.left + " left" : "") + ".";
  } catch (e) {
    out.textContent = "Replay of " + name + " failed: " + e.message;
  }
  refresh();
}

function renderDlqs(dlqs) {
  setRows("dlqs", dlqs.map(({ queue, sources }) =>
    el("tr", { "data-queue": queue.name },
       cell(queue.name), cell(num(queue.messages_ready), "num"), cell(sources.join(", ")),
       el("td", {}, el("button", { class: "replay", onclick: () => replay(queue.name),
                                   disabled: queue.messages_ready ? null : "" }, "Replay")))));
}

function renderConnections(conns) {
  setRows("connections", conns.map((c) => {
    const p = c.client_properties || {};
    return el("tr", { "data-connection": c.name },
      cell(c.user_provided_name ? c.user_provided_name + " (" + c.name + ")" : c.name),
      cell(c.user), cell([p.product, p.version].filter(Boolean).join(" ")), cell(c.state),
      cell(num(c.channels), "num"));
  }));
}

async function refresh() {
  try {
    const [ov, nodes, queues, bindings, conns] = await Promise.all([
      api("/api/overview"), api("/api/nodes"), api("/api/queues"), api("/api/bindings"),
      api("/api/connections")]);
    renderOverview(ov, nodes);
    renderQueues(queues);
    renderDlqs(deadLetterQueues(queues, bindings));
    renderConnections(conns);
    document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
    document.body.setAttribute("data-loaded", "true");
  } catch (e) {
    document.getElementById("updated").textContent = "error: " + e.message;
  }
}

refresh();
setInterval(refresh, REFRESH_MS);
