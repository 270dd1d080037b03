// The vmrm dashboard: one page over the controller's /api calls. Everything shown is set as
// text (never as HTML), so nothing a VM or an event is named can run in the page.
"use strict";

const $ = (sel) => document.querySelector(sel);
const state = { me: null, tree: null, drawn: "", selected: null, shown: "", refreshing: false, again: false };

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else if (k === "onclick") e.addEventListener("click", v);
    else e[k] = v;
  }
  for (const c of children) e.append(c);
  return e;
}

async function call(method, path, body) {
  const opts = { method, credentials: "same-origin", headers: {} };
  if (body !== undefined) {
    opts.headers["content-type"] = "application/json";
    opts.headers["x-vmrm-action"] = "1";
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(path, opts);
  const text = await r.text();
  const data = text ? JSON.parse(text) : {};
  if (!r.ok) {
    const err = new Error(data.error || r.statusText);
    err.status = r.status;
    err.code = data.code;
    throw err;
  }
  return data;
}

// ---- login: the key signs a one-time challenge in the page ----

function pemBody(pem) {
  const b64 = pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

const hex = (buf) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("");

async function login() {
  $("#login-error").textContent = "";
  try {
    const certFile = $("#cert-file").files[0], keyFile = $("#key-file").files[0];
    if (!certFile || !keyFile) throw new Error("choose your certificate and your key");
    const [certificate, keyPem] = [await certFile.text(), await keyFile.text()];
    if (!window.crypto || !crypto.subtle) throw new Error("this page needs a secure context (https)");
    const key = await crypto.subtle.importKey("pkcs8", pemBody(keyPem), { name: "ECDSA", namedCurve: "P-256" }, false, ["sign"]);
    const { challenge } = await call("GET", "/login/challenge");
    const signed = new TextEncoder().encode("vmrm-dashboard-login:" + challenge);
    const signature = hex(await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, key, signed));
    const r = await fetch("/login", {
      method: "POST", credentials: "same-origin",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ certificate, challenge, signature }),
    });
    const data = await r.json();
    if (!r.ok) throw new Error(data.error || r.statusText);
    start(data);
  } catch (e) {
    $("#login-error").textContent = e.message;
  }
}

async function logout() {
  await fetch("/logout", { method: "POST", credentials: "same-origin" });
  location.reload();
}

// ---- who may do what (the controller decides; the page only hides what would be refused) ----

const isAdmin = () => state.me.roles.includes("admin");
const mayActOn = (vm) => isAdmin() || (state.me.roles.includes("operator") && state.me.vms.includes(vm));
const mayAck = () => isAdmin() || state.me.roles.includes("operator");

// ---- the tree ----

function vmClass(vm, hostsByName) {
  if (!vm.managed) return "state-unmanaged";
  if (vm.vm_status === "RESTART_IN_PROGRESS") return "state-restart";
  if (vm.vm_status === "LPM_IN_PROGRESS") return "state-lpm";
  if (vm.state === "RESTART_FAILED") return "state-failed";
  const host = hostsByName[vm.host];
  if (host && host.state !== "OPERATING" && host.state !== "UNSPECIFIED") return "state-restart";
  return "state-ok";
}

function renderTree() {
  const t = state.tree;
  // Redrawn only when something changed (or the selection did).
  const drawn = JSON.stringify([t, state.selected]);
  if (drawn === state.drawn) return;
  state.drawn = drawn;
  const hostsByName = Object.fromEntries(t.hosts.map((h) => [h.name, h]));
  const vmsByHost = {};
  for (const vm of t.vms) (vmsByHost[vm.host] ||= []).push(vm);
  const grouped = new Set();
  const root = $("#topology");
  root.replaceChildren();
  const hostItem = (name) => {
    grouped.add(name);
    const h = hostsByName[name] || { name, state: "UNSPECIFIED" };
    const down = h.state !== "OPERATING" && h.state !== "UNSPECIFIED";
    const vms = el("ul");
    for (const vm of (vmsByHost[name] || []).sort((a, b) => a.name.localeCompare(b.name))) {
      const cls = vmClass(vm, hostsByName);
      const item = el("span", { class: "vm " + cls, "data-vm": vm.name, "data-host": vm.host, "data-state": cls,
        onclick: (e) => { e.stopPropagation(); select("vm", vm.name); } }, vm.name);
      if (state.selected && state.selected.kind === "vm" && state.selected.name === vm.name) item.classList.add("selected");
      vms.append(el("li", {}, item));
    }
    return el("li", { class: "host" + (down ? " down" : ""), "data-host": name },
      el("span", { class: "label", onclick: () => select("host", name) }, `${name} (${h.state.toLowerCase()})`), vms);
  };
  for (const g of t.host_groups) {
    const hosts = el("ul");
    for (const h of g.hosts) hosts.append(hostItem(h));
    root.append(el("li", { class: "group", "data-group": g.name },
      el("span", { class: "label", onclick: () => select("host_group", g.name) }, `Host group ${g.name}`), hosts));
  }
  const others = t.hosts.filter((h) => !grouped.has(h.name));
  if (others.length) {
    const hosts = el("ul");
    for (const h of others) hosts.append(hostItem(h.name));
    root.append(el("li", { class: "group" }, el("span", { class: "label" }, "Not in a host group"), hosts));
  }
}

