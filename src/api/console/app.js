// facehub admin console: plain DOM, no build step. Text always goes in
// through textContent, never innerHTML; photos come from the session-only
// /admin/api/files endpoint as blobs.
"use strict";

let csrf = null;
const main = () => document.getElementById("main");

// Each route() is a generation. An answer that arrives after the user
// (or a script) moved on belongs to a view no longer shown: it must not
// render over the current one, so api() drops it by throwing Stale.
let routeGen = 0;
class Stale extends Error {}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined && v !== false) e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

async function api(method, path, body, contentType) {
  const gen = routeGen;
  const headers = {};
  if (csrf) headers["X-CSRF-Token"] = csrf;
  let payload;
  if (body !== undefined) {
    headers["Content-Type"] = contentType || "application/json";
    payload = contentType ? body : JSON.stringify(body);
  }
  const r = await fetch(path, { method, headers, body: payload, credentials: "same-origin" });
  const v = await r.json().catch(() => ({ code: -1, msg: `HTTP ${r.status}` }));
  if (gen !== routeGen) throw new Stale("left this view");
  if (r.status === 401) { showLogin(); throw new Error(v.msg); }
  if (v.code !== 0) throw new Error(v.msg || `HTTP ${r.status}`);
  return v.data;
}

async function photoUrl(fileId) {
  const r = await fetch(`/admin/api/files/${encodeURIComponent(fileId)}`, { credentials: "same-origin" });
  if (!r.ok) throw new Error(`photo ${fileId}: HTTP ${r.status}`);
  return URL.createObjectURL(await r.blob());
}

function fmtTime(s) { return s ? new Date(s * 1000).toISOString().replace(".000", "") : "–"; }

// ---------------------------------------------------------------- login

function showLogin() {
  csrf = null;
  document.getElementById("nav").hidden = true;
  document.getElementById("logout").hidden = true;
  // The form already shown (the page's own, while the session check
  // answers) stays: replacing it would drop a password being typed.
  if (document.getElementById("login-form")) return;
  const form = el("form", { id: "login-form" },
    el("h2", {}, "Administrator login"),
    el("label", {}, "Password ", el("input", { id: "password", type: "password", autocomplete: "current-password", required: true })),
    el("button", { id: "login", type: "submit" }, "Log in"),
    el("p", { id: "login-error", class: "error", role: "alert" }));
  form.addEventListener("submit", login);
  main().replaceChildren(form);
}

async function login(ev) {
  ev.preventDefault();
  const password = document.getElementById("password").value;
  try {
    const d = await api("POST", "/admin/api/login", { password });
    csrf = d.csrf;
    route();
  } catch (e) {
    document.getElementById("login-error").textContent = "Login failed: " + e.message;
  }
}

async function logout() {
  try { await api("POST", "/admin/api/logout", {}); } catch (_) { /* gone anyway */ }
  location.hash = "";
  showLogin();
}

// ---------------------------------------------------------------- routing

function nav(tenant, current) {
  const n = document.getElementById("nav");
  const links = [["#/", "Tenants"]];
  if (tenant) {
    const t = encodeURIComponent(tenant);
    links.push([`#/t/${t}/people`, `People (${tenant})`], [`#/t/${t}/devices`, "Devices"],
      [`#/t/${t}/apps`, "Apps"], [`#/t/${t}/audit`, "Audit log"]);
  }
  n.replaceChildren(...links.map(([h, label]) => el("a", { href: h, class: h === current ? "active" : null }, label)));
  n.hidden = false;
  document.getElementById("logout").hidden = false;
}

async function route() {
  const gen = ++routeGen;
  if (!csrf) {
    try { csrf = (await api("GET", "/admin/api/session")).csrf; } catch (_) { return; }
  }
  if (gen !== routeGen) return;
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  try {
    if (parts[0] === "t" && parts[1]) {
      const tenant = parts[1];
      nav(tenant, location.hash);
      switch (parts[2]) {
        case "devices": return await devicesView(tenant);
        case "apps": return await appsView(tenant);
        case "audit": return await auditView(tenant);
        case "person": return await personView(tenant, parts[3]);
        default: return await peopleView(tenant);
      }
    }
    nav(null, "#/");
    await tenantsView();
  } catch (e) {
    if (e instanceof Stale) return;
    main().replaceChildren(el("p", { class: "error", role: "alert" }, e.message));
  }
}

// ---------------------------------------------------------------- views

async function tenantsView() {
  const d = await api("GET", "/admin/api/tenants");
  const name = el("input", { id: "tenant-name", placeholder: "new tenant name", required: true });
  const status = el("span", { role: "status" });
  const form = el("form", { class: "inline" }, name, el("button", { type: "submit" }, "Create tenant"), status);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try { await api("POST", "/admin/api/tenants", { name: name.value }); route(); }
    catch (e) { status.textContent = e.message; status.className = "error"; }
  });
  main().replaceChildren(el("h2", {}, "Tenants"), form,
    el("table", {}, el("tr", {}, el("th", {}, "Name"), el("th", {}, "tenant_key"), el("th", {}, "Apps")),
      d.items.map((t) => el("tr", { class: "clickable", onclick: () => { location.hash = `#/t/${encodeURIComponent(t.name)}/people`; } },
        el("td", {}, t.name), el("td", {}, el("code", {}, t.tenant_key)), el("td", {}, t.apps)))));
}

