// Id tags (the authorization list) with each charger's local list, and reservations.
import { useEffect, useState } from "./vendor/hooks.mjs";
import { Action, Answer, api, html, useRefresh, when } from "./lib.mjs";

const STATUSES = ["Accepted", "Blocked", "Expired", "Invalid"];
const tagPath = (tag) => `/api/id-tags/${encodeURIComponent(tag)}`;

// "2026-12-31" or "2026-12-31T18:00" (UTC) as the API's ISO 8601; empty stays empty.
function isoOrNull(text) {
  const t = text.trim();
  if (!t) return null;
  if (/^\d{4}-\d{2}-\d{2}$/.test(t)) return `${t}T00:00:00Z`;
  return /Z$|[+-]\d\d:?\d\d$/.test(t) ? t : `${t}Z`;
}

// Fetches `path` now, whenever `reload()` is called and every REFRESH_MS; {rows, error, reload}.
export function useList(path) {
  const [state, setState] = useState({ rows: null, error: "" });
  const [n, setN] = useState(0);
  const tick = useRefresh();
  useEffect(() => {
    api(path).then(({ status, data }) => setState(status === 200 ? { rows: data, error: "" }
      : { rows: null, error: `${status} ${data && data.detail}` }));
  }, [path, n, tick]);
  return { ...state, reload: () => setN((x) => x + 1) };
}

// A button that asks again before it acts (no dialog: the question replaces it).
function Confirm({ label, what, run, disabled }) {
  const [asking, setAsking] = useState(false);
  if (!asking) return html`<button class="plain" disabled=${disabled} aria-label=${`${label} ${what}`} onClick=${() => setAsking(true)}>${label}</button>`;
  return html`<button class="danger" onClick=${() => { setAsking(false); run(); }}>Really ${label.toLowerCase()} ${what}?</button>
    <button class="plain" onClick=${() => setAsking(false)}>No</button>`;
}

function LocalLists({ live, online }) {
  const ids = Object.keys(live.chargers).sort();
  const [lists, setLists] = useState({});
  const load = () => Promise.all(ids.map((id) => api(`/api/chargers/${encodeURIComponent(id)}/local-list`)))
    .then((answers) => setLists(Object.fromEntries(answers.map((a, i) => [ids[i], a.status === 200 ? a.data : null]))));
  useEffect(() => { load(); }, [ids.join(",")]);
  return html`<div class="card" data-testid="local-lists"><h2>Local lists on the chargers</h2>
    <p class="muted">What each charger holds for offline authorization; Sync sends the changes (all of it when unknown).</p>
    ${ids.map((id) => {
      const c = live.chargers[id], l = lists[id];
      return html`<div class="row local-list" data-testid=${`local-list-${id}`}>
        <strong>${id}</strong>
        <span>version ${c.localListVersion ?? (l && l.listVersion) ?? "–"}${l ? `, ${l.entries.length} tags${l.contentKnown ? "" : " (content unknown)"}` : ""}
          ${l && l.supported === false ? " · not supported" : ""}${l && l.lastResult ? ` · last: ${l.lastResult}` : ""}</span>
        <${Action} title=${`Sync ${id}`} online=${online && c.connected}
          run=${() => api(`/api/chargers/${encodeURIComponent(id)}/local-list/sync`, { method: "POST" })} done=${load} />
      </div>`;
    })}
  </div>`;
}

