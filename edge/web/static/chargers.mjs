// Chargers, live; one charger in detail with the operations a technician sends.
import { useEffect, useRef, useState } from "./vendor/hooks.mjs";
import { Action, amps, api, html, when, whyWords } from "./lib.mjs";
import { Smart } from "./schedule.mjs";
import { SecurityMark } from "./security.mjs";

const siteEntry = (live, id) => (live.site && live.site.chargers ? live.site.chargers.find((c) => c.chargerId === id) : null);

function Connectors({ charger }) {
  return (charger.connectors || []).filter((k) => k.connectorId > 0 || charger.connectors.length === 1).map((k) => html`
    <span class=${`status ${k.status}`} data-testid=${`status-${charger.id}-${k.connectorId}`}>
      #${k.connectorId} ${k.status}${k.errorCode && k.errorCode !== "NoError" ? ` (${k.errorCode})` : ""}${k.transactionId ? ` tx ${k.transactionId}` : ""}</span>`);
}

export function Chargers({ live }) {
  const chargers = Object.values(live.chargers).sort((a, b) => a.id.localeCompare(b.id));
  if (!chargers.length) return html`<p class="muted" data-testid="no-chargers">No charger known yet.</p>`;
  return html`<div class="chargers" data-testid="chargers">${chargers.map((c) => {
    const s = siteEntry(live, c.id);
    const fault = (c.connectors || []).some((k) => k.status === "Faulted");
    const draw = s && s.drawnA ? Math.max(...s.drawnA) : null;
    return html`<a class=${`charger${c.connected ? " on" : ""}${fault ? " fault" : ""}`}
        href=${`#/chargers/${encodeURIComponent(c.id)}`} data-testid=${`charger-${c.id}`}>
      <div class="top"><strong>${c.id}</strong>
        <span class="muted">${c.connected ? "online" : `offline, seen ${when(c.lastSeen)}`}</span>
        <${SecurityMark} c=${c} />
        ${c.registration !== "Accepted" && html`<span class="status Faulted">${c.registration}</span>`}</div>
      <div><${Connectors} charger=${c} /></div>
      <div>${s ? html`draws ${amps(draw)} · allocated ${amps(s.allocationA)} · lease ${amps(s.leaseA)}${s.leaseExpires ? ` until ${when(s.leaseExpires).slice(11)}` : ""}` : html`<span class="muted">${c.vendor || ""} ${c.model || ""}</span>`}</div>
      <div class="why" data-testid=${`why-${c.id}`}>${s ? whyWords(s.limitedBy) : ""}</div>
    </a>`;
  })}</div>`;
}

const TRIGGERS = ["StatusNotification", "MeterValues", "Heartbeat", "BootNotification",
  "DiagnosticsStatusNotification", "FirmwareStatusNotification"];

function Configuration({ id, online }) {
  const [keys, setKeys] = useState(null);
  const [answer, setAnswer] = useState(null);
  const fetchKeys = async () => {
    const result = await api(`/api/chargers/${encodeURIComponent(id)}/ocpp/GetConfiguration`, { method: "POST", body: {} });
    setAnswer(result);
    if (result.status === 200) setKeys(result.data.response.configurationKey || []);
  };
  return html`<div data-testid="configuration">
    <button onClick=${fetchKeys} disabled=${!online}>Get configuration</button>
    ${answer && answer.status !== 200 && html`<div class="answer bad">${answer.status} ${JSON.stringify(answer.data)}</div>`}
    ${keys && html`<div class="scroll"><table><thead><tr><th>key</th><th>value</th><th></th></tr></thead><tbody>
      ${keys.map((k) => html`<tr><td>${k.key}</td><td>${k.value ?? "–"}</td><td>${k.readonly ? "read-only" : ""}</td></tr>`)}
    </tbody></table></div>`}
  </div>`;
}