async function peopleView(tenant) {
  const t = encodeURIComponent(tenant);
  const search = el("input", { id: "search", type: "search", placeholder: "user_id, name or employee no." });
  const table = el("table", { id: "people" });
  const load = async () => {
    const d = await api("GET", `/admin/api/tenants/${t}/people?q=${encodeURIComponent(search.value)}`);
    table.replaceChildren(el("tr", {}, el("th", {}, "user_id"), el("th", {}, "Name"), el("th", {}, "Employee no.")),
      ...d.items.map((p) => el("tr", { class: "clickable", "data-user-id": p.user_id,
        onclick: () => { location.hash = `#/t/${t}/person/${encodeURIComponent(p.user_id)}`; } },
      el("td", {}, p.user_id), el("td", {}, p.name), el("td", {}, p.employee_no || ""))));
    count.textContent = `${d.total} people`;
  };
  const count = el("span", { id: "people-count" });
  search.addEventListener("input", () => load());

  const file = el("input", { id: "csv", type: "file", accept: ".csv,text/csv" });
  const bar = el("progress", { id: "import-progress", max: 1, value: 0 });
  const status = el("span", { id: "import-status", role: "status" });
  const form = el("form", { class: "inline" }, el("strong", {}, "Import CSV"), file,
    el("button", { id: "import", type: "submit" }, "Import"), bar, status);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!file.files[0]) return;
    const lines = (await file.files[0].text()).split(/\r?\n/);
    const header = lines.shift();
    const rows = lines.filter((l) => l.trim() !== "");
    const totals = { created: 0, updated: 0, unchanged: 0, rejected: [] };
    bar.max = rows.length || 1;
    const slice = 100;
    try {
      for (let i = 0; i < rows.length; i += slice) {
        const part = rows.slice(i, i + slice);
        const r = await api("POST", `/admin/api/tenants/${t}/people/import`, [header, ...part].join("\n") + "\n", "text/csv");
        totals.created += r.created; totals.updated += r.updated; totals.unchanged += r.unchanged;
        totals.rejected.push(...r.rejected.map((x) => ({ line: x.line + i, reason: x.reason })));
        bar.value = i + part.length;
        status.textContent = `imported ${i + part.length} of ${rows.length} rows`;
      }
      status.textContent = `imported ${rows.length} of ${rows.length} rows: ${totals.created} created, ` +
        `${totals.updated} updated, ${totals.unchanged} unchanged, ${totals.rejected.length} rejected`;
      status.className = totals.rejected.length ? "error" : "ok";
      await load();
    } catch (e) { status.textContent = e.message; status.className = "error"; }
  });
  main().replaceChildren(el("h2", {}, `People of ${tenant}`), form, el("p", {}, search, " ", count), table);
  await load();
}

async function personView(tenant, userId) {
  const t = encodeURIComponent(tenant);
  const p = await api("GET", `/admin/api/tenants/${t}/people/${encodeURIComponent(userId)}`);
  const photos = el("div", { class: "photos" });
  const view = el("section", { id: "person" },
    el("h2", {}, `${p.name} (${p.user_id})`),
    el("p", {}, `employee no. ${p.employee_no || "–"} · user_type ${p.user_type} · union_id `, el("code", {}, p.union_id)),
    photos);
  main().replaceChildren(view);
  if (p.attendance) {
    const img = el("img", { id: "attendance-photo", alt: "attendance photo" });
    photos.append(el("figure", {}, img, el("figcaption", {}, "Attendance photo")));
    img.src = await photoUrl(p.attendance.face_key);
  }
  if (p.acs && p.acs.face_file_id) {
    const canvas = el("canvas", { id: "face-canvas" });
    const crop = el("img", { id: "crop-img", alt: "door-access crop" });
    photos.append(el("figure", {}, canvas, el("figcaption", {}, "Door-access original, detected face")),
      el("figure", {}, crop, el("figcaption", {}, "Door-access crop")));
    const original = new Image();
    original.src = await photoUrl(p.acs.face_file_id);
    await original.decode();
    canvas.width = original.naturalWidth; canvas.height = original.naturalHeight;
    const g = canvas.getContext("2d");
    g.drawImage(original, 0, 0);
    const b = p.acs.face_box;
    if (b) {
      g.strokeStyle = "#00ff00";
      g.lineWidth = Math.max(2, Math.round(canvas.width / 200));
      g.strokeRect(b.x, b.y, b.w, b.h);
      canvas.dataset.box = JSON.stringify([b.x, b.y, b.w, b.h]);
    }
    crop.src = await photoUrl(p.acs.crop_file_id);
    await crop.decode();
  } else {
    photos.append(el("p", {}, "No door-access face."));
  }
  view.append(el("h3", {}, "Template slots"),
    p.templates.length
      ? el("table", { id: "templates" }, el("tr", {}, el("th", {}, "Modality"), el("th", {}, "Algorithm"), el("th", {}, "Slot"), el("th", {}, "Updated")),
        p.templates.map((s) => el("tr", {}, el("td", {}, s.modality), el("td", {}, s.algorithm), el("td", {}, s.slot), el("td", {}, fmtTime(s.updated_at)))))
      : el("p", {}, "No templates."));
  view.dataset.ready = "1";
}