// ---- details and actions ----

function dl(pairs) {
  const d = el("dl");
  for (const [k, v] of pairs) d.append(el("dt", {}, k), el("dd", {}, String(v)));
  return d;
}

function actionButton(label, action, run) {
  return el("button", { class: "action", "data-action": action, onclick: run }, label);
}

async function act(what, path, body) {
  if (!confirm(`${what}?`)) return;
  const result = $("#result");
  result.className = "";
  result.textContent = `${what} …`;
  try {
    const r = await call("POST", path, body);
    result.textContent = r.lines.join("\n") || `${what}: done`;
  } catch (e) {
    result.className = "error";
    result.textContent = `${what}: ${e.message}`;
  }
  refresh();
}

function select(kind, name) {
  state.selected = { kind, name };
  $("#result").textContent = "";
  renderDetails();
  renderTree();
}

function policyForm(level, name, current) {
  const form = el("div", { class: "actions" });
  if (level === "host_group") {
    const sel = el("select", { id: "restart-policy" },
      el("option", { value: "auto" }, "auto"), el("option", { value: "advisory_mode" }, "advisory_mode"));
    sel.value = current.restart_policy === "ADVISORY_MODE" ? "advisory_mode" : "auto";
    form.append(el("label", {}, "Restart policy ", sel),
      actionButton("Apply", "policy", () => act(`Set host group ${name} restart policy to ${sel.value}`, "/api/policy",
        { level, name, restart_policy: sel.value })));
  } else {
    const sel = el("select", { id: "priority" },
      el("option", { value: "high" }, "high"), el("option", { value: "medium" }, "medium"), el("option", { value: "low" }, "low"));
    sel.value = (current.priority || "MEDIUM").toLowerCase();
    form.append(el("label", {}, "Priority ", sel),
      actionButton("Apply", "policy", () => act(`Set VM ${name} priority to ${sel.value}`, "/api/policy",
        { level, name, priority: sel.value })));
  }
  const monitor = !current.ha_monitor;
  form.append(actionButton(monitor ? "Enable HA monitoring" : "Disable HA monitoring", "ha-monitor",
    () => act(`${monitor ? "Enable" : "Disable"} HA monitoring of ${name}`, "/api/policy", { level, name, ha_monitor: monitor })));
  return form;
}

function selectedItem() {
  const sel = state.selected, t = state.tree;
  const list = { vm: t.vms, host: t.hosts, host_group: t.host_groups }[sel.kind];
  return list.find((x) => x.name === sel.name) || null;
}

function renderDetails() {
  const box = $("#details");
  const sel = state.selected, t = state.tree;
  if (!sel || !t) return;
  // Redrawn only when the selected object changed: a choice being made in its form stays.
  const shown = JSON.stringify([sel, selectedItem()]);
  if (shown === state.shown) return;
  state.shown = shown;
  box.replaceChildren();
  if (sel.kind === "vm") {
    const vm = t.vms.find((v) => v.name === sel.name);
    if (!vm) return box.append(el("p", {}, `VM ${sel.name} is gone.`));
    box.append(el("h3", {}, `VM ${vm.name}`), dl([
      ["Host", vm.host], ["Home host", vm.homehost], ["State", vm.state], ["Status", vm.vm_status],
      ["LPAR state", vm.lpar_state], ["Managed", vm.managed], ["Priority", vm.priority], ["HA monitoring", vm.ha_monitor],
      ["CPU / memory", `${vm.cpu} / ${vm.memory_mb} MB`], ["Lock epoch", vm.epoch],
      ["Last restart", vm.restart ? `to ${vm.restart.target} (${vm.restart.phase.toLowerCase()}, task ${vm.restart.task})` : "never"],
    ]));
    if (mayActOn(vm.name)) {
      const group = t.host_groups.find((g) => g.hosts.includes(vm.host));
      const targets = el("select", { id: "target" }, el("option", { value: "" }, "best host"));
      for (const h of (group ? group.hosts : []).filter((h) => h !== vm.host)) targets.append(el("option", { value: h }, h));
      box.append(el("div", { class: "actions" },
        el("label", {}, "Target ", targets),
        actionButton("Restart", "restart", () => act(`Restart VM ${vm.name}`, "/api/restart", { vm: vm.name, host: targets.value })),
        actionButton("Live migrate", "lpm", () => act(`Live-migrate VM ${vm.name}`, "/api/lpm", { vm: vm.name, host: targets.value }))));
    }
    if (isAdmin()) box.append(policyForm("vm", vm.name, vm));
  } else if (sel.kind === "host") {
    const h = t.hosts.find((x) => x.name === sel.name);
    if (!h) return box.append(el("p", {}, `Host ${sel.name} is gone.`));
    box.append(el("h3", {}, `Host ${h.name}`), dl([
      ["State", h.state], ["Host group", h.host_group || "none"], ["VIOS", h.vios.join(", ")], ["HMCs", h.hmcs.join(", ")],
      ["CPU used / total", `${h.cpu_used} / ${h.cpu_total}`], ["Memory used / total", `${h.memory_used_mb} / ${h.memory_total_mb} MB`],
      ["HA monitoring", h.ha_monitor],
    ]));
    if (isAdmin()) {
      box.append(el("div", { class: "actions" },
        actionButton("Evacuate (LPM host)", "evacuate", () => act(`Move every VM off host ${h.name}`, "/api/evacuate", { host: h.name })),
        actionButton("Restore VMs to this home", "restore", () => act(`Bring the VMs whose home is ${h.name} back`, "/api/restore", { host: h.name }))));
    }
  } else {
    const g = t.host_groups.find((x) => x.name === sel.name);
    if (!g) return box.append(el("p", {}, `Host group ${sel.name} is gone.`));
    box.append(el("h3", {}, `Host group ${g.name}`), dl([
      ["Hosts", g.hosts.join(", ")], ["Restart policy", g.restart_policy], ["HA monitoring", g.ha_monitor],
      ["Host failure detection", `${g.host_failure_detection_time_ms / 1000} s`], ["VM failure detection", g.vm_failure_detection_speed],
      ["Discovered", g.discovered], ["Memory capacity (high/medium/low)", g.memory_capacity.join(" / ")],
      ["CPU capacity (high/medium/low)", g.cpu_capacity.join(" / ")],
    ]));
    if (isAdmin()) box.append(policyForm("host_group", g.name, g));
  }
}