export function IdTags({ live, online }) {
  const { rows, error, reload } = useList("/api/id-tags");
  const [search, setSearch] = useState("");
  const put = (tag, body) => api(tagPath(tag), { method: "PUT", body });
  const needle = search.trim().toLowerCase();
  const shown = (rows || []).filter((t) => !needle || t.idTag.toLowerCase().includes(needle) ||
    (t.parentIdTag || "").toLowerCase().includes(needle)).sort((a, b) => a.idTag.localeCompare(b.idTag));
  return html`<div data-testid="id-tags">
    <div class="card"><h2>Add or change an id tag</h2>
      <${Action} title="Save tag" online=${online} done=${reload} fields=${[
        { name: "idTag", label: "id tag", required: true },
        { name: "status", label: "status", options: STATUSES },
        { name: "expiryDate", label: "expires (UTC, optional)", placeholder: "2027-01-31" },
        { name: "parentIdTag", label: "parent (group, optional)" }]}
        run=${(v) => put(v.idTag.trim(), { status: v.status, expiryDate: isoOrNull(v.expiryDate), parentIdTag: v.parentIdTag.trim() || null })} />
    </div>
    <div class="card"><h2>Id tags</h2>
      <label>search<input type="search" value=${search} onInput=${(e) => setSearch(e.target.value)} placeholder="tag or parent" data-testid="tag-search" /></label>
      ${error && html`<p class="answer bad">${error}</p>`}
      ${rows && html`<div class="scroll"><table><thead><tr><th>id tag</th><th>status</th><th>expires</th><th>parent</th><th></th></tr></thead><tbody>
        ${shown.map((t) => html`<tr data-testid=${`tag-${t.idTag}`}><td>${t.idTag}</td><td class=${t.status === "Accepted" ? "" : "warn"}>${t.status}</td>
          <td>${when(t.expiryDate)}</td><td>${t.parentIdTag || ""}</td><td class="buttons">
          <button class="plain" disabled=${!online} onClick=${() => put(t.idTag, { ...t, status: t.status === "Blocked" ? "Accepted" : "Blocked" }).then(reload)}>
            ${t.status === "Blocked" ? "Unblock" : "Block"}</button>
          <${Confirm} label="Delete" what=${t.idTag} disabled=${!online} run=${() => api(tagPath(t.idTag), { method: "DELETE" }).then(reload)} /></td></tr>`)}
      </tbody></table></div>`}
      ${rows && html`<p class="muted">${shown.length} of ${rows.length} shown. Blocked, expired and invalid tags are sent to
        the chargers' local lists too, so they refuse them offline.</p>`}
    </div>
    <${LocalLists} live=${live} online=${online} />
  </div>`;
}

export function Reservations({ live, online }) {
  const { rows, error, reload } = useList("/api/reservations");
  const ids = Object.keys(live.chargers).sort();
  const cancel = (r) => api(`/api/chargers/${encodeURIComponent(r.chargerId)}/reservations/${r.reservationId}`, { method: "DELETE" });
  const [answer, setAnswer] = useState(null);
  return html`<div data-testid="reservations">
    <div class="card"><h2>Reserve</h2>
      ${ids.length ? html`<${Action} title="Reserve" online=${online} done=${reload} fields=${[
        { name: "chargerId", label: "charger", options: ids },
        { name: "connectorId", label: "connector (0: any)", value: "1", numeric: true },
        { name: "idTag", label: "id tag", required: true },
        { name: "minutes", label: "for (min)", value: "30", numeric: true }]}
        run=${(v) => api(`/api/chargers/${encodeURIComponent(v.chargerId)}/reservations`, { method: "POST",
          body: { connectorId: Number(v.connectorId), idTag: v.idTag.trim(), expiresIn: Math.round(Number(v.minutes) * 60) } })} />`
      : html`<p class="muted">No charger known yet.</p>`}
    </div>
    <div class="card"><h2>Reservations</h2>
      ${error && html`<p class="answer bad">${error}</p>`}
      ${rows && html`<div class="scroll"><table><thead><tr><th>id</th><th>charger</th><th>id tag</th><th>expires</th>
          <th>state</th><th></th></tr></thead><tbody>
        ${rows.map((r) => html`<tr data-testid=${`reservation-${r.reservationId}`}><td>${r.reservationId}</td>
          <td>${r.chargerId} #${r.connectorId}</td><td>${r.idTag}${r.parentIdTag ? ` (${r.parentIdTag})` : ""}</td>
          <td>${when(r.expiryDate)}</td>
          <td>${r.status}${r.transactionId ? `, tx ${r.transactionId}` : ""}${r.endedAt ? html`<br /><span class="muted">${when(r.endedAt)} ${r.endReason || ""}</span>` : ""}</td>
          <td>${r.status === "Active" && html`<button class="danger" disabled=${!online}
            onClick=${() => cancel(r).then((a) => { setAnswer(a); reload(); })}>Cancel</button>`}</td></tr>`)}
      </tbody></table></div>`}
      ${rows && rows.length === 0 && html`<p class="muted">None.</p>`}
      ${answer && html`<div data-testid="cancel-answer" class="row"><${Answer} answer=${answer} /></div>`}
    </div>
  </div>`;
}