async function devicesView(tenant) {
  const d = await api("GET", `/admin/api/tenants/${encodeURIComponent(tenant)}/devices`);
  main().replaceChildren(el("h2", {}, `Terminals (address book version ${d.perm_version})`),
    el("table", { id: "devices" }, el("tr", {}, ["sn", "State", "Bound", "Last seen", "Face algorithms", "Fingerprint algorithms", "Sync backlog"].map((h) => el("th", {}, h))),
      d.items.map((x) => el("tr", {}, el("td", {}, x.sn),
        el("td", {}, el("span", { class: `badge ${x.online ? "online" : "offline"}` }, x.online ? "online" : "offline")),
        el("td", {}, x.bound ? "yes" : "no"), el("td", {}, fmtTime(x.last_seen)),
        el("td", {}, x.fa_algorithms.join(", ")), el("td", {}, x.fp_algorithms.join(", ")), el("td", {}, x.backlog)))));
}

async function appsView(tenant) {
  const t = encodeURIComponent(tenant);
  const d = await api("GET", `/admin/api/tenants/${t}/apps`);
  const secret = el("p", { id: "secret", role: "status" });
  const boxes = d.known_scopes.map((s) => el("label", {}, el("input", { type: "checkbox", value: s }), s));
  const form = el("form", { class: "inline" }, boxes, el("button", { type: "submit" }, "Create app"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const scopes = boxes.map((b) => b.firstChild).filter((c) => c.checked).map((c) => c.value);
    try {
      const r = await api("POST", `/admin/api/tenants/${t}/apps`, { scopes });
      await appsView(tenant);
      document.getElementById("secret").textContent = `${r.app.app_id}: app_secret ${r.app_secret} (shown once)`;
    } catch (e) { secret.textContent = e.message; secret.className = "error"; }
  });
  const rotate = async (appId) => {
    if (!confirm(`Rotate the secret of ${appId}? Its tokens stop working.`)) return;
    const r = await api("POST", `/admin/api/apps/${encodeURIComponent(appId)}/secret`, {});
    secret.textContent = `${appId}: new app_secret ${r.app_secret} (shown once)`;
  };
  const editScopes = async (app) => {
    const v = prompt("Scopes, separated by spaces", app.scopes.join(" "));
    if (v === null) return;
    await api("PUT", `/admin/api/apps/${encodeURIComponent(app.app_id)}/scopes`, { scopes: v.split(/\s+/).filter(Boolean) });
    await appsView(tenant);
  };
  main().replaceChildren(el("h2", {}, `Apps of ${tenant}`), form, secret,
    el("table", {}, el("tr", {}, el("th", {}, "app_id"), el("th", {}, "Scopes"), el("th", {}, "")),
      d.items.map((a) => el("tr", {}, el("td", {}, el("code", {}, a.app_id)), el("td", {}, a.scopes.join(" ")),
        el("td", {}, el("button", { onclick: () => rotate(a.app_id) }, "Rotate secret"), " ",
          el("button", { onclick: () => editScopes(a) }, "Edit scopes"))))));
}

async function auditView(tenant) {
  const t = encodeURIComponent(tenant);
  const who = el("input", { placeholder: "user_id" });
  const table = el("table", { id: "audit" });
  const load = async () => {
    const d = await api("GET", `/admin/api/tenants/${t}/audit?user_id=${encodeURIComponent(who.value)}`);
    table.replaceChildren(el("tr", {}, ["When", "Who", "Action", "Whom", "What", "Result"].map((h) => el("th", {}, h))),
      ...d.items.map((r) => el("tr", {}, el("td", {}, new Date(r.at_ms).toISOString()), el("td", {}, `${r.actor_kind}:${r.actor}`),
        el("td", {}, r.action), el("td", {}, r.subject || ""), el("td", {}, r.object || ""), el("td", {}, r.result))));
  };
  who.addEventListener("change", load);
  main().replaceChildren(el("h2", {}, "Audit log"), el("p", {}, who), table);
  await load();
}

window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", () => {
  document.getElementById("logout").addEventListener("click", logout);
  document.getElementById("login-form").addEventListener("submit", login);
  route();
});