// ---- events ----

async function loadEvents() {
  const q = new URLSearchParams({ severity: $("#severity").value, unacknowledged: $("#unacknowledged").checked });
  const list = await call("GET", "/api/events?" + q);
  const body = $("#events tbody");
  body.replaceChildren();
  for (const e of list.events.slice().reverse()) {
    const ack = e.acknowledged ? "yes" : mayAck()
      ? actionButton("Ack", "ack", async () => { await call("POST", "/api/ack", { sequence: e.sequence }); loadEvents(); })
      : "no";
    body.append(el("tr", { class: "sev-" + e.severity, "data-seq": e.sequence },
      el("td", {}, String(e.sequence)), el("td", {}, new Date(Number(e.at_ms)).toISOString().replace("T", " ").slice(0, 19)),
      el("td", {}, e.severity), el("td", {}, e.name), el("td", {}, e.subject), el("td", {}, e.message), el("td", {}, ack)));
  }
}

// ---- refresh and live updates ----

function banner(text) {
  $("#banner").hidden = !text;
  $("#banner").textContent = text || "";
}

async function refresh() {
  if (state.refreshing) { state.again = true; return; }
  state.refreshing = true;
  try {
    state.tree = await call("GET", "/api/topology");
    renderTree();
    renderDetails();
    await loadEvents();
  } catch (e) {
    if (e.status === 401) return location.reload();
    banner(`The controller does not answer: ${e.message}`);
  } finally {
    state.refreshing = false;
    if (state.again) { state.again = false; refresh(); }
  }
}

function live() {
  const source = new EventSource("/api/live");
  const activity = $("#activity");
  source.addEventListener("event", () => refresh());
  source.addEventListener("status", (m) => {
    const step = JSON.parse(m.data);
    if (step.code === "MONITORING_ACTIVITY") return; // ksysmgr's "Press Ctrl-C" line
    activity.append(el("li", {}, (step.nested ? "    " : "") + step.text));
    while (activity.children.length > 200) activity.firstChild.remove();
    activity.scrollTop = activity.scrollHeight;
    refresh();
  });
  source.addEventListener("standby", (m) => {
    const why = JSON.parse(m.data).error;
    banner(`${state.me.controller} is standby: ${why}. Queries come from its copy; actions need the active controller.`);
  });
  source.addEventListener("open", () => { if (state.me.active) banner(""); });
}

function start(me) {
  state.me = me;
  $("#login").hidden = true;
  $("#app").hidden = false;
  $("#logout").hidden = false;
  $("#user").textContent = `${me.name} (${me.roles.join(", ")})`;
  $("#where").textContent = `controller ${me.controller}${me.active ? " (active)" : " (standby)"}`;
  if (!me.active) banner(`${me.controller} is standby; the active controller is ${me.active_controller || "not elected yet"}. Actions go to the active one.`);
  $("#ack-all").hidden = !mayAck();
  refresh();
  live();
  setInterval(refresh, 2000);
}

document.addEventListener("DOMContentLoaded", async () => {
  $("#login-button").addEventListener("click", login);
  $("#logout").addEventListener("click", logout);
  $("#severity").addEventListener("change", loadEvents);
  $("#unacknowledged").addEventListener("change", loadEvents);
  $("#ack-all").addEventListener("click", async () => {
    if (confirm("Acknowledge every event?")) { await call("POST", "/api/ack", { all: true }); loadEvents(); }
  });
  try {
    start(await call("GET", "/api/whoami"));
  } catch (e) {
    $("#login").hidden = false;
  }
});