// Approve or reject a charger that waits for it, and remove one from the registry (only
// while it is offline and charges nothing: the API answers 409 otherwise).
function Registration({ base, detail, charger, online, reload, deleting }) {
  const connected = Boolean(charger && charger.connected);
  const register = (registration) => () => api(base, { method: "PUT", body: { registration } });
  const remove = async () => {
    deleting.current = true;
    const result = await api(base, { method: "DELETE" });
    if (result.status === 200) location.hash = "#/chargers";
    else deleting.current = false;
    return result;
  };
  return html`<div class="card" data-testid="registration"><h2>Registration</h2>
    ${detail.registration === "Pending" && html`<p>This charger waits for approval: until then it may only boot.</p>`}
    ${detail.registration !== "Accepted" && html`<${Action} title="Approve" online=${online} done=${reload} run=${register("Accepted")} />`}
    ${detail.registration !== "Rejected" && html`<${Action} title="Reject" online=${online} confirm danger done=${reload} run=${register("Rejected")} />`}
    <${Action} title="Delete charger" online=${online && !connected} confirm danger run=${remove} />
    ${connected && html`<p class="muted">Delete is possible once the charger is offline.</p>`}
  </div>`;
}

export function ChargerDetail({ id, live, online }) {
  const [detail, setDetail] = useState(null);
  const [events, setEvents] = useState([]);
  const [missing, setMissing] = useState(false);
  const base = `/api/chargers/${encodeURIComponent(id)}`;
  const charger = live.chargers[id];
  // Set while this page deletes the charger: the live feed's removal must not fetch it
  // again (a 404), the view moves to the list instead.
  const deleting = useRef(false);
  const reload = async () => {
    if (deleting.current) return;
    const [d, e] = await Promise.all([api(base), api(`${base}/events?limit=20`)]);
    if (d.status === 404) { setMissing(true); return; }
    if (d.status === 200) setDetail(d.data);
    if (e.status === 200) setEvents(e.data);
  };
  // Again whenever the live charger changes (status, connection, boot).
  useEffect(() => { reload(); }, [id, charger]);
  if (missing) return html`<p>No charger ${id}. <a href="#/chargers">All chargers</a></p>`;
  if (!detail) return html`<p class="muted">Loading…</p>`;
  const s = siteEntry(live, id);
  const ocpp = (action, payload) => api(`${base}/ocpp/${action}`, { method: "POST", body: payload });
  const int = (v) => (v === "" ? undefined : Number(v));
  const tx = (detail.activeTransactions || [])[0];
  const can = online && Boolean(charger && charger.connected);
  return html`<div data-testid="charger-detail">
    <p><a href="#/chargers">← All chargers</a></p>
    <div class="grid two">
      <div class="card"><h2>${id}</h2><dl class="kv">
        <dt>Connection</dt><dd data-testid="detail-connected">${charger && charger.connected ? "online" : "offline"}</dd>
        <dt>Registration</dt><dd>${detail.registration}</dd>
        <dt>Security</dt><dd><${SecurityMark} c=${charger} /> <a href="#/security">certificates, events</a></dd>
        <dt>Vendor, model</dt><dd>${detail.vendor || "–"} ${detail.model || ""}</dd>
        <dt>Firmware</dt><dd>${detail.firmwareVersion || "–"}</dd>
        <dt>Last boot</dt><dd>${when(detail.lastBoot)}</dd>
        <dt>Last seen</dt><dd>${when(detail.lastSeen)}</dd>
        <dt>Connectors</dt><dd>${charger && html`<${Connectors} charger=${charger} />`}</dd>
        <dt>Local list</dt><dd>version ${detail.localListVersion ?? "–"}</dd>
      </dl></div>
      <div class="card"><h2>Site control</h2>${s ? html`<dl class="kv">
        <dt>Why</dt><dd class="why" data-testid="detail-why">${whyWords(s.limitedBy)}</dd>
        <dt>Draws</dt><dd>${s.drawnA ? s.drawnA.map((v) => v.toFixed(1)).join(" / ") + " A" : "no report"}</dd>
        <dt>Allocated</dt><dd>${amps(s.allocationA)} (range ${s.minA}–${s.maxA} A, phases ${s.phases})</dd>
        <dt>Lease</dt><dd>${amps(s.leaseA)} until ${when(s.leaseExpires)}</dd>
        <dt>Safe value</dt><dd>${amps(s.safeInstalledA)}</dd>
        <dt>Strategy</dt><dd>${s.strategy || "none works: cannot be limited"}</dd>
        ${s.quirks.length > 0 && html`<dt>Quirks</dt><dd>${s.quirks.join("; ")}</dd>`}
        ${s.lastError && html`<dt>Last error</dt><dd>${s.lastError}</dd>`}
      </dl>` : html`<p class="muted">Not under site control (no meter, or not accepted).</p>`}</div>
    </div>
    <${Registration} base=${base} detail=${detail} charger=${charger} online=${online} reload=${reload} deleting=${deleting} />
    <div class="card" data-testid="actions"><h2>Operations</h2>
      ${!can && html`<p class="muted">The charger (or this page) is offline: operations are disabled.</p>`}
      <${Action} title="Remote start" online=${can} fields=${[{ name: "idTag", label: "id tag" }, { name: "connectorId", label: "connector", value: "1", numeric: true }]}
        run=${(v) => ocpp("RemoteStartTransaction", { idTag: v.idTag, connectorId: int(v.connectorId) })} />
      <${Action} title="Remote stop" online=${can} confirm danger fields=${[{ name: "transactionId", label: "transaction", value: tx ?? "", numeric: true }]}
        run=${(v) => ocpp("RemoteStopTransaction", { transactionId: int(v.transactionId) })} />
      <${Action} title="Reset" online=${can} confirm danger fields=${[{ name: "type", label: "type", options: ["Soft", "Hard"] }]}
        run=${(v) => ocpp("Reset", { type: v.type })} />
      <${Action} title="Unlock" online=${can} confirm fields=${[{ name: "connectorId", label: "connector", value: "1", numeric: true }]}
        run=${(v) => ocpp("UnlockConnector", { connectorId: int(v.connectorId) })} />
      <${Action} title="Availability" online=${can} fields=${[{ name: "connectorId", label: "connector (0: all)", value: "0", numeric: true }, { name: "type", label: "to", options: ["Operative", "Inoperative"] }]}
        run=${(v) => ocpp("ChangeAvailability", { connectorId: int(v.connectorId), type: v.type })} />
      <${Action} title="Limit" online=${online} done=${reload} fields=${[{ name: "connectorId", label: "connector (0: charger)", value: "0", numeric: true }, { name: "limit", label: "A", value: "16", numeric: true }, { name: "until", label: "until (UTC, optional)", placeholder: "2026-01-01T18:00:00Z" }]}
        run=${(v) => api(`${base}/limits`, { method: "POST", body: { connectorId: int(v.connectorId), limit: Number(v.limit), unit: "A", ...(v.until ? { until: v.until } : {}) } })} />
      <${Action} title="Clear limits" online=${online} done=${reload} run=${() => api(`${base}/limits`, { method: "DELETE" })} />
      <${Action} title="Trigger" online=${can} fields=${[{ name: "requestedMessage", label: "message", options: TRIGGERS }, { name: "connectorId", label: "connector (optional)", numeric: true }]}
        run=${(v) => ocpp("TriggerMessage", { requestedMessage: v.requestedMessage, ...(v.connectorId ? { connectorId: int(v.connectorId) } : {}) })} />
      <${Action} title="Change configuration" online=${can} fields=${[{ name: "key", label: "key" }, { name: "value", label: "value" }]}
        run=${(v) => ocpp("ChangeConfiguration", { key: v.key, value: v.value })} />
      <${Action} title="Composite schedule" online=${can} fields=${[{ name: "connectorId", label: "connector", value: "1", numeric: true }, { name: "duration", label: "seconds", value: "86400", numeric: true }]}
        run=${(v) => ocpp("GetCompositeSchedule", { connectorId: int(v.connectorId), duration: int(v.duration), chargingRateUnit: "A" })} />
      <${Action} title="Sync local list" online=${can} run=${() => api(`${base}/local-list/sync`, { method: "POST" })} />
      <${Configuration} id=${id} online=${can} />
    </div>
    <${Smart} id=${id} detail=${detail} />
    <div class="card"><h2>Recent events</h2><div class="scroll"><table data-testid="charger-events"><tbody>
      ${events.map((e) => html`<tr><td>${when(e.at)}</td><td>${e.kind}</td><td class="muted">${JSON.stringify(e.data).slice(0, 160)}</td></tr>`)}
    </tbody></table></div></div>
  </div>`;
}
